"""`dhs inject`: stage 4c on local Spark, through the same step definition the EMR backend uses
(emr_steps.steps.inject_step -> to_local_argv -> spark-submit)."""

from __future__ import annotations

import json
import sys
import time

from dhs_cli.main import HelpFormatter, add_run_param

EPILOG = """\
example:
  dhs inject --manifest-uri demo_output/manifest --coadd-cache-prefix demo_output/survey/coadd \\
      --cosmos-bank-h5 demo_output/bank/cosmos_bank.h5 --output-prefix demo_output/dataset --run-config demo
Writes demo_output/dataset/phase4c/region_split=<split>/part-*.parquet and _dhs_dataset.json.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inject", help="stage 4c: inject lensed COSMOS sources into LRG cutouts (Spark)",
        description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter,
    )
    add_run_param(p, "manifest_uri", required=True,
                  help="manifest directory M (M/manifest.parquet, M/manifest.json)")
    add_run_param(p, "coadd_cache_prefix", required=True, help="coadd cache prefix, e.g. S/coadd")
    add_run_param(p, "cosmos_bank_h5", required=True, help="COSMOS bank HDF5")
    add_run_param(p, "output_prefix", required=True, help="dataset root D")
    add_run_param(p, "run_config", help="RunConfig YAML or name (default: the manifest's)")
    add_run_param(p, "bands", help="comma-separated, e.g. g,r,z (default: the run config's)")
    add_run_param(p, "local_master", help="Spark master (default $DHS_SPARK_MASTER or local[2])")
    p.add_argument("--partitions", type=int, default=None, help="Spark partitions of the task table")
    p.add_argument("--skip-if-exists", action="store_true", help="keep a complete output of this very run")
    p.add_argument("--force", action="store_true", help="rewrite whatever is at the output")
    p.add_argument("--run-id", default=None, help="default: derived from the inputs (reruns give identical rows)")
    p.set_defaults(func=_run)


def check_inputs(args) -> None:
    """What can be checked in a second is checked before spark-submit (a JVM and a Spark session
    cost ~20 s): the run config, the bands and the manifest's shape. The step checks them again
    (it is also run by the DAG without this CLI). InputError names the file and the problem."""
    from pipeline.config import load_run_config, parse_bands  # noqa: PLC0415

    if args.run_config:
        load_run_config(args.run_config)
    if args.bands:
        parse_bands(args.bands)
    check_manifest(args.manifest_uri)


def check_manifest(uri: str) -> None:
    """Columns and row count from the Parquet footer, task ids from that one column: no pixels,
    no parameters read. Refuses a missing/unreadable file, a missing column, zero rows and
    duplicate task ids."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    from pipeline import storage  # noqa: PLC0415
    from pipeline.errors import InputError  # noqa: PLC0415
    from pipeline.manifest import MANIFEST_COLUMNS, manifest_parquet_uri  # noqa: PLC0415

    path = manifest_parquet_uri(uri)
    data = storage.read_bytes(path)  # "no such file" names it
    try:
        pf = pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(path, f"not a Parquet manifest ({exc})") from None
    names = pf.schema_arrow.names
    missing = [c for c in MANIFEST_COLUMNS if c not in names]
    if missing:
        raise InputError(f"{path}: {missing[0]}", f"manifest lacks column(s) {missing}")
    if pf.metadata.num_rows == 0:
        raise InputError(path, "manifest has no tasks (0 rows)")
    ids = pf.read(columns=["task_id"]).column("task_id")
    if ids.null_count:
        raise InputError(f"{path}: task_id", f"{ids.null_count} task(s) without a task_id")
    counts = pc.value_counts(ids)
    repeated = pc.filter(counts, pc.greater(counts.field("counts"), 1))
    if len(repeated):
        example = repeated[0]["values"].as_py()
        raise InputError(f"{path}: task_id", f"not unique: {len(repeated)} task id(s) appear more than once, "
                                             f"e.g. {example!r}")


def _run(args) -> int:
    from emr_steps.steps import inject_step, run_local  # noqa: PLC0415

    check_inputs(args)

    params = {
        **{name: getattr(args, name) for name in ("manifest_uri", "coadd_cache_prefix", "cosmos_bank_h5",
                                                   "output_prefix", "run_config", "bands")},
        "run_id": args.run_id,
        "num_partitions": args.partitions,
        "skip_if_exists": 1 if args.skip_if_exists else None, "force": 1 if args.force else None,
    }
    t0 = time.perf_counter()
    proc = run_local(inject_step(params), master=args.local_master, tail_lines=400)
    return report(proc, "inject", time.perf_counter() - t0)


def report(proc, what: str, wall_s: float) -> int:
    """Print the step's summary (rows per split, files, bytes, rate); map its exit code."""
    summary = None
    for line in proc.stdout.splitlines():
        if line.startswith("DHS_STEP_SUMMARY "):
            summary = json.loads(line[len("DHS_STEP_SUMMARY "):])
    if proc.returncode != 0 or summary is None:
        print(f"dhs {what}: the Spark step failed (exit {proc.returncode}); see the log above", file=sys.stderr)
        return proc.returncode if proc.returncode in (1, 2) else 1
    if summary.get("skipped"):
        print(f"{summary['data']}: already complete, skipped")
    rows = summary.get("rows_per_split", {})
    print(f"{summary['data']}: {summary['rows']} rows ({', '.join(f'{k} {v}' for k, v in sorted(rows.items()))}), "
          f"{summary['files']} files, {summary['bytes'] / 1e6:.1f} MB")
    if summary.get("current"):
        print(f"CURRENT -> {summary['current']} (was {summary['source_files']} files, {summary['source_bytes'] / 1e6:.1f} MB)")
    if not summary.get("skipped") and what == "inject":
        print(f"{summary['rows'] / wall_s:.2f} stamps/s end to end ({wall_s:.1f} s including Spark start-up); "
              f"{summary.get('stamps_per_s')} stamps/s in the injection job")
    return 0
