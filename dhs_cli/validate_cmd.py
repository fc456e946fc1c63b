"""`dhs validate`: gate a dataset (exit 0 pass, 1 gate failed, 2 unusable input)."""

from __future__ import annotations

import json

EPILOG = """\
example:
  dhs validate demo_output/dataset --manifest-uri demo_output/manifest --gate-suite demo \\
      --out demo_output/dataset/validation/run1
  # -> validation.json, profile.json, data_docs/index.html, report/index.html in --out
  dhs validate D --manifest-uri M --gate-suite production --out D/validation/r2 \\
      --reference-profile D_prev/validation/r1/profile.json     # also checks drift

exit codes: 0 the gate passed, 1 the gate failed (the failed checks are listed), 2 unusable input
"""


def register(subparsers) -> None:
    from dhs_cli.main import HelpFormatter, add_run_param

    p = subparsers.add_parser("validate", help="gate a dataset: row contract, profile, GX suites, Data Docs, report",
                              description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("dataset", metavar="DATASET", help="dataset dir or URI (follows DATASET/CURRENT)")
    add_run_param(p, "manifest_uri", required=True, help="manifest dir (manifest.json / manifest.parquet)")
    add_run_param(p, "gate_suite", default="demo",
                  help="suite: a name (expectations/<name>.yaml) or a YAML path")
    p.add_argument("--out", default=None, help="output dir (default DATASET/validation/latest)")
    p.add_argument("--reference-profile", default=None, help="profile.json of the last promoted dataset (drift)")
    p.add_argument("--no-docs", action="store_true", help="skip GX Data Docs and the HTML report")
    p.add_argument("--no-report", action="store_true",
                   help="skip the HTML report only (it reads pixel rows for its gallery); Data Docs are still built")
    p.set_defaults(func=run)


def run(args) -> int:
    from pipeline import storage
    from pipeline.gate.validate import validate_dataset

    out = args.out or storage.join(args.dataset, "validation", "latest")
    # unreadable data raises InputError naming the file (exit 2 in dhs_cli.main), never exit 1
    result = validate_dataset(args.dataset, manifest_uri=args.manifest_uri, variant=args.gate_suite, out_dir=out,
                              reference_profile=args.reference_profile,
                              build_docs=not args.no_docs, build_report=not (args.no_docs or args.no_report))
    print(json.dumps({"passed": result.passed, "validation": result.validation_json,
                      "data_docs": result.data_docs_index, "report": result.report_index}))
    if result.passed:
        print(f"dhs validate: gate PASSED ({len(result.expectations)} checks)")
        return 0
    print(f"dhs validate: gate FAILED, {len(result.failures)} failed check(s):")
    for f in result.failures:
        print(f"  - {f}")
    return 1
