"""Stage 4c on Spark: one contract row per manifest task, written under D/phase4c/.

    spark-submit emr_steps/inject.py --stage 4c --manifest-uri M --coadd-cache-prefix S/coadd \\
        --cosmos-bank-h5 B --output-prefix D [--run-config demo] [--skip-if-exists 1] [--force 1]
    python -m emr_steps.inject ...            (same flags; --master local[2] by default)

Driver: validates every input before any output (manifest readable and consistent with its
manifest.json, bank opens, coadd prefix exists; an InputError names the input), decides what a
rerun does (emr_steps.args), runs the injection, counts the written rows per split against the
manifest (a mismatch fails the step and leaves no _dhs_dataset.json), then writes
D/phase4c/_dhs_dataset.json: that file is the "complete" marker.

Executors: tasks are hash-partitioned by brickname and sorted by (brickname, task_id) inside a
partition, so each brick's coadds are read once; the bank is read once per Python worker process
(module-level cache; workers are reused between tasks). A brick that cannot be loaded gives
failed rows for all its tasks, naming the error; nothing escapes a brick, so one bad brick cannot
kill the job, and every task gets exactly one row.

Rows are a pure function of (manifest, bank, config, code): the default run_id is derived from
those inputs, so a rerun - including one after a killed run - writes identical rows.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

if __name__ == "__main__" and not __package__:  # spark-submit runs this file as a script
    try:
        import emr_steps  # noqa: F401 - the installed wheel (EMR) or the editable install (local)
    except ImportError:  # a bare checkout: the repo root is two levels up
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import storage
from pipeline.errors import InputError
from pipeline.manifest import MANIFEST_COLUMNS

log = logging.getLogger("dhs.inject")

#: Output rows per Arrow batch handed back to Spark (one row holds ~200 kB of pixels).
OUT_BATCH_ROWS = 32

class StepFailed(RuntimeError):
    """The step ran but its output cannot be trusted (e.g. a row-count mismatch); exit 1."""


# ============================================================================ executor side

#: bank URI -> CosmosBank, per Python worker process
_BANKS: dict[str, Any] = {}


def _bank(uri: str):
    if uri not in _BANKS:
        from pipeline.bank.store import open_bank  # noqa: PLC0415 - executors import lazily (seed 5.2)

        _BANKS[uri] = open_bank(storage.local_copy(uri))
    return _BANKS[uri]


def _brick_records(brickname: str, tasks: list[dict], bank, ctx, coadd_prefix: str, bands) -> list[dict]:
    """Exactly one record per task of one brick, whatever happens."""
    from pipeline.injection.task import failed_record, inject_brick_tasks, inject_task  # noqa: PLC0415
    from pipeline.survey.coadds import load_brick  # noqa: PLC0415

    try:
        brick = load_brick(coadd_prefix, brickname, bands)
    except InputError as exc:
        reason = f"brick {brickname} could not be loaded: {exc}"
        return [failed_record(t, reason, ctx) for t in tasks]
    except Exception as exc:  # noqa: BLE001 - a broken brick must not kill the job
        reason = f"brick {brickname} could not be loaded: unexpected {type(exc).__name__}: {exc}"
        return [failed_record(t, reason, ctx) for t in tasks]
    try:
        records = inject_brick_tasks(tasks, brick, bank, ctx)
    except Exception as exc:  # noqa: BLE001 - fall back to one task at a time
        log.warning("brick %s: inject_brick_tasks raised %r; retrying task by task", brickname, exc)
        records = []
        for t in tasks:
            try:
                records.append(inject_task(t, brick, bank, ctx))
            except Exception as exc2:  # noqa: BLE001
                records.append(failed_record(t, f"unexpected {type(exc2).__name__}: {exc2}", ctx))
    # one row per task, in task order: drop strays, fill gaps (a core bug must not lose a task)
    by_id = {r.get("task_id"): r for r in records}
    return [
        by_id.get(str(t["task_id"])) or failed_record(t, "injection returned no row for this task", ctx)
        for t in tasks
    ]


def inject_partition(batches: Iterable, *, settings: Mapping[str, Any]) -> Iterator:
    """mapInArrow body: manifest task batches (sorted by brickname) -> contract row batches."""
    if "NUMBA_CACHE_DIR" not in os.environ:  # seed 5.2: numba cache permissions; never a shared /tmp folder
        from emr_steps.steps import private_numba_cache_dir  # noqa: PLC0415

        os.makedirs(private_numba_cache_dir(), mode=0o700, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = private_numba_cache_dir()
    from pipeline.config import RunConfig  # noqa: PLC0415
    from pipeline.dataset import records_to_batch, spark_arrow_schema  # noqa: PLC0415
    from pipeline.injection.task import RunContext  # noqa: PLC0415

    cfg = RunConfig(**settings["run_config"])
    ctx = RunContext(run_id=settings["run_id"], pipeline_version=settings["pipeline_version"], config=cfg)
    schema = spark_arrow_schema()
    bank = _bank(settings["bank_uri"])
    prefix, bands = settings["coadd_prefix"], tuple(cfg.bands)
    # where a partition's time goes (Python side), logged once per partition: rendering vs
    # Arrow conversion vs waiting for the JVM to take the batches (the rest of the wall time)
    # (CPU seconds of this process: on a shared machine wall seconds measure the neighbours)
    clock = {"inject_s": 0.0, "arrow_s": 0.0, "tasks": 0, "bricks": 0, "t0": time.perf_counter(),
             "cpu0": time.process_time()}

    def emit(brickname, tasks):
        t0 = time.process_time()
        records = _brick_records(brickname, tasks, bank, ctx, prefix, bands)
        t1 = time.process_time()
        batches_out = [records_to_batch(records[i : i + OUT_BATCH_ROWS], schema)
                       for i in range(0, len(records), OUT_BATCH_ROWS)]
        clock["inject_s"] += t1 - t0
        clock["arrow_s"] += time.process_time() - t1
        clock["tasks"] += len(tasks)
        clock["bricks"] += 1
        yield from batches_out

    current, pending = None, []
    for batch in batches:
        for task in batch.to_pylist():
            if task["brickname"] != current and pending:
                yield from emit(current, pending)
                pending = []
            current = task["brickname"]
            pending.append(task)
    if pending:
        yield from emit(current, pending)
    wall = time.perf_counter() - clock["t0"]
    print(f"DHS_PARTITION_TIMING tasks={clock['tasks']} bricks={clock['bricks']} wall_s={wall:.2f} "
          f"cpu_s={time.process_time() - clock['cpu0']:.2f} inject_cpu_s={clock['inject_s']:.2f} "
          f"arrow_cpu_s={clock['arrow_s']:.2f} pid={os.getpid()}", file=sys.stderr)


# ============================================================================ driver side


def default_partitions(shuffle_partitions: int, parallelism: int, bricks: int) -> int:
    """Partitions of the task table: enough for ~4 per core so the last ones to finish are short,
    never more than one per brick (a brick is read once, by one partition), never fewer than
    spark.sql.shuffle.partitions asks for."""
    return max(1, shuffle_partitions, min(bricks, 4 * max(1, parallelism)))


def _manifest_info(parent: str) -> dict[str, Any]:
    """Check the manifest files and read manifest.json (no task rows are read here)."""
    from pipeline.storage import sha256  # noqa: PLC0415
    from pipeline.manifest import manifest_parquet_uri  # noqa: PLC0415

    parquet = manifest_parquet_uri(storage.to_s3(parent) if storage.is_s3(parent) else str(Path(parent).resolve()))
    mdir = parquet.rsplit("/", 1)[0] if storage.is_s3(parquet) else str(Path(parquet).parent)
    json_uri = storage.join(mdir, "manifest.json")
    try:
        doc = json.loads(storage.read_bytes(json_uri))
    except ValueError as exc:
        raise InputError(json_uri, f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or "tasks_per_split" not in doc:
        raise InputError(json_uri, "not a manifest document (no tasks_per_split)")
    return {
        "uri": mdir,
        "parquet": parquet,
        "json": doc,
        "sha256": sha256(parquet),
        "tasks_per_split": {s: int(v["tasks"]) for s, v in doc["tasks_per_split"].items()},
    }


def _check_tasks(spark, manifest: dict) -> dict[str, int]:
    """Read the task table with Spark (12M rows do not fit a 4 GB driver as pandas) and check
    what the step relies on. Returns tasks per split. Raises InputError naming the manifest."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    where = manifest["parquet"]
    try:
        df = spark.read.parquet(storage.to_spark(where))
    except Exception as exc:  # noqa: BLE001 - Spark raises AnalysisException & co
        raise InputError(where, f"cannot read the manifest with Spark: {exc}") from None
    # Every manifest column, not only the ones this step reads: a task without its lens or
    # source parameters would otherwise become a failed row instead of stopping the step.
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{where}: {missing[0]}", f"manifest lacks column(s) {missing}")
    stats = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("task_id").alias("ids"),
        F.sum(F.col("task_id").isNull().cast("int")).alias("null_ids"),
        F.sum(F.col("brickname").isNull().cast("int")).alias("null_bricks"),
        F.countDistinct("brickname").alias("bricks"),
    ).first()
    if stats["rows"] == 0:
        raise InputError(where, "manifest has no tasks")
    if stats["null_ids"] or stats["ids"] != stats["rows"]:
        raise InputError(f"{where}: task_id", f"{stats['rows']} tasks but {stats['ids']} distinct non-null task ids")
    if stats["null_bricks"]:
        raise InputError(f"{where}: brickname", f"{stats['null_bricks']} task(s) without a brick")
    per_split = {r["region_split"]: int(r["count"]) for r in df.groupBy("region_split").count().collect()}
    declared = {s: n for s, n in manifest["tasks_per_split"].items() if n}
    if per_split != declared:
        raise InputError(where, f"tasks per split {per_split} differ from manifest.json {declared}")
    manifest["bricks"] = int(stats["bricks"])
    return per_split


