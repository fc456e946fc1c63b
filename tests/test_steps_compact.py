"""Stage 4p5: every row kept, fewer files, CURRENT switched only after verification."""

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emr_steps import compact
from pipeline import dataset as ds
from pipeline.contract import COLUMN_NAMES

pytestmark = pytest.mark.spark


def _record(i: int, split: str) -> dict:
    rec = dict.fromkeys(COLUMN_NAMES)
    rng = np.random.default_rng(i)
    rec.update(task_id=f"t{i:05d}", run_id="4c-x", variant="demo", experiment_id="e", pipeline_version="0",
               task_seed=i, region_split=split, region_id=i % 7, brickname=f"b{i % 5}", lrg_id=i, ra=150.0 + i * 1e-3,
               dec=2.0, is_control=i % 2 == 0, lens_model="CONTROL" if i % 2 == 0 else "SIE", cutout_ok=i % 11 != 0,
               cutout_error=None if i % 11 else "brick x could not be loaded")
    if rec["cutout_ok"]:
        rec["image"] = rng.normal(size=3 * 64 * 64).astype(np.float32)
        rec["invvar"] = np.full(3 * 64 * 64, 4.0, np.float32)
        rec["maskbits"] = (rng.random(64 * 64) < 0.01).astype(np.int32)
        if not rec["is_control"]:
            rec["arc"] = rng.random(3 * 64 * 64).astype(np.float32)
    return rec


@pytest.fixture()
def small_dataset(tmp_path):
    """D/phase4c as stage 4c would leave it: many small files per split, metadata, _SUCCESS."""
    root = tmp_path / "D"
    data = root / "phase4c"
    rows = {"train": 0, "val": 0, "test": 0}
    schema = ds.spark_arrow_schema().remove(ds.spark_arrow_schema().get_field_index("region_split"))
    i = 0
    for split, n_files in (("train", 6), ("val", 3), ("test", 3)):
        for f in range(n_files):
            recs = [_record(i + k, split) for k in range(5)]
            i += 5
            rows[split] += len(recs)
            batch = ds.records_to_batch(recs)
            table = pa.Table.from_batches([batch]).drop(["region_split"])
            (data / f"region_split={split}").mkdir(parents=True, exist_ok=True)
            pq.write_table(table.cast(schema), data / f"region_split={split}" / f"part-{f:05d}.parquet")
    (data / "_SUCCESS").write_bytes(b"")
    files, nbytes = ds.dir_stats(str(data))
    ds.write_metadata(str(data), ds.build_metadata(stage="4c", run_id="4c-x", run_config={"variant": "demo"},
                                                   rows_per_split=rows, files=files, bytes_=nbytes,
                                                   manifest={"sha256": "0" * 64, "tasks": sum(rows.values())}))
    return root


