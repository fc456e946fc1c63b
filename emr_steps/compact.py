"""Stage 4p5 on Spark: rewrite a dataset's rows into fewer, larger files under a NEW, immutable,
content-addressed prefix, verify them, record them.

    spark-submit emr_steps/compact.py --stage 4p5 --output-prefix D --pipeline-run R [--target-file-mb 256]
    spark-submit emr_steps/compact.py --stage 4p5 --output-prefix D [--source D/phase4c]     (by hand)
    python -m emr_steps.compact --output-prefix D

Order of operations (each step only after the previous one succeeded):
 1. source: with --pipeline-run R, exactly the data that R's inject receipt names
    (D/runs/R/inject.json), refused when its content checksum differs from the receipt's (the
    rows changed after R's inject); else --source (a data dir or a dataset root), else D's
    current data. It must be complete (have _dhs_dataset.json);
 2. the compaction's id is a function of what it holds: c-<sha256(source content checksum,
    target size, codec)[:16]> (or --run-id). A complete compaction with that id whose files still
    match its recorded checksum is reused as it is; one whose files changed is an error;
 3. rows per file = target bytes / (source bytes / source rows); per split, ceil(rows / that)
    files, each a contiguous task_id range (range bounds sampled from the task_id column alone,
    then one shuffle of the rows; sorted), written to D/compacted/<id>/region_split=<s>/;
 4. verify: rows per split of the new data == rows counted in the source == the source's
    _dhs_dataset.json; distinct task ids == rows;
 5. write D/compacted/<id>/_dhs_dataset.json with the compaction's content checksum;
 6. with --pipeline-run: write D/runs/R/compact.json (data URI + checksum) for the validation;
    D/CURRENT is NOT moved (the promotion moves it once the gate has passed). By hand (no
    --pipeline-run, or --switch-current 1): replace D/CURRENT = {"data": "compacted/<id>"} in one
    atomic write.
Nothing is rewritten in place and nothing is deleted: an interruption anywhere leaves CURRENT (or
D/phase4c) pointing at the previous data, whole. Old prefixes are kept until a retention policy
removes them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

if __name__ == "__main__" and not __package__:  # spark-submit runs this file as a script
    try:
        import emr_steps  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import storage
from pipeline.errors import InputError

log = logging.getLogger("dhs.compact")


class StepFailed(RuntimeError):
    """The compacted data does not match its source; CURRENT was not switched. Exit 1."""


def plan_files(rows_per_split: dict[str, int], source_rows: int, source_bytes: int, target_file_mb: float) -> tuple[int, dict[str, int]]:
    """(rows per file, files per split) for a target file size, from the source's bytes per row."""
    if target_file_mb <= 0:
        raise InputError("--target-file-mb", f"must be > 0, got {target_file_mb}")
    bytes_per_row = max(1.0, source_bytes / max(1, source_rows))
    rows_per_file = max(1, int(target_file_mb * 1024 * 1024 / bytes_per_row))
    return rows_per_file, {s: max(1, math.ceil(n / rows_per_file)) for s, n in rows_per_split.items() if n > 0}


