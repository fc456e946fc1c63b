"""spark-submit entry for the validation step: row contract, profile and suites on the session
spark-submit gives us; writes validation.json (+ Data Docs, report) under --out.

  spark-submit emr_steps/validate.py --output-prefix D --manifest-uri M --gate-suite production \
      --out D/validation/<run> [--reference-profile P] [--pipeline-run R]

With --pipeline-run R the step validates exactly the compaction that R's compact step recorded
(D/runs/R/compact.json: its immutable URI and content checksum), never whatever D/CURRENT points
at, and refuses data whose checksum differs from the receipt's (exit 1, naming both ends).

Exit codes: 0 once validation.json is written, whether the gate passed or not; 2 unusable input
(nothing written; unreadable data files included, named); 1 the data is not what the run's
previous step wrote; anything else is a crash. Deciding is the Airflow gate task's job: it reads
validation.json and fails the run with the list of failed expectations, so a failing gate shows
up on the gate task (with its XCom summary and Data Docs link) instead of as a failed Spark step.
`dhs validate` (the CLI) keeps exit 1 for a failed gate.
"""

from __future__ import annotations

import argparse
import sys
import threading


def prefetch_suite_imports() -> threading.Thread:
    """Import great_expectations (~8-10 s of CPU, first use in the process) in a background thread
    while the Spark profile scans the rows, instead of on the critical path after it (issue 17:
    the cold gate). The suites import the same modules later and find them loaded; the environment
    and logger settings are the ones pipeline.gate.suites applies before its import. A failed
    import here is ignored: the suites' own import then raises it where it always did."""
    import logging
    import os

    def _import() -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # as suites.run_suites: set before the import
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        try:
            import great_expectations  # noqa: F401
            import great_expectations.checkpoint  # noqa: F401
            import great_expectations.expectations  # noqa: F401
        except Exception:  # noqa: BLE001 - see the docstring
            pass

    t = threading.Thread(target=_import, name="dhs-gx-import", daemon=True)
    t.start()
    return t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    from pipeline import run_params  # noqa: PLC0415

    # the run parameters' step flags (pipeline.run_params): the dataset root (or, by hand without
    # --pipeline-run, a data folder), the manifest, the suite
    for name, kwargs in (("output_prefix", {"required": True}), ("manifest_uri", {"required": True}),
                         ("gate_suite", {"default": "production"})):
        p.add_argument(run_params.param(name).step_flag, dest=name, **kwargs)
    p.add_argument("--out", required=True)
    p.add_argument("--reference-profile", default=None)
    p.add_argument("--pipeline-run", dest="pipeline_run", default=None,
                   help="validate the compaction this run's compact step recorded (D/runs/<run>/compact.json)")
    args = p.parse_args(argv)
    prefetch_suite_imports()

    from emr_steps.spark_session import get_spark
    from pipeline import lineage
    from pipeline.errors import InputError
    from pipeline.gate.validate import validate_dataset

    try:
        data_uri, expected, root = args.output_prefix, None, None
        if args.pipeline_run:
            lineage.check_run_name(args.pipeline_run)
            root = str(args.output_prefix).rstrip("/")
            expected = lineage.read_receipt(root, args.pipeline_run, "compact")
            expected["what"] = (f"what run {args.pipeline_run}'s compact step wrote "
                                f"({lineage.receipt_uri(root, args.pipeline_run, 'compact')})")
            data_uri = expected["data_uri"]
        # the steps' one factory: its 128-row Parquet reader batch keeps pixel rows from running the
        # heap out of memory (Spark's 4096-row default did, on the 6,000-row demo's compacted files)
        spark = get_spark("dhs-validate")
        result = validate_dataset(data_uri, manifest_uri=args.manifest_uri, variant=args.gate_suite,
                                  out_dir=args.out, reference_profile=args.reference_profile, spark=spark,
                                  pipeline_run=args.pipeline_run, dataset_root=root, expected=expected)
    except InputError as exc:
        print(f"validate: error: {exc.source}: {exc.problem}", file=sys.stderr)
        return 2
    except lineage.ChainBroken as exc:
        print(f"validate: FAILED: {exc}; nothing was validated", file=sys.stderr)
        return 1
    verdict = "PASSED" if result.passed else f"FAILED ({len(result.failures)} check(s)); the gate task decides"
    print(f"validation written to {result.validation_json}: gate {verdict}")
    for line in result.failures:
        print(f"  - {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
