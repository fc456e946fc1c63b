"""`dhs compact`: stage 4p5 on local Spark (fewer, larger files under D/compacted/<id>, then
D/CURRENT switched), through the same step definition the EMR backend uses."""

from __future__ import annotations

import time

from pipeline.cli.main import HelpFormatter

EPILOG = """\
example:
  dhs compact --output demo_output/dataset --target-file-mb 256
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compact", help="stage 4p5: compact the dataset into fewer, larger files (Spark)",
        description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter,
    )
    p.add_argument("--output", required=True, help="dataset root D")
    p.add_argument("--source", default=None, help="data to compact (default: D's current data)")
    p.add_argument("--target-file-mb", type=float, default=256, help="target Parquet file size")
    p.add_argument("--id", dest="compaction_id", default=None, help="name of D/compacted/<id> (default: UTC time)")
    p.add_argument("--master", default=None, help="Spark master (default $DHS_SPARK_MASTER or local[2])")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from emr_steps.steps import compact_step, run_local  # noqa: PLC0415
    from pipeline.cli.inject_cmd import report  # noqa: PLC0415

    params = {"output": args.output, "parent": args.source, "target_file_mb": args.target_file_mb,
              "compaction_id": args.compaction_id}
    t0 = time.perf_counter()
    proc = run_local(compact_step(params), master=args.master, tail_lines=400)
    return report(proc, "compact", time.perf_counter() - t0)
