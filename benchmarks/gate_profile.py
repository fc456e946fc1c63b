"""Where the gate's time goes (issue 17; not a test): its Spark jobs one piece at a time, in one JVM.

  .venv/bin/python -m benchmarks.gate_profile [--table DIR] [--every 3] [--repeats 3] [--variants a,b,...]

Reads the gate benchmark's table (`benchmarks.gate_bench` builds it: the contract's scalar columns,
12M rows in ~36 files), keeps every --every-th file (all three splits; 4M rows by default, so one
variant is a few seconds to a minute on two cores) and runs, per repeat, each variant below as one
Spark action on the same DataFrame:

  scan          read and decode every scalar column, keep nothing (the bare scan of gate_bench)
  count         + group by region_split, count: a hash aggregate with no work per row
  summary       job 1's profile aggregates only (counts, min/max/mean/std, rates, the physics
                  invariants as Spark expressions)
  contract      job 1's row-contract counters only (one sum per rule: nulls, ranges, labels)
  job1          both, plus the manifest identity sums: job 1 as the gate runs it
  quantiles     job 1b (percentile_approx of arc_snr, arc_snr_footprint, magnification)
  histograms    job 2 (packed histogram keys + COSMOS use)
  gate_jobs     job1 + quantiles + histograms: the three Spark jobs of a gate whose rows match the
                  manifest (the gate's Spark part, without the GX suites)

Cost of each = CPU seconds of the JVM process (user + sys from /proc, all threads; the gate runs no
Python worker), median of --repeats, the variants interleaved repeat by repeat (the same load for
all); repeat 0 is cold (code generation, JIT) and is reported apart. Ratios are to `scan` in the
same repeat. Writes benchmarks/results/gate_profile.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import cpu_model, write_results
from benchmarks.compact_profile import jvm_pid, tree_cpu_s

RESULTS = Path(__file__).parent / "results" / "gate_profile.json"


def table_files(table: Path, every: int) -> list[str]:
    """Every `every`-th Parquet file of the gate benchmark table's rows; SystemExit naming the
    folder when there are none (checked before a JVM is started)."""
    root = table / "phase4c"
    files = sorted(str(p) for p in root.glob("region_split=*/*.parquet"))[::every]
    if not files:
        raise SystemExit(f"no Parquet files under {root}: build the table with `python -m benchmarks.gate_bench` "
                         "or pass --table <its rows_* folder>")
    return files


def _frames(spark, table: Path, files: list[str]):
    """(DataFrame of the given Parquet files of the table's rows, run config, hlr filter, file count)."""
    from pipeline.contract import SCALAR_COLUMNS
    from pipeline.dataset import open_dataset
    from pipeline.gate.inputs import hlr_filter_for, run_config_for

    root = table / "phase4c"
    ds = open_dataset(str(root), with_digest=False)
    cfg = run_config_for(ds.metadata, {}, "production")
    df = spark.read.option("basePath", str(root)).parquet(*files)
    df = df.select(*[c for c in SCALAR_COLUMNS if c in df.columns])
    return df, cfg, hlr_filter_for(ds.metadata, {}), len(files)


#: The variants `variants()` builds, in the order they run (the module docstring says what each is).
VARIANTS = ("scan", "count", "summary", "contract", "job1", "quantiles", "histograms", "gate_jobs")


def variants(df, cfg, hlr):
    """name -> zero-argument function running that piece as one (or more) Spark actions."""
    from pyspark.sql import functions as F

    from pipeline.gate import histograms, identity, profile, row_contract

    preds = row_contract.row_predicates(cfg, df.columns)
    contract = [F.sum(v.cast("long")).alias(f"__c{i}") for i, v in enumerate(preds.values())]
    summary = profile.summary_aggs(hlr)
    by_split = df.groupBy("region_split")

    def agg(*aggs):
        return lambda: by_split.agg(*aggs).collect()

    runs = {
        "scan": lambda: df.write.format("noop").mode("overwrite").save(),
        "count": agg(F.count(F.lit(1))),
        "summary": agg(*summary),
        "contract": agg(*contract),
        "job1": agg(*summary, *contract, *identity.identity_sums()),
        "quantiles": lambda: profile.split_quantiles(df),
        "histograms": lambda: histograms.count_histograms(df, cfg),
        "gate_jobs": lambda: (by_split.agg(*summary, *contract, *identity.identity_sums()).collect(),
                              profile.split_quantiles(df), histograms.count_histograms(df, cfg)),
    }
    assert tuple(runs) == VARIANTS, "VARIANTS (checked before Spark starts) must name these variants"
    return runs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gate_profile", description=__doc__.split("\n")[0])
    p.add_argument("--table", type=Path, default=None,
                   help="gate_bench's table folder (default: the newest rows_* under the gate bench's workdir)")
    p.add_argument("--every", type=int, default=3, help="keep every N-th Parquet file (default 3: ~4M of 12M rows)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--variants", default=None, help="comma-separated subset (default: all, in the order above)")
    p.add_argument("--cores", default="2")
    p.add_argument("--out", default=str(RESULTS))
    a = p.parse_args(argv)
    for flag, value in (("--every", a.every), ("--repeats", a.repeats)):
        if value < 1:
            p.error(f"{flag} must be at least 1, got {value}")
    table = a.table
    if table is None:
        tables = sorted(Path(tempfile.gettempdir(), "dhs_gate_bench").glob("rows_*"), key=lambda d: d.stat().st_mtime)
        if not tables:
            raise SystemExit("no gate benchmark table found: run `python -m benchmarks.gate_bench` first or pass --table")
        table = tables[-1]
    names = a.variants.split(",") if a.variants else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {unknown}; available: {', '.join(VARIANTS)}")
    files = table_files(table, a.every)
    from benchmarks.gate_bench import _session

    spark = _session(a.cores)
    df, cfg, hlr, n_files = _frames(spark, table, files)
    rows = df.count()
    runs = variants(df, cfg, hlr)
    pid = jvm_pid()
    cpu: dict[str, list[float]] = {n: [] for n in names}
    wall: dict[str, list[float]] = {n: [] for n in names}
    loads = []
    for rep in range(a.repeats):
        for n in names:
            c0, t0 = tree_cpu_s(pid), time.perf_counter()
            runs[n]()
            cpu[n].append(round(tree_cpu_s(pid) - c0, 2))
            wall[n].append(round(time.perf_counter() - t0, 2))
            loads.append(os.getloadavg()[0])
            print(f"  rep {rep} {n:<11} {cpu[n][-1]:7.2f} CPU-s {wall[n][-1]:7.2f} s wall (load {loads[-1]:.1f})",
                  file=sys.stderr, flush=True)
    spark.stop()
    warm = {n: statistics.median(v[1:]) if len(v) > 1 else v[0] for n, v in cpu.items()}
    out = {
        "what": "the gate's Spark jobs piece by piece, JVM CPU seconds, one JVM, variants interleaved per repeat",
        "command": "python -m benchmarks.gate_profile " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpu": cpu_model(), "vcpus": os.cpu_count()},
        "table": str(table), "files": n_files, "rows": rows, "repeats": a.repeats,
        "load_avg_1m": {"min": min(loads), "max": max(loads)},
        "cpu_s": cpu, "wall_s": wall,
        "cold_cpu_s": {n: v[0] for n, v in cpu.items()},
        "warm_median_cpu_s": warm,
        "warm_ns_per_row": {n: round(v / rows * 1e9, 1) for n, v in warm.items()},
    }
    if warm.get("scan"):
        out["warm_ratio_to_scan"] = {n: round(v / warm["scan"], 2) for n, v in warm.items()}
        out["cold_ratio_to_scan"] = {n: round(v[0] / cpu["scan"][0], 2) for n, v in cpu.items()}
    write_results(a.out, out)
    for n in names:
        r = out.get("warm_ratio_to_scan", {}).get(n)
        print(f"{n:<11} warm {warm[n]:7.2f} CPU-s  {out['warm_ns_per_row'][n]:7.1f} ns/row"
              + (f"  {r:.2f}x scan" if r is not None else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
