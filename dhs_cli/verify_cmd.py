"""`dhs verify-promoted`: check a promoted dataset before reading it (exit 0 ok, 1 refused)."""

from __future__ import annotations

EPILOG = """\
example:
  dhs verify-promoted demo_output/dataset
  dhs verify-promoted s3://bucket/phase4/v5 --min-suite production
  # prints the promoted data URI to read (never D/CURRENT) and its checksum

Refuses (exit 1, saying why) when nothing is promoted, the promotion was withdrawn (CURRENT moved),
any data file changed after promotion (content checksum), the cited validation did not pass or
judged other data, or the suite is weaker than the run config's minimum (or --min-suite).
"""


def register(subparsers) -> None:
    from dhs_cli.main import HelpFormatter

    p = subparsers.add_parser("verify-promoted", help="verify a promoted dataset (checksum, validation, suite)",
                              description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("dataset", metavar="DATASET", help="dataset root (holds promotion.json)")
    p.add_argument("--min-suite", default=None, help="refuse unless the passed suite is at least as strict as this one")
    p.add_argument("--expect-checksum", default=None, help="the content checksum you were told about (an Asset event's)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import sys

    from pipeline.gate.verify import PromotionInvalid, verify_promoted

    try:
        record = verify_promoted(args.dataset, min_suite=args.min_suite, expect_checksum=args.expect_checksum)
    except PromotionInvalid as exc:
        print(f"dhs verify-promoted: refused: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: record.get(k) for k in ("data_uri", "content_checksum", "suite", "min_gate_suite", "sequence",
                                                  "run")}, indent=1))
    print(f"dhs verify-promoted: OK: read {record['data_uri']} (suite {record['suite']}, "
          f"checksum {record['content_checksum'][:16]})")
    return 0
