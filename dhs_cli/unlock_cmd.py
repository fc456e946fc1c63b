"""`dhs unlock`: remove a dead run's lock on a dataset prefix (pipeline.run_lock)."""

from __future__ import annotations

EPILOG = """\
example:
  dhs unlock s3://bucket/phase4/v5 --run manual__2026-12-01T03_07_47
  # only after checking that run is over: the lock keeps two runs from overwriting each other
"""


def register(subparsers) -> None:
    from dhs_cli.main import HelpFormatter

    p = subparsers.add_parser("unlock", help="release a dead run's lock on a dataset prefix",
                              description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("dataset", metavar="DATASET", help="dataset root")
    p.add_argument("--run", required=True, help="the run that holds the lock (as the refusal names it)")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from pipeline import run_lock

    holder = run_lock.holder(args.dataset)
    if holder is None:
        print(f"dhs unlock: {args.dataset} is not locked")
        return 0
    if not run_lock.release(args.dataset, args.run):
        print(f"dhs unlock: refused: the lock is held by run {holder.get('run')!r}, not {args.run!r}", file=sys.stderr)
        return 1
    print(f"dhs unlock: released {args.dataset} (was held by {args.run})")
    return 0
