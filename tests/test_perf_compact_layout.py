"""Issue 17: compaction's multi-file splits without the range sampling pass over the pixel rows
(emr_steps.compact.task_id_ranges) keep every row, every value and the layout contract: per split
at most the planned number of files, each one contiguous, sorted task_id range."""

import pyarrow.parquet as pq
import pytest

from emr_steps import compact
from pipeline import dataset as ds
from tests.test_steps_compact import small_dataset  # noqa: F401 - the fixture

pytestmark = pytest.mark.spark


def test_hash_keys_land_in_their_partition(spark):
    from pyspark.sql import functions as F

    for n in (2, 3, 7):
        keys = compact.hash_keys_for_partitions(spark, n)
        df = spark.createDataFrame([(k, i) for i, k in enumerate(keys)], "k long, want int")
        got = df.repartition(n, "k").select("want", F.spark_partition_id().alias("p")).collect()
        assert sorted((r["want"], r["p"]) for r in got) == [(i, i) for i in range(n)]


def test_task_id_ranges_are_contiguous_sorted_and_keep_every_row(spark):
    from pyspark.sql import functions as F

    ids = [f"t{i:05d}" for i in range(0, 3000, 3)]
    df = spark.createDataFrame([(t, i) for i, t in enumerate(ids)], "task_id string, v int").repartition(5)
    out = compact.task_id_ranges(spark, df, 4).sortWithinPartitions("task_id")
    parts = out.select("task_id", "v", F.spark_partition_id().alias("p")).collect()
    assert sorted((r["task_id"], r["v"]) for r in parts) == sorted((t, i) for i, t in enumerate(ids))
    by_p: dict[int, list[str]] = {}
    for r in parts:
        by_p.setdefault(r["p"], []).append(r["task_id"])
    assert 2 <= len(by_p) <= 4
    spans = sorted((min(v), max(v)) for v in by_p.values())
    assert all(hi < lo2 for (_, hi), (lo2, _) in zip(spans, spans[1:]))  # disjoint, ordered ranges


def test_multi_file_compaction_keeps_rows_and_layout(spark, small_dataset):  # noqa: F811
    src = ds.resolve_data_uri(str(small_dataset))
    before = ds.rows_digest(src)
    summary = compact.run(["--output-prefix", str(small_dataset), "--run-id", "c1", "--target-file-mb", "0.6"])
    new = ds.resolve_data_uri(str(small_dataset))
    assert ds.rows_digest(new) == before  # every row, every column value
    meta = ds.read_metadata(new)
    planned = meta["compaction"]["files_per_split"]
    assert planned["train"] >= 2, "the fixture must exercise the multi-file path"
    for split, n_planned in planned.items():
        files = sorted((small_dataset / "compacted" / "c1" / f"region_split={split}").glob("*.parquet"))
        assert 1 <= len(files) <= n_planned
        spans = []
        for f in files:
            tids = pq.read_table(f, columns=["task_id"]).column("task_id").to_pylist()
            assert tids == sorted(tids)  # sorted inside the file
            spans.append((tids[0], tids[-1]))
        spans.sort()
        assert all(hi < lo2 for (_, hi), (lo2, _) in zip(spans, spans[1:]))  # one contiguous range per file
    assert summary["rows"] == before["rows"]
