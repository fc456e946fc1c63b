"""`dhs promote`: record a validated dataset as promoted (never moves or deletes data)."""

from __future__ import annotations

EPILOG = """\
example:
  dhs promote demo_output/dataset --validation demo_output/dataset/validation/run1
  # -> demo_output/dataset/promotion.json (+ promotions/<seq>.json, CURRENT -> the validated data)

Refuses (exit 1) when the validation failed, its suite is weaker than the run config's minimum,
or the data changed since it was validated; promoting the same dataset with the same validation
again returns the same record. Consumers check a promotion with `dhs verify-promoted`.
"""


def register(subparsers) -> None:
    from dhs_cli.main import HelpFormatter

    p = subparsers.add_parser("promote", help="promote a dataset whose validation passed",
                              description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("dataset", metavar="DATASET", help="dataset dir or URI")
    p.add_argument("--validation", required=True, help="validation dir or its validation.json")
    p.add_argument("--record-out", default=None, help="where to write the record (default DATASET/promotion.json)")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from pipeline.gate.promote import PromotionRefused, promote_dataset

    try:
        uri, record = promote_dataset(args.dataset, validation=args.validation, record_out=args.record_out)
    except PromotionRefused as exc:
        print(f"dhs promote: refused: {exc}", file=sys.stderr)
        return 1
    print(f"dhs promote: promoted {record['data_uri']} (checksum {record['content_checksum'][:12]}) -> {uri}")
    return 0
