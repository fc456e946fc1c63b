"""`make bench`: run every benchmark in this folder; each prints its ratios and writes
benchmarks/results/<name>.json. Benchmarks are never tests: they measure, they do not assert.

  python -m benchmarks.run            # all
  python -m benchmarks.run gate       # one
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = {
    # name: module with main(argv) -> int
    "gate": "benchmarks.gate_bench",
    "injection": "benchmarks.injection_bench",
    "storage": "benchmarks.storage_bench",
    "e2e": "benchmarks.e2e_bench",
    # the whole pipeline's cost per stamp as ratios to the in-process row (issue 17)
    "pipeline": "benchmarks.pipeline_bench",
}


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        print(f"== benchmark {name} ==", flush=True)
        # one process per benchmark: the injection benchmark pins numpy/BLAS to one thread before
        # numpy is imported, and the gate's Spark JVM must not stay alive (and busy) beside it
        status |= subprocess.run([sys.executable, "-m", BENCHMARKS[name]]).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