def _written_counts(spark, data_spark_uri: str) -> tuple[dict[str, int], int]:
    from pyspark.sql import functions as F  # noqa: PLC0415

    df = spark.read.parquet(data_spark_uri).select("task_id", "region_split")
    per_split = {r["region_split"]: int(r["count"]) for r in df.groupBy("region_split").count().collect()}
    distinct = int(df.agg(F.countDistinct("task_id")).first()[0])
    return per_split, distinct


def run(argv: list[str] | None = None) -> dict[str, Any]:
    """The whole step; returns a summary dict. Raises InputError (bad input, before any output)
    or StepFailed (the written output does not match the manifest)."""
    from emr_steps.args import dataset_paths, decide_rerun, derived_run_id, parse_args, run_config_from_args  # noqa: PLC0415
    from emr_steps.spark_session import get_spark, spark_schema  # noqa: PLC0415
    from pipeline import __version__ as pipeline_version  # noqa: PLC0415
    from pipeline import dataset as ds  # noqa: PLC0415
    from pipeline.bank.store import open_bank  # noqa: PLC0415
    from pipeline.lineage import check_run_name  # noqa: PLC0415

    args = parse_args(argv, stage="4c", prog="emr_steps.inject")
    if args.stage != "4c":
        raise InputError("--stage", f"emr_steps.inject runs stage 4c, got {args.stage}")
    for flag, value in (("--manifest-uri", args.manifest_uri), ("--coadd-cache-prefix", args.coadd_cache_prefix), ("--cosmos-bank-h5", args.cosmos_bank_h5)):
        if not value:
            raise InputError(flag, "required for stage 4c")
    t_start = time.perf_counter()

    # ---- inputs, all checked before anything is written
    manifest = _manifest_info(args.manifest_uri)
    cfg = run_config_from_args(args, base=manifest["json"].get("config"))
    bank_uri = storage.to_s3(args.cosmos_bank_h5) if storage.is_s3(args.cosmos_bank_h5) else str(Path(args.cosmos_bank_h5).resolve())
    bank = open_bank(storage.local_copy(bank_uri))
    coadd_prefix = storage.to_s3(args.coadd_cache_prefix) if storage.is_s3(args.coadd_cache_prefix) else str(Path(args.coadd_cache_prefix).resolve())
    if not storage.exists(coadd_prefix):
        raise InputError(args.coadd_cache_prefix, "no such coadd cache prefix")
    run_id = args.run_id or derived_run_id("4c", manifest["sha256"], bank.checksum, cfg.to_dict(), pipeline_version)
    paths = dataset_paths(args.output_prefix)

    # decided before Spark starts: a skipped rerun costs seconds, not a Spark session
    declared_tasks = sum(manifest["tasks_per_split"].values())
    complete, reason = ds.completeness(paths.data, manifest_sha256=manifest["sha256"], tasks=declared_tasks, run_config=cfg.to_dict())
    action = decide_rerun(complete, reason, skip_if_exists=args.skip_if_exists, force=args.force, where=paths.data)
    if args.pipeline_run:
        check_run_name(args.pipeline_run)
    if action == "skip":
        log.info("%s is complete (%s): skipped (--skip-if-exists)", paths.data, reason)
        meta = ds.read_metadata(paths.data)
        summary = {"skipped": True, "data": paths.data, **{k: meta[k] for k in ("rows_per_split", "rows", "files", "bytes")}}
        return _with_receipt(summary, args, paths, meta)

    spark = get_spark(f"dhs-4c-{run_id}", args.master)
    per_split = _check_tasks(spark, manifest)
    n_tasks = sum(per_split.values())
    if storage.exists(paths.data):
        log.info("replacing %s (%s)", paths.data, reason)
        ds.remove_metadata(paths.data)  # first: a crash below must not leave an old "complete" marker

    # ---- inject
    n_parts = args.num_partitions or default_partitions(
        int(spark.conf.get("spark.sql.shuffle.partitions")), spark.sparkContext.defaultParallelism, manifest["bricks"])
    # Keep one writer per split open instead of sorting ~200 kB pixel rows by region_split
    # before the write (Spark adds that sort for partitionBy otherwise).
    spark.conf.set("spark.sql.maxConcurrentOutputFileWriters", "8")
    settings = {
        "run_config": cfg.to_dict(),
        "run_id": run_id,
        "pipeline_version": pipeline_version,
        "bank_uri": bank_uri,
        "coadd_prefix": coadd_prefix,
    }
    tasks_df = spark.read.parquet(storage.to_spark(manifest["parquet"]))
    rows = (
        # an explicit partition count: AQE would otherwise coalesce the (small) task table into
        # a handful of partitions and leave most cores idle during the (expensive) injection.
        # By range of brickname, not hash: partitions hold similar task counts (hashing put 10
        # of the demo's 24 bricks into one of 4 partitions, which then ran alone on one core),
        # and a brick still lives in exactly one partition (all its rows share the key).
        tasks_df.repartitionByRange(n_parts, "brickname")
        .sortWithinPartitions("brickname", "task_id")
        .mapInArrow(partial(inject_partition, settings=settings), spark_schema())
    )
    t_inject = time.perf_counter()
    (
        rows.write.mode("overwrite")
        .partitionBy("region_split")
        .options(**{**ds.SPARK_PARQUET_OPTIONS, "compression": args.compression})
        .parquet(paths.data_spark)
    )
    inject_s = time.perf_counter() - t_inject

    # ---- verify: exactly one row per task, per split
    written, distinct = _written_counts(spark, paths.data_spark)
    if written != per_split or distinct != n_tasks:
        raise StepFailed(
            f"{paths.data}: wrote {sum(written.values())} rows ({written}, {distinct} distinct task ids) "
            f"for {n_tasks} manifest tasks ({per_split}); the output is incomplete and was not marked complete"
        )
    files, nbytes = ds.dir_stats(paths.data)
    meta = ds.build_metadata(
        stage="4c",
        run_id=run_id,
        run_config=cfg.to_dict(),
        rows_per_split=written,
        files=files,
        bytes_=nbytes,
        manifest={"uri": manifest["uri"], "sha256": manifest["sha256"], "tasks": n_tasks, "tasks_per_split": per_split},
        bank={"uri": bank_uri, "sha256": bank.checksum, "hlr_filter_arcsec": list(bank.hlr_filter_arcsec), "n_galaxies": bank.n},
        extra={
            "coadd_cache_prefix": coadd_prefix,
            "compression": args.compression,
            "spark": {"master": spark.sparkContext.master, "partitions": n_parts, "version": spark.version},
            "timing": {"inject_write_s": round(inject_s, 3), "step_s": round(time.perf_counter() - t_start, 3),
                       "stamps_per_s": round(n_tasks / inject_s, 3) if inject_s > 0 else None},
            "cost": _core_hours(spark, time.perf_counter() - t_start, args.planned_core_hours),
        },
    )
    ds.write_metadata(paths.data, meta)
    summary = {"skipped": False, "data": paths.data, "rows_per_split": written, "rows": n_tasks, "files": files,
               "bytes": nbytes, "stamps_per_s": meta["timing"]["stamps_per_s"], "run_id": run_id}
    return _with_receipt(summary, args, paths, meta)


