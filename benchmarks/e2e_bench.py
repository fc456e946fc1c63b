"""End-to-end injection benchmark (not a test): `dhs inject` (stage 4c on local Spark, the same
step definition EMR runs) on a small synthetic survey, stamps/s and core-seconds per stamp.

  .venv/bin/python -m benchmarks.e2e_bench [--tasks 250,1500] [--bricks 6] [--runs 2] [--master local[2]]
  .venv/bin/python -m benchmarks.e2e_bench --tasks 200,800 --bricks 4   # + marginal cost per stamp

1. Inputs, built once in --workdir and reused: `dhs survey synth` (--bricks bricks of 768 px,
   250 LRGs each), `dhs bank synth --n 60`, `dhs manifest --config demo --max-tasks --tasks`.
2. `dhs inject --force` --runs times; per run: wall time of the command (JVM start included) and
   the step's own inject+write time (`_dhs_dataset.json` timing.inject_write_s: the Spark job
   that injects and writes the Parquet rows, excluding JVM start and input checks).
   The workers' CPU split (rendering / Arrow conversion / total, from emr_steps.inject's
   DHS_PARTITION_TIMING lines) is recorded per run: CPU seconds do not depend on the load.
3. core-seconds per stamp = inject_write_s x cores / tasks (all of the master's cores are
   counted busy for the whole job: an upper bound on what the stamps cost). With two task
   counts A < B, also the marginal cost (t_B - t_A) x cores / (B - A): the per-stamp cost with
   the job's fixed costs (Python worker start, imports, JIT, bank and brick loads, JVM tasks)
   taken out.
Writes benchmarks/results/e2e.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_results

RESULTS = Path(__file__).parent / "results" / "e2e.json"


def _dhs(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("dhs")
    cmd = [str(exe) if exe.exists() else "dhs", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return proc


#: The seed's production run (docs/cost_model.md): 11.75M stamps in 2h25m on 34 nodes.
SEED_STAMPS, SEED_WALL_H = 11_750_000, 2 + 25 / 60
#: m5.2xlarge: 8 vCPUs, of which YARN leaves ~7 to executors.
NODE_VCPUS, NODE_USABLE_VCPUS = 8, 7


def cost_model(core_s_per_stamp: float) -> dict:
    """Core-hours per million stamps and the nodes the seed's run would need now, arithmetic shown."""
    import math

    core_h = SEED_STAMPS * core_s_per_stamp / 3600
    out = {"core_s_per_stamp": core_s_per_stamp, "core_hours_per_million": round(core_s_per_stamp * 1e6 / 3600, 2),
           "seed_run_core_hours": round(core_h, 1), "nodes": {}, "lines": []}
    out["lines"].append(f"cost model: {core_s_per_stamp:.4f} core-s/stamp x 1e6 / 3600 = "
                        f"{out['core_hours_per_million']} core-h per 1M stamps; the seed's 11.75M stamps: "
                        f"11.75e6 x {core_s_per_stamp:.4f} / 3600 = {core_h:.1f} core-h")
    for wall_h in (SEED_WALL_H, 1.0):
        for vcpus in (NODE_VCPUS, NODE_USABLE_VCPUS):
            nodes = math.ceil(core_h / (vcpus * wall_h))
            out["nodes"][f"{wall_h:.3g}h_{vcpus}vcpu"] = nodes
            out["lines"].append(f"  in {wall_h:.3g} h on m5.2xlarge ({vcpus} vCPU used): {core_h:.1f} / ({vcpus} x {wall_h:.3g})"
                                f" -> {nodes} nodes (seed: 34 nodes for 2.42 h)")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default="250,1500", help="task count, or two counts A,B for the marginal cost "
                                                      "(and the cost model)")
    p.add_argument("--bricks", type=int, default=6, help="synthetic bricks (250 LRGs each; replicates 1)")
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "dhs_e2e_bench"))
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    w = Path(args.workdir)
    w.mkdir(parents=True, exist_ok=True)
    survey, bank = w / f"survey_{args.bricks}_bricks", w / "bank"
    if not (survey / "survey.json").exists():
        _dhs("survey", "synth", "--out", str(survey), "--n-bricks", str(args.bricks), "--quiet")
    if not (bank / "cosmos_bank.h5").exists():
        _dhs("bank", "synth", "--out", str(bank), "--n", "60")
    cores = int(re.search(r"\[(\d+)\]", args.master).group(1)) if re.search(r"\[(\d+)\]", args.master) else os.cpu_count()
    per_count = {}
    for n_tasks in [int(t) for t in str(args.tasks).split(",")]:
        manifest = w / f"manifest_{args.bricks}_bricks_{n_tasks}"
        if not (manifest / "manifest.json").exists():
            _dhs("manifest", "--lrg", str(survey / "lrg.parquet"), "--cosmos-bank-h5", str(bank / "cosmos_bank.h5"),
                 "--run-config", "demo", "--out", str(manifest), "--max-tasks", str(n_tasks))
        runs = []
        for _ in range(args.runs):
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            proc = _dhs("inject", "--manifest-uri", str(manifest), "--coadd-cache-prefix", str(survey / "coadd"),
                 "--cosmos-bank-h5", str(bank / "cosmos_bank.h5"), "--output-prefix", str(w / "dataset"),
                 "--run-config", "demo", "--local-master", args.master, "--force")
            wall = time.perf_counter() - t0
            meta = json.loads((w / "dataset" / "phase4c" / "_dhs_dataset.json").read_text())
            rows = sum(meta["rows_per_split"].values())
            job = meta["timing"]["inject_write_s"]
            # the Python workers' own account (emr_steps.inject logs one line per partition):
            # CPU seconds rendering, converting to Arrow, and in total
            parts = [dict(kv.split("=") for kv in line.split()[1:])
                     for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("DHS_PARTITION_TIMING")]
            worker = {k: round(sum(float(p_.get(k, 0)) for p_ in parts), 2)
                      for k in ("cpu_s", "inject_cpu_s", "arrow_cpu_s", "wall_s")}
            runs.append({"load_avg_1m": round(load, 2), "wall_s": round(wall, 1), "inject_write_s": job, "rows": rows,
                         "bytes": meta.get("bytes"), "partitions": len(parts), "python_workers": worker,
                         "stamps_per_s_job": round(rows / job, 2), "core_s_per_stamp": round(job * cores / rows, 4)})
        med_job = statistics.median(r["inject_write_s"] for r in runs)
        rows = runs[-1]["rows"]
        per_count[rows] = {
            "runs": runs, "median_inject_write_s": med_job, "stamps_per_s_job": round(rows / med_job, 2),
            "core_s_per_stamp": round(med_job * cores / rows, 4),
            "core_hours_per_million_stamps": round(med_job * cores / rows * 1e6 / 3600, 1),
            "bytes_per_row_on_disk": round(runs[-1]["bytes"] / rows) if runs[-1].get("bytes") else None,
        }
        print(f"dhs inject, {rows} tasks on {args.master}: job {med_job:.1f} s (median of {args.runs}), "
              f"{rows / med_job:.1f} stamps/s, {per_count[rows]['core_s_per_stamp'] * 1000:.1f} core-ms/stamp; "
              f"wall incl. JVM {runs[-1]['wall_s']} s; loads {[r['load_avg_1m'] for r in runs]}")
    out = {
        "command": "python -m benchmarks.e2e_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "host": platform.node(), "cpus": os.cpu_count(), "master": args.master, "cores": cores,
        "by_task_count": per_count,
    }
    counts = sorted(per_count)
    if len(counts) >= 2:
        a, b = counts[0], counts[-1]
        dt = per_count[b]["median_inject_write_s"] - per_count[a]["median_inject_write_s"]
        out["marginal"] = {"tasks": [a, b], "seconds": round(dt, 2),
                           "core_s_per_stamp": round(dt * cores / (b - a), 4),
                           "core_hours_per_million_stamps": round(dt * cores / (b - a) * 1e6 / 3600, 1),
                           "fixed_job_s": round(per_count[a]["median_inject_write_s"] - dt * a / (b - a), 1)}
        # wall x cores: a loaded machine moves a job's wall time by more than the extra tasks cost;
        # a difference inside the runs' own spread is noise, and a cost model from it is meaningless
        spread = sum(max(r["inject_write_s"] for r in per_count[n]["runs"])
                     - min(r["inject_write_s"] for r in per_count[n]["runs"]) for n in (a, b))
        out["marginal"]["runs_spread_s"] = round(spread, 2)
        if dt <= max(spread, 0.0):
            out["marginal"]["below_noise"] = True
            print(f"marginal: NOT MEASURED: t({b}) - t({a}) = {dt:.1f} s is inside the runs' spread ({spread:.1f} s; "
                  f"load {os.getloadavg()[0]:.1f}): wall-time marginals need a quiet machine, or use "
                  "benchmarks.pipeline_bench (process CPU time)", flush=True)
        else:
            print(f"marginal: {out['marginal']['core_s_per_stamp'] * 1000:.1f} core-ms/stamp "
                  f"({out['marginal']['core_hours_per_million_stamps']} core-h per 1M), fixed job cost "
                  f"~{out['marginal']['fixed_job_s']} s")
            out["cost_model"] = cost_model(out["marginal"]["core_s_per_stamp"])
            for line in out["cost_model"]["lines"]:
                print(line)
    path = write_results(args.out, out)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
