"""spark-submit entry for the gate: validate a dataset with the session spark-submit gives us.

  spark-submit emr_steps/validate.py --dataset D --manifest M --variant production \
      --out D/validation/<run> [--reference-profile P]

Exit 0 pass, 1 gate failed, 2 unusable input (the Airflow gate operator reads validation.json).
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--variant", default="production")
    p.add_argument("--out", required=True)
    p.add_argument("--reference-profile", default=None)
    args = p.parse_args(argv)

    from pyspark.sql import SparkSession

    from pipeline.errors import InputError
    from pipeline.gate.validate import validate_dataset

    spark = SparkSession.builder.appName("dhs-validate").getOrCreate()
    try:
        result = validate_dataset(args.dataset, manifest_uri=args.manifest, variant=args.variant,
                                  out_dir=args.out, reference_profile=args.reference_profile, spark=spark)
    except InputError as exc:
        print(f"validate: error: {exc.source}: {exc.problem}", file=sys.stderr)
        return 2
    print("gate PASSED" if result.passed else "gate FAILED:\n  " + "\n  ".join(result.failures))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
