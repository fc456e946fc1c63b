"""Where compaction's time goes (issue 17; not a test): one knob at a time, in one JVM.

  .venv/bin/python -m benchmarks.compact_profile --source D/phase4c [--repeats 2] [--variants a,b,...]

Reads an existing stage-4c dataset (e.g. the pipeline benchmark's 4,500-row one) and runs, for the
largest split, a series of Spark jobs that add one piece of the compaction at a time:

  scan          read every column, decode, discard          (write.format("noop"))
  scan_sort     + coalesce(1) + sortWithinPartitions(task_id)
  range2_sort   + repartitionByRange(2, task_id) instead of coalesce: the sampling pass + shuffle
                  that a split of >= 2 files paid before issue 17
  taskid_ranges2_sort  + emr_steps.compact.task_id_ranges(2): bounds sampled from task_id alone,
                  one shuffle of the rows (what a split of >= 2 files pays now)
  write_*       + the Parquet write, with the encoder settings named (zstd level, dictionary
                  on/off for the pixel columns, uncompressed)

Cost of each = CPU seconds of the JVM process (user + sys from /proc, all threads; no Python
workers in compaction), median of --repeats, the variants interleaved repeat by repeat (same load
for all). Bytes written are recorded for every write variant. Writes
benchmarks/results/compact_profile.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.common import write_results

RESULTS = Path(__file__).parent / "results" / "compact_profile.json"
PIXEL_LEAVES = ("image.list.element", "invvar.list.element", "arc.list.element", "maskbits.list.element")


def tree_cpu_s(pid: int) -> float:
    """user + sys CPU seconds of a process and its live descendants (threads included)."""
    total = 0.0
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def jvm_pid() -> int:
    """The Spark JVM (a child of this Python process, started by pyspark's launcher)."""
    me = psutil.Process()
    for c in me.children(recursive=True):
        if "java" in (c.name() or ""):
            return c.pid
    raise RuntimeError("no JVM child found")


def no_dict(cols=PIXEL_LEAVES) -> dict:
    return {f"parquet.enable.dictionary#{c}": "false" for c in cols}


VARIANTS = {
    # name: (layout, parquet options or None for noop)
    "scan": ("none", None),
    "scan_sort": ("coalesce", None),
    "range2_sort": ("range2", None),
    # emr_steps.compact.task_id_ranges: range bounds sampled from task_id alone, one shuffle
    "taskid_ranges2_sort": ("taskid2", None),
    "write_zstd3_dict": ("coalesce", {"compression": "zstd", "parquet.compression.codec.zstd.level": "3"}),
    "write_zstd3_nodict": ("coalesce", {"compression": "zstd", "parquet.compression.codec.zstd.level": "3", **no_dict()}),
    "write_zstd1_dict": ("coalesce", {"compression": "zstd", "parquet.compression.codec.zstd.level": "1"}),
    "write_zstd1_nodict": ("coalesce", {"compression": "zstd", "parquet.compression.codec.zstd.level": "1", **no_dict()}),
    "write_none_dict": ("coalesce", {"compression": "none"}),
    "write_none_nodict": ("coalesce", {"compression": "none", **no_dict()}),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", required=True, help="a stage-4c data dir (…/phase4c)")
    p.add_argument("--split", default=None, help="split to compact (default: the largest)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--master", default="local[2]")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    names = [v for v in args.variants.split(",") if v]
    from pyspark.sql import functions as F

    from pipeline.spark_session import get_spark

    spark = get_spark("compact-profile", args.master, conf={"spark.ui.enabled": "false"})
    pid = jvm_pid()
    df = spark.read.parquet(args.source)
    counts = {r["region_split"]: r["count"] for r in df.groupBy("region_split").count().collect()}
    split = args.split or max(counts, key=counts.get)
    part = df.where(F.col("region_split") == split).drop("region_split")
    rows = counts[split]
    tmp = Path(tempfile.mkdtemp(prefix="dhs_compact_profile_"))
    # warm-up: JIT and the file listing, not counted
    part.write.format("noop").mode("overwrite").save()
    cpu: dict[str, list[float]] = {n: [] for n in names}
    wall: dict[str, list[float]] = {n: [] for n in names}
    nbytes: dict[str, int] = {}
    for rep in range(args.repeats):
        for name in names:
            layout, opts = VARIANTS[name]
            d = part
            if layout == "coalesce":
                d = d.coalesce(1).sortWithinPartitions("task_id")
            elif layout == "range2":
                d = d.repartitionByRange(2, "task_id").sortWithinPartitions("task_id")
            elif layout == "taskid2":
                from emr_steps.compact import task_id_ranges

                d = task_id_ranges(spark, d, 2).sortWithinPartitions("task_id")
            out = tmp / name
            shutil.rmtree(out, ignore_errors=True)
            c0, t0 = tree_cpu_s(pid), time.perf_counter()
            if opts is None:
                d.write.format("noop").mode("overwrite").save()
            else:
                d.write.mode("overwrite").options(**opts).parquet(str(out))
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(tree_cpu_s(pid) - c0)
            if opts is not None:
                nbytes[name] = sum(f.stat().st_size for f in out.glob("*.parquet"))
            print(f"rep {rep} {name:<20} cpu {cpu[name][-1]:6.2f} s  wall {wall[name][-1]:6.2f} s"
                  + (f"  {nbytes[name] / rows / 1024:.2f} KB/row" if opts is not None else "")
                  + f"  (load {os.getloadavg()[0]:.1f})", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    res = {
        "command": "python -m benchmarks.compact_profile " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpu": _cpu(), "vcpus": os.cpu_count()},
        "split": split, "rows": rows,
        "cpu_s_median": {n: round(statistics.median(v), 2) for n, v in cpu.items()},
        "cpu_ms_per_row": {n: round(statistics.median(v) / rows * 1e3, 3) for n, v in cpu.items()},
        "cpu_s": {n: [round(x, 2) for x in v] for n, v in cpu.items()},
        "wall_s": {n: [round(x, 2) for x in v] for n, v in wall.items()},
        "bytes": nbytes, "kb_per_row": {n: round(b / rows / 1024, 2) for n, b in nbytes.items()},
        "load_avg_1m_end": os.getloadavg()[0],
    }
    print(f"written {write_results(args.out, res)}")
    return 0


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