def hash_keys_for_partitions(spark, n: int) -> list[int]:
    """For each partition i of n, a long k_i that Spark's hash partitioning sends to partition i:
    pmod(hash(k_i), n) == i (HashPartitioning is pmod(Murmur3Hash(key, seed 42), n), the SQL
    `hash`), so `repartition(n, key)` with key = k_i puts a row in partition i exactly."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    span = 32 * n
    while True:
        found = {int(r["p"]): int(r["k"]) for r in spark.range(0, span)
                 .select(F.expr(f"pmod(hash(id), {n})").alias("p"), F.col("id"))
                 .groupBy("p").agg(F.min("id").alias("k")).collect()}
        if len(found) == n:
            return [found[i] for i in range(n)]
        span *= 4


def task_id_ranges(spark, part, n_files: int):
    """`part` in at most n_files partitions, each one contiguous task_id range: the partitions
    repartitionByRange(n_files, "task_id") makes, without its sampling pass over the whole rows.

    repartitionByRange samples its input to find the range bounds, and that input is the full
    rows: the pixel columns are read and decoded twice (measured: ~1 ms per row of the ~2 ms a
    multi-file split costs more than a one-file split; benchmarks/compact_profile.py). Here the
    same range partitioning runs on the task_id column alone (column pruning: no pixel bytes are
    read), each non-empty range's smallest task_id is collected (one string per file), and the
    full rows are shuffled once, each to the partition of its range (hash partitioning on a key
    chosen to land in that partition). Whatever the sample, partition i holds exactly the rows
    with bounds[i-1] <= task_id < bounds[i]: contiguous ranges by construction; the sample only
    decides how even they are (as it does for repartitionByRange)."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    # (a null task_id is no bound: such rows land in the first file, and the verification's
    # distinct-id count fails the step on them, as before)
    lows = sorted(r["lo"] for r in part.select("task_id").repartitionByRange(n_files, "task_id")
                  .groupBy(F.spark_partition_id().alias("p")).agg(F.min("task_id").alias("lo")).collect()
                  if r["lo"] is not None)
    bounds = lows[1:]  # range i holds lows[i] <= task_id < lows[i + 1]
    if not bounds:
        return part.coalesce(1)
    n = len(bounds) + 1
    keys = hash_keys_for_partitions(spark, n)
    rank = F.size(F.filter(F.array(*[F.lit(b) for b in bounds]), lambda b: b <= F.col("task_id")))
    # bigint literals: the keys were found as bigint ids, and hash(int) != hash(bigint)
    key = F.element_at(F.array(*[F.lit(k).cast("long") for k in keys]), rank + 1)
    return part.withColumn("_dhs_file", key).repartition(n, "_dhs_file").drop("_dhs_file")


def _source_of(args) -> tuple[str, str, dict]:
    """(dataset root, source data URI, source fingerprint {data_uri, content_checksum, ...})."""
    from emr_steps.args import dataset_paths  # noqa: PLC0415
    from pipeline import lineage  # noqa: PLC0415
    from pipeline.dataset import resolve_data_uri  # noqa: PLC0415

    root = dataset_paths(args.output_prefix).root
    if args.pipeline_run:
        if args.source:
            raise InputError("--source", "not with --pipeline-run: the run's inject receipt names the source")
        receipt = lineage.read_receipt(root, args.pipeline_run, "inject")
        found = lineage.data_fingerprint(receipt["data_uri"])
        try:
            lineage.check_same_data(found=found, expected=receipt, found_what="the data to compact",
                                    expected_what=f"what run {args.pipeline_run}'s inject wrote "
                                                  f"({lineage.receipt_uri(root, args.pipeline_run, 'inject')})")
        except lineage.ChainBroken as exc:
            raise StepFailed(f"{exc}; nothing was compacted") from None
        return root, receipt["data_uri"], found
    source = resolve_data_uri(root)
    if args.source:
        given = storage.to_s3(args.source).rstrip("/") if storage.is_s3(args.source) else str(Path(args.source).resolve())
        source = resolve_data_uri(given)
    return root, source, lineage.data_fingerprint(source)


def compaction_id(source_checksum: str, target_file_mb: float, compression: str) -> str:
    """Content address of a compaction: the same rows compacted the same way get the same id."""
    key = json.dumps({"source": source_checksum, "target_file_mb": float(target_file_mb),
                      "compression": compression, "layout": "range(task_id)/split"}, sort_keys=True)
    return "c-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _reuse(target: str, meta: dict, root: str, args) -> dict[str, Any]:
    """A complete compaction with this content address exists: check its files, then reuse it."""
    from pipeline import lineage  # noqa: PLC0415

    found = lineage.data_fingerprint(target)
    if found["content_checksum"] != meta.get("content_checksum"):
        raise StepFailed(f"{target} is a complete compaction whose files no longer match its recorded checksum "
                         f"({found['content_checksum'][:16]} != {str(meta.get('content_checksum'))[:16]}): it was "
                         f"changed after it was written; remove it or compact with another --run-id")
    log.info("%s already holds this compaction (same source, same layout): reused", target)
    return found


