"""Stage 4p5 on Spark: rewrite the current data into fewer, larger files under a NEW prefix, verify,
then switch D/CURRENT to it.

    spark-submit emr_steps/compact.py --stage 4p5 --output D [--parent D/phase4c] [--target-file-mb 256]
    python -m emr_steps.compact --output D

Order of operations (each step only after the previous one succeeded):
 1. source = --parent (a data dir or a dataset root), else D's current data
    (pipeline.dataset.resolve_data_uri); it must be complete (have _dhs_dataset.json);
 2. rows per file = target bytes / (source bytes / source rows); per split, ceil(rows / that)
    files, each a contiguous task_id range (range-partitioned, sorted), written to
    D/compacted/<id>/region_split=<s>/;
 3. verify: rows per split of the new data == rows counted in the source == the source's
    _dhs_dataset.json; distinct task ids == rows;
 4. write D/compacted/<id>/_dhs_dataset.json;
 5. replace D/CURRENT = {"data": "compacted/<id>"} in one atomic write.
Nothing is rewritten in place and nothing is deleted: an interruption anywhere before 5 leaves
CURRENT (or D/phase4c) pointing at the previous data, whole. Old prefixes are kept until a
retention policy removes them.
"""

from __future__ import annotations

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


def _source_of(args) -> tuple[str, str]:
    """(dataset root, source data URI)."""
    from emr_steps.args import dataset_paths  # noqa: PLC0415
    from pipeline.dataset import resolve_data_uri  # noqa: PLC0415

    root = dataset_paths(args.output).root
    if not args.parent:
        return root, resolve_data_uri(root)
    parent = storage.to_s3(args.parent).rstrip("/") if storage.is_s3(args.parent) else str(Path(args.parent).resolve())
    return root, resolve_data_uri(parent)


def run(argv: list[str] | None = None, *, before_switch: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The whole step. `before_switch(new_data_uri)` is called after verification and metadata,
    right before CURRENT is replaced (tests use it to simulate an interruption)."""
    from emr_steps.args import parse_args  # noqa: PLC0415
    from emr_steps.spark_session import get_spark  # noqa: PLC0415
    from pipeline import dataset as ds  # noqa: PLC0415

    args = parse_args(argv, stage="4p5", prog="emr_steps.compact")
    if args.stage != "4p5":
        raise InputError("--stage", f"emr_steps.compact runs stage 4p5, got {args.stage}")
    root, source = _source_of(args)
    meta = ds.read_metadata(source)
    if meta is None:
        raise InputError(source, f"no {ds.METADATA_FILE}: not a complete dataset (did stage 4c finish?)")
    src_files, src_bytes = ds.dir_stats(source)
    if src_files == 0:
        raise InputError(source, "no Parquet data files")
    rows_meta = {k: int(v) for k, v in meta["rows_per_split"].items()}
    compaction_id = args.run_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    rel = f"{ds.COMPACTED_DIR}/{compaction_id}"
    target = storage.join(root, ds.COMPACTED_DIR, compaction_id)
    if storage.to_s3(target).rstrip("/") == storage.to_s3(source).rstrip("/"):
        raise InputError("--run-id", f"{target} is the source itself; compaction never rewrites in place")
    if ds.read_metadata(target) is not None:
        raise InputError(target, "already holds a complete compaction; choose another --run-id")

    rows_per_file, files_per_split = plan_files(rows_meta, meta["rows"], src_bytes, args.target_file_mb)
    log.info("compacting %s (%d files, %.1f MB, %d rows) -> %s: %d rows per file, files per split %s",
             source, src_files, src_bytes / 1e6, meta["rows"], target, rows_per_file, files_per_split)

    t0 = time.perf_counter()
    spark = get_spark(f"dhs-4p5-{compaction_id}", args.master)
    from pyspark.sql import functions as F  # noqa: PLC0415

    df = spark.read.parquet(storage.to_spark(source))
    counted = {r["region_split"]: int(r["count"]) for r in df.groupBy("region_split").count().collect()}
    if counted != {k: v for k, v in rows_meta.items() if v}:
        raise InputError(source, f"rows per split on disk {counted} differ from its {ds.METADATA_FILE} {rows_meta}")
    def write_split(split: str, n_files: int) -> None:
        part = df.where(F.col("region_split") == split).drop("region_split")
        # range partitions on task_id: each file is one contiguous, sorted task_id range, so
        # the layout is a function of the rows alone (and readers can skip files by task_id).
        # One file needs no range boundaries: coalesce instead of a sampled range shuffle (which
        # reads the pixel rows twice and shuffles them once).
        part = part.coalesce(1) if n_files == 1 else part.repartitionByRange(n_files, "task_id")
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
    new_meta = dict(meta)
    new_meta.update({
        "stage": "4p5",
        "created_utc": ds.utc_now(),
        "compaction": {"id": compaction_id, "source": source, "source_files": src_files, "source_bytes": src_bytes,
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
    if before_switch is not None:
        before_switch(target)
    ds.set_current(root, rel)
    log.info("CURRENT -> %s", rel)
    return {"data": target, "current": rel, "rows_per_split": new_counts, "rows": new_meta["rows"],
            "files": files, "bytes": nbytes, "source_files": src_files, "source_bytes": src_bytes}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
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