def _core_hours(spark, step_s: float, planned: float | None) -> dict[str, Any]:
    """The step's measured core-hours (wall time x the cores it held) beside what the plan sized
    it for (issue 19: is the cost model right on this cluster?). Cores: N of local[N], else the
    executors registered at the end x spark.executor.cores (with dynamic allocation, a lower bound
    of what was held during the step)."""
    sc = spark.sparkContext
    m = re.fullmatch(r"local\[(\d+|\*)\]", sc.master or "")
    if m:
        cores = (os.cpu_count() or 1) if m.group(1) == "*" else int(m.group(1))
        how = "local master"
    else:
        executors = max(0, sc._jsc.sc().getExecutorMemoryStatus().size() - 1)  # minus the driver
        cores = executors * int(spark.conf.get("spark.executor.cores", "1"))
        how = f"{executors} executors x spark.executor.cores at the end of the step"
    return {"cores": cores, "cores_from": how, "actual_core_hours": round(step_s * cores / 3600, 6),
            "planned_core_hours": None if planned is None else round(float(planned), 6)}


def _with_receipt(summary: dict[str, Any], args, paths, meta: dict[str, Any]) -> dict[str, Any]:
    """With --pipeline-run: record what this run's inject left in D/phase4c (pipeline.lineage), so
    the run's compaction reads exactly these rows, whether they were written now or kept."""
    if not args.pipeline_run:
        return summary
    from pipeline import lineage  # noqa: PLC0415

    fp = lineage.data_fingerprint(paths.data)
    summary["receipt"] = lineage.write_receipt(paths.root, args.pipeline_run, "inject", {
        **fp, "rows_per_split": meta["rows_per_split"], "rows_run_id": meta["run_id"],
        "run_config": meta["run_config"], "manifest_sha256": meta.get("manifest", {}).get("sha256"),
        "kept_existing": bool(summary["skipped"]),
    })
    summary["content_checksum"] = fp["content_checksum"]
    return summary


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pipeline.gate.spark_errors import unreadable_data_as_input_error  # noqa: PLC0415

    try:
        # a corrupt or vanished data file, wherever Spark notices it, is unusable input (exit 2)
        with unreadable_data_as_input_error("the step's input"):
            summary = run(argv)
    except InputError as exc:
        print(f"emr_steps.inject: error: {exc.source}: {exc.problem}", file=sys.stderr)
        return 2
    except StepFailed as exc:
        print(f"emr_steps.inject: FAILED: {exc}", file=sys.stderr)
        return 1
    print("DHS_STEP_SUMMARY " + json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    # Run the *importable* module, not this __main__ copy: executors unpickle inject_partition by
    # module reference, so its per-process bank cache (_BANKS) survives from task to task.
    from emr_steps.inject import main as _main

    sys.exit(_main())