def test_plan_files_from_bytes_per_row():
    rows_per_file, per_split = compact.plan_files({"train": 1000, "val": 10, "test": 0}, 1010, 1010 * 100_000, 1.0)
    assert rows_per_file == int(1024 * 1024 / 100_000)
    assert per_split == {"train": -(-1000 // rows_per_file), "val": 1}


def test_compaction_keeps_rows_reduces_files_and_switches_current(spark, small_dataset):
    src = ds.resolve_data_uri(str(small_dataset))
    assert src.endswith("phase4c")
    before = ds.rows_digest(src)
    n_files_before, bytes_before = ds.dir_stats(src)
    summary = compact.run(["--output-prefix", str(small_dataset), "--run-id", "c1", "--target-file-mb", "0.6"])
    assert summary["current"] == "compacted/c1"
    assert json.loads((small_dataset / "CURRENT").read_text())["data"] == "compacted/c1"
    new = ds.resolve_data_uri(str(small_dataset))
    assert new == str(small_dataset / "compacted" / "c1")
    n_files_after, bytes_after = ds.dir_stats(new)
    print(f"\ncompaction: {n_files_before} files / {bytes_before} B -> {n_files_after} files / {bytes_after} B")
    assert n_files_after < n_files_before
    assert ds.rows_digest(new) == before  # every row, unchanged
    assert ds.rows_digest(spark.read.parquet(new)) == before  # the Spark path hashes the same
    meta = ds.read_metadata(new)
    assert meta["stage"] == "4p5" and meta["rows"] == before["rows"] and meta["files"] == n_files_after
    assert ds.read_metadata(src) is not None and ds.rows_digest(src) == before  # source untouched



def test_interrupted_compaction_leaves_current_whole(spark, small_dataset):
    compact.run(["--output-prefix", str(small_dataset), "--run-id", "c1", "--target-file-mb", "0.6"])
    current_before = (small_dataset / "CURRENT").read_bytes()
    h = ds.rows_digest(str(small_dataset))

    class Crash(Exception):
        pass

    def crash(_target):
        raise Crash("killed before the switch")

    with pytest.raises(Crash):
        compact.run(["--output-prefix", str(small_dataset), "--run-id", "c2", "--target-file-mb", "100"], before_switch=crash)
    assert (small_dataset / "CURRENT").read_bytes() == current_before
    assert ds.resolve_data_uri(str(small_dataset)).endswith("compacted/c1")
    assert ds.rows_digest(str(small_dataset)) == h
    # half-written debris of the interrupted one (no metadata) does not block a retry under its id
    shutil.rmtree(small_dataset / "compacted" / "c2" / "region_split=test")
    (small_dataset / "compacted" / "c2" / "_dhs_dataset.json").unlink()
    # the retry reads the current (compacted) data: never in place, a new prefix again
    compact.run(["--output-prefix", str(small_dataset), "--run-id", "c2", "--target-file-mb", "100"])
    assert ds.resolve_data_uri(str(small_dataset)).endswith("compacted/c2")
    assert ds.dir_stats(ds.resolve_data_uri(str(small_dataset)))[0] == 3  # one file per split
    assert ds.rows_digest(str(small_dataset)) == h


def test_compaction_refuses_incomplete_source(spark, small_dataset):
    from pipeline.errors import InputError

    (small_dataset / "phase4c" / "_dhs_dataset.json").unlink()
    with pytest.raises(InputError, match="_dhs_dataset.json"):
        compact.run(["--output-prefix", str(small_dataset)])
    assert not (small_dataset / "CURRENT").exists()


# --- issue 14: the run's compaction reads exactly what its inject wrote ------------------------

def _inject_receipt(root, run="r1"):
    from pipeline import lineage

    return lineage.write_receipt(str(root), run, "inject", lineage.data_fingerprint(str(root / "phase4c")))


def test_pipeline_run_compacts_the_runs_rows_not_current(spark, small_dataset):
    """CURRENT points at an older compaction (a previous run's promoted data); the run's compact
    step still reads exactly the phase4c its inject receipt names, writes a content-addressed
    folder, leaves CURRENT alone and records what it wrote. Rerun: the same folder, reused."""
    from pipeline import lineage

    compact.run(["--output-prefix", str(small_dataset), "--run-id", "old", "--target-file-mb", "100"])
    assert ds.resolve_data_uri(str(small_dataset)).endswith("compacted/old")
    # the next run's inject rewrites phase4c: drop a file's worth of rows from the old compaction's view
    victim = sorted((small_dataset / "phase4c" / "region_split=train").glob("*.parquet"))[0]
    table = pq.read_table(victim)
    pq.write_table(table.slice(0, 3), victim)  # new rows: fewer in train
    meta = ds.read_metadata(str(small_dataset / "phase4c"))
    meta["rows_per_split"]["train"] -= 2
    meta["rows"] -= 2
    ds.write_metadata(str(small_dataset / "phase4c"), meta)
    _inject_receipt(small_dataset)
    current_before = (small_dataset / "CURRENT").read_bytes()

    summary = compact.run(["--output-prefix", str(small_dataset), "--pipeline-run", "r1", "--target-file-mb", "100"])
    assert "/compacted/c-" in summary["data"] and "current" not in summary
    assert (small_dataset / "CURRENT").read_bytes() == current_before  # the promotion moves it, not compact
    assert ds.rows_digest(summary["data"]) == ds.rows_digest(str(small_dataset / "phase4c"))  # run's rows
    assert ds.rows_digest(summary["data"])["rows"] == meta["rows"]
    receipt = lineage.read_receipt(str(small_dataset), "r1", "compact")
    assert receipt["data_uri"] == summary["data"] and receipt["content_checksum"] == summary["content_checksum"]
    assert ds.read_metadata(summary["data"])["content_checksum"] == summary["content_checksum"]
    again = compact.run(["--output-prefix", str(small_dataset), "--pipeline-run", "r1", "--target-file-mb", "100"])
    assert again["data"] == summary["data"] and again["reused"] is True
    assert again["content_checksum"] == summary["content_checksum"]


def test_pipeline_run_refuses_rows_changed_after_inject(spark, small_dataset, capsys):
    _inject_receipt(small_dataset)
    victim = sorted((small_dataset / "phase4c").rglob("*.parquet"))[0]
    data = victim.read_bytes()
    victim.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])  # same size
    assert compact.main(["--output-prefix", str(small_dataset), "--pipeline-run", "r1"]) == 1
    err = capsys.readouterr().err
    assert "what run r1's inject wrote" in err and "phase4c" in err and "nothing was compacted" in err
    assert not (small_dataset / "compacted").exists()


def test_pipeline_run_without_inject_receipt_is_exit_2(small_dataset, capsys):
    assert compact.main(["--output-prefix", str(small_dataset), "--pipeline-run", "r9"]) == 2
    assert "runs/r9/inject.json" in capsys.readouterr().err


def test_corrupt_source_file_is_exit_2_naming_it(spark, small_dataset, tmp_path, capsys):
    """A source file whose Hadoop .crc no longer matches: exit 2 naming the file, no traceback."""
    root = tmp_path / "D2"
    spark.read.parquet(str(small_dataset / "phase4c")).write.partitionBy("region_split").parquet(str(root / "phase4c"))
    shutil.copy(small_dataset / "phase4c" / "_dhs_dataset.json", root / "phase4c" / "_dhs_dataset.json")
    victim = sorted((root / "phase4c").rglob("part-*.parquet"))[0]
    data = victim.read_bytes()
    victim.write_bytes(data[:200] + bytes([data[200] ^ 1]) + data[201:])
    assert compact.main(["--output-prefix", str(root), "--run-id", "c1"]) == 2
    err = capsys.readouterr().err
    assert victim.name in err and "unreadable data file" in err and "Traceback" not in err
