"""`dhs compact`: stage 4p5 on local Spark (fewer, larger files under D/compacted/<id>, then
D/CURRENT switched), through the same step definition the EMR backend uses."""

from __future__ import annotations

import time

from dhs_cli.main import HelpFormatter, add_run_param

EPILOG = """\
example:
  dhs compact --output-prefix demo_output/dataset --target-file-mb 256
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compact", help="stage 4p5: compact the dataset into fewer, larger files (Spark)",
        description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter,
    )
    add_run_param(p, "output_prefix", required=True, help="dataset root D")
    p.add_argument("--source", default=None, help="data to compact (default: D's current data)")
    add_run_param(p, "target_file_mb", type=float, help="target Parquet file size (MB)")
    p.add_argument("--id", dest="compaction_id", default=None, help="name of D/compacted/<id> (default: UTC time)")
    add_run_param(p, "local_master", help="Spark master (default $DHS_SPARK_MASTER or local[2])")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from emr_steps.steps import compact_step, run_local  # noqa: PLC0415
    from dhs_cli.inject_cmd import report  # noqa: PLC0415

    params = {"output_prefix": args.output_prefix, "compact_source": args.source, "target_file_mb": args.target_file_mb,
              "compaction_id": args.compaction_id}
    t0 = time.perf_counter()
    proc = run_local(compact_step(params), master=args.local_master, tail_lines=400)
    return report(proc, "compact", time.perf_counter() - t0)