def run(argv: list[str] | None = None, *, before_switch: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The whole step. `before_switch(new_data_uri)` is called after verification and metadata,
    right before CURRENT is replaced (tests use it to simulate an interruption)."""
    from emr_steps.args import parse_args  # noqa: PLC0415
    from emr_steps.spark_session import get_spark  # noqa: PLC0415
    from pipeline import dataset as ds  # noqa: PLC0415

    args = parse_args(argv, stage="4p5", prog="emr_steps.compact")
    if args.stage != "4p5":
        raise InputError("--stage", f"emr_steps.compact runs stage 4p5, got {args.stage}")
    if args.pipeline_run:
        from pipeline.lineage import check_run_name  # noqa: PLC0415

        check_run_name(args.pipeline_run)
    switch = (not args.pipeline_run) if args.switch_current is None else bool(args.switch_current)
    root, source, source_fp = _source_of(args)
    meta = ds.read_metadata(source)
    if meta is None:
        raise InputError(source, f"no {ds.METADATA_FILE}: not a complete dataset (did stage 4c finish?)")
    src_files, src_bytes = ds.dir_stats(source)
    if src_files == 0:
        raise InputError(source, "no Parquet data files")
    rows_meta = {k: int(v) for k, v in meta["rows_per_split"].items()}
    comp_id = args.run_id or compaction_id(source_fp["content_checksum"], args.target_file_mb, args.compression)
    rel = f"{ds.COMPACTED_DIR}/{comp_id}"
    target = storage.join(root, ds.COMPACTED_DIR, comp_id)
    if storage.to_s3(target).rstrip("/") == storage.to_s3(source).rstrip("/"):
        raise InputError("--run-id", f"{target} is the source itself; compaction never rewrites in place")
    existing = ds.read_metadata(target)
    if existing is not None:
        if args.run_id:
            raise InputError(target, "already holds a complete compaction; choose another --run-id")
        found = _reuse(target, existing, root, args)
        return _finish(root, rel, target, found, source_fp, existing, args, switch, before_switch, reused=True)

    rows_per_file, files_per_split = plan_files(rows_meta, meta["rows"], src_bytes, args.target_file_mb)
    log.info("compacting %s (%d files, %.1f MB, %d rows) -> %s: %d rows per file, files per split %s",
             source, src_files, src_bytes / 1e6, meta["rows"], target, rows_per_file, files_per_split)

    t0 = time.perf_counter()
    spark = get_spark(f"dhs-4p5-{comp_id}", args.master)
    from pyspark.sql import functions as F  # noqa: PLC0415

    df = spark.read.parquet(storage.to_spark(source))
    counted = {r["region_split"]: int(r["count"]) for r in df.groupBy("region_split").count().collect()}
    if counted != {k: v for k, v in rows_meta.items() if v}:
        raise InputError(source, f"rows per split on disk {counted} differ from its {ds.METADATA_FILE} {rows_meta}")
    def write_split(split: str, n_files: int) -> None:
        part = df.where(F.col("region_split") == split).drop("region_split")
        # range partitions on task_id: each file is one contiguous, sorted task_id range, so
        # the layout is a function of the rows alone (and readers can skip files by task_id).
        # One file needs no range boundaries: coalesce instead of a shuffle.
        part = part.coalesce(1) if n_files == 1 else task_id_ranges(spark, part, n_files)
        (
            part.sortWithinPartitions("task_id")
            .write.mode("overwrite")  # only ever our own new prefix (checked above)
            .options(**{**ds.SPARK_PARQUET_OPTIONS, "compression": args.compression})
            .parquet(storage.to_spark(storage.join(target, f"region_split={split}")))
        )

    # the splits are independent jobs: submitted together, a one-file split does not leave the
    # other cores idle while it is written
    with ThreadPoolExecutor(max_workers=max(1, len(files_per_split))) as pool:
        for fut in [pool.submit(write_split, s, n) for s, n in sorted(files_per_split.items())]:
            fut.result()
    write_s = time.perf_counter() - t0

    # ---- verify against the source before anything points at the new data
    new = spark.read.parquet(storage.to_spark(target))
    new_counts = {r["region_split"]: int(r["count"]) for r in new.groupBy("region_split").count().collect()}
    distinct = int(new.agg(F.countDistinct("task_id")).first()[0])
    if new_counts != counted or distinct != sum(counted.values()):
        raise StepFailed(f"{target}: rows per split {new_counts} ({distinct} distinct task ids) differ from the source "
                         f"{counted}; CURRENT was not switched")
    files, nbytes = ds.dir_stats(target)
    from pipeline import lineage  # noqa: PLC0415

    found = lineage.data_fingerprint(target)
    new_meta = dict(meta)
    new_meta.update({
        "stage": "4p5",
        "created_utc": ds.utc_now(),
        "content_checksum": found["content_checksum"],
        "compaction": {"id": comp_id, "source": source, "source_checksum": source_fp["content_checksum"],
                       "source_files": src_files, "source_bytes": src_bytes,
                       "target_file_mb": args.target_file_mb, "rows_per_file": rows_per_file,
                       "files_per_split": files_per_split, "write_s": round(write_s, 3)},
        "rows_per_split": new_counts,
        "rows": sum(new_counts.values()),
        "files": files,
        "bytes": nbytes,
        "compression": args.compression,
    })
    storage.write_bytes(storage.join(target, ds.SUCCESS_FILE), b"")
    ds.write_metadata(target, new_meta)
    return _finish(root, rel, target, found, source_fp, new_meta, args, switch, before_switch, reused=False)


def _finish(root, rel, target, found, source_fp, meta, args, switch, before_switch, *, reused) -> dict[str, Any]:
    """Receipt for the run (--pipeline-run), then CURRENT when asked; the step's summary."""
    from pipeline import dataset as ds  # noqa: PLC0415
    from pipeline import lineage  # noqa: PLC0415

    summary = {"data": target, "rows_per_split": meta["rows_per_split"], "rows": meta["rows"],
               "files": found["files"], "bytes": found["bytes"], "content_checksum": found["content_checksum"],
               "source_checksum": source_fp["content_checksum"], "reused": reused,
               "source_files": (meta.get("compaction") or {}).get("source_files"),
               "source_bytes": (meta.get("compaction") or {}).get("source_bytes")}
    if args.pipeline_run:
        summary["receipt"] = lineage.write_receipt(root, args.pipeline_run, "compact", {
            **found, "source_uri": source_fp["data_uri"], "source_checksum": source_fp["content_checksum"],
            "rows_per_split": meta["rows_per_split"], "reused": reused})
    if before_switch is not None:
        before_switch(target)
    if switch:
        ds.set_current(root, rel)
        summary["current"] = rel
        log.info("CURRENT -> %s", rel)
    return summary


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pipeline.gate.spark_errors import unreadable_data_as_input_error  # noqa: PLC0415

    try:
        # a corrupt or vanished data file, wherever Spark notices it, is unusable input (exit 2)
        with unreadable_data_as_input_error("the step's input"):
            summary = run(argv)
    except InputError as exc:
        print(f"emr_steps.compact: error: {exc.source}: {exc.problem}", file=sys.stderr)
        return 2
    except StepFailed as exc:
        print(f"emr_steps.compact: FAILED: {exc}", file=sys.stderr)
        return 1
    print("DHS_STEP_SUMMARY " + json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    from emr_steps.compact import main as _main

    sys.exit(_main())
