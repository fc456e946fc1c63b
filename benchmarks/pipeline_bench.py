"""Whole-pipeline benchmark (issue 17; not a test): what a stamp costs in each step, as ratios to
the in-process row measured in the same run, and the seed's run in m5.2xlarge node-hours.

  .venv/bin/python -m benchmarks.pipeline_bench [--tasks 500,4500] [--bricks 18] [--runs 3]

1. Inputs, built once in --workdir (shared with benchmarks.e2e_bench): `dhs survey synth`,
   `dhs bank synth --n 60`, `dhs manifest --config demo --max-tasks A` and `B`.
2. **In-process row** (the baseline): `pipeline.injection.task.inject_task` on the first min(A, 400)
   tasks of manifest B, bricks loaded first, one core, CPU time (`time.process_time`) per row.
3. For each task count, --runs times: `dhs inject --force`, `dhs compact`, `dhs validate`, each a
   separate process on local[2] as a user runs them. Cost of a step = the CPU time of its whole
   process tree (user + sys of the children, `resource.getrusage(RUSAGE_CHILDREN)`): JVM, Python
   workers and driver, independent of how busy the machine is (wall x cores is not). Marginal
   core-ms per stamp = (median cost at B - median cost at A) / (B - A): per-job fixed costs (JVM
   start, imports, JIT) taken out. Validation runs every check on every row (pixel agreement,
   pixel finiteness, the shortcut probe): nothing sampled.
4. Ratios against the in-process row, each with its target (issue 17):
     inject marginal                         <= 1.5 x row
     inject + compact + validate marginal    <= 3.0 x row
   and the seed's 11.75M stamps in m5.2xlarge node-hours (pipeline.sizing with this run's
   marginals), naming this machine.
The 12M-row gate against a bare scan (cold and warm) is `benchmarks.gate_bench` (docs/benchmarks.md
section 4). Writes benchmarks/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import cpu_model, write_results

RESULTS = Path(__file__).parent / "results" / "pipeline.json"
TARGETS = {"inject": 1.5, "inject+compact+validate": 3.0}
SEED_STAMPS = 11_750_000


def _dhs(*args: str, ok_codes=(0,)) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run `dhs ...`; return the process, its wall seconds and the CPU seconds of its process tree."""
    exe = Path(sys.executable).with_name("dhs")
    cmd = [str(exe) if exe.exists() else "dhs", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in ok_codes:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"failed (exit {proc.returncode}): {' '.join(cmd)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu


def in_process_row_cpu_s(manifest: Path, survey: Path, bank_path: Path, n: int) -> float:
    """Mean CPU seconds per row of `inject_task` on one core (bricks loaded first)."""
    import pyarrow.parquet as pq

    from pipeline.bank.store import open_bank
    from pipeline.config import load_run_config
    from pipeline.injection.task import RunContext, inject_task
    from pipeline.survey.coadds import load_brick

    cfg = load_run_config("demo")
    tasks = pq.read_table(manifest / "manifest.parquet").to_pylist()[:n]
    bank = open_bank(str(bank_path))
    ctx = RunContext(run_id="bench", pipeline_version="bench", config=cfg)
    bricks = {b: load_brick(str(survey / "coadd"), b, tuple(cfg.bands)) for b in sorted({t["brickname"] for t in tasks})}
    for t in tasks:  # untimed pass: numba compiles one specialisation per argument type it meets
        inject_task(t, bricks[t["brickname"]], bank, ctx)
    t0 = time.process_time()
    for t in tasks:
        inject_task(t, bricks[t["brickname"]], bank, ctx)
    return (time.process_time() - t0) / len(tasks)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # 4,000 tasks apart: a step's CPU time varies by +-5 s from run to run (JVM JIT and GC, worker
    # start), so 1,200 tasks apart (~10 CPU-s of difference) measured nothing (2026-12-01: the
    # 1,500-task runs cost less than the 300-task ones)
    p.add_argument("--tasks", default="500,4500", help="two task counts A,B (marginal = difference)")
    p.add_argument("--bricks", type=int, default=18, help="synthetic bricks of 250 LRGs: enough for the larger count")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--master", default="local[2]")
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "dhs_e2e_bench"))
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    counts = sorted(int(t) for t in args.tasks.split(","))
    if len(counts) != 2 or counts[0] >= counts[1]:
        raise SystemExit("--tasks needs two increasing counts, e.g. 300,1500")
    w = Path(args.workdir)
    w.mkdir(parents=True, exist_ok=True)
    survey, bank = w / f"survey_{args.bricks}_bricks", w / "bank"
    if not (survey / "survey.json").exists():
        _dhs("survey", "synth", "--out", str(survey), "--n-bricks", str(args.bricks), "--quiet")
    if not (bank / "cosmos_bank.h5").exists():
        _dhs("bank", "synth", "--out", str(bank), "--n", "60")
    manifests = {}
    for n in counts:
        manifests[n] = w / f"manifest_{args.bricks}_bricks_{n}"
        if not (manifests[n] / "manifest.json").exists():
            _dhs("manifest", "--lrg", str(survey / "lrg.parquet"), "--cosmos-bank-h5", str(bank / "cosmos_bank.h5"),
                 "--run-config", "demo", "--out", str(manifests[n]), "--max-tasks", str(n))

    # the baseline in its own process with one BLAS/numba thread: CPU time = one core's time
    env = {**os.environ, **{k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                              "NUMBA_NUM_THREADS")}}
    code = ("import sys, json; from pathlib import Path; from benchmarks.pipeline_bench import in_process_row_cpu_s; "
            "print(json.dumps(in_process_row_cpu_s(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))))")
    proc = subprocess.run([sys.executable, "-c", code, str(manifests[counts[1]]), str(survey), str(bank / "cosmos_bank.h5"),
                           str(min(counts[0], 400))], capture_output=True, text=True, env=env,
                          cwd=str(Path(__file__).resolve().parents[1]))
    if proc.returncode != 0:
        raise SystemExit(f"in-process baseline failed:\n{proc.stderr[-3000:]}")
    row_s = float(proc.stdout.strip().splitlines()[-1])
    print(f"in-process row (inject_task, one core): {row_s * 1e3:.2f} ms CPU", flush=True)

    costs: dict[int, dict[str, list[float]]] = {}
    worker_cpu: dict[int, list[float]] = {}
    loads = []
    for n in counts:
        costs[n] = {"inject": [], "compact": [], "validate": []}
        for _ in range(args.runs):
            ds = w / f"pipeline_ds_{n}"
            shutil.rmtree(ds, ignore_errors=True)
            loads.append(os.getloadavg()[0])
            proc, _, cpu = _dhs("inject", "--manifest-uri", str(manifests[n]), "--coadd-cache-prefix", str(survey / "coadd"),
                             "--cosmos-bank-h5", str(bank / "cosmos_bank.h5"), "--output-prefix", str(ds),
                             "--run-config", "demo", "--local-master", args.master, "--force")
            costs[n]["inject"].append(cpu)
            # the Python workers' own CPU account (emr_steps.inject's DHS_PARTITION_TIMING lines):
            # the process tree's CPU must include it, else a worker escaped the accounting
            workers = sum(float(kv.split("=")[1]) for line in (proc.stdout + proc.stderr).splitlines()
                          if line.startswith("DHS_PARTITION_TIMING") for kv in line.split()[1:] if kv.startswith("cpu_s="))
            if workers > cpu:
                print(f"WARNING: inject's process-tree CPU {cpu:.1f} s < its workers' own {workers:.1f} s: "
                      "a worker was not reaped into the count", flush=True)
            worker_cpu.setdefault(n, []).append(workers)
            _, _, cpu = _dhs("compact", "--output-prefix", str(ds), "--source", str(ds / "phase4c"), "--id", "bench",
                             "--local-master", args.master)
            costs[n]["compact"].append(cpu)
            # exit 1 (a failed gate) still measures the whole validation; the demo suite's sample-size
            # checks may fail on a bench-sized dataset
            _, _, cpu = _dhs("validate", str(ds), "--manifest-uri", str(manifests[n]), "--gate-suite", "demo",
                             "--out", str(ds / "validation"), ok_codes=(0, 1))
            costs[n]["validate"].append(cpu)
            print(f"{n} tasks: " + ", ".join(f"{k} {v[-1]:.1f} CPU-s" for k, v in costs[n].items())
                  + f" (load {loads[-1]:.1f})", flush=True)

    a, b = counts
    marginal = {k: (statistics.median(costs[b][k]) - statistics.median(costs[a][k])) / (b - a)
                for k in ("inject", "compact", "validate")}
    fixed = {k: statistics.median(costs[a][k]) - marginal[k] * a for k in marginal}
    marginal["inject+compact+validate"] = marginal["inject"] + marginal["compact"] + marginal["validate"]
    ratios = {k: marginal[k] / row_s for k in TARGETS}
    for k, v in marginal.items():
        if v <= 0:
            print(f"WARNING: {k}: the {b}-task runs cost no more than the {a}-task runs ({v * 1e3:.2f} core-ms per "
                  "stamp): the difference is below the noise; use larger or further-apart --tasks", flush=True)
    print(f"\nmarginal core-ms per stamp ({a} -> {b} tasks, medians of {args.runs}): "
          + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in marginal.items()))
    for k, target in TARGETS.items():
        verdict = "met" if ratios[k] <= target else "NOT met"
        print(f"  {k:<26} {ratios[k]:.2f} x the in-process row (target <= {target} x): {verdict}")

    from pipeline import sizing

    model = sizing.CostModel(steps={k: sizing.StepCost(max(marginal[k], 1e-9), max(fixed[k], 0.0) / 2, "this run") for k in
                                    ("inject", "compact", "validate")}, machine=cpu_model())
    plan = sizing.plan_cluster(SEED_STAMPS, target_wall_hours=2.0, model=model)
    node_h = plan.core_instance_count * plan.predicted_wall_hours
    print(f"seed's 11.75M stamps: {plan.work_core_hours:.1f} core-h of work -> {plan.core_instance_count} x m5.2xlarge "
          f"for {plan.predicted_wall_hours:.2f} h = {node_h:.1f} node-hours (seed: 34 nodes x 2.42 h = 82 node-hours); "
          f"figures from {cpu_model()}, {os.cpu_count()} vCPUs")

    out = {
        "command": "python -m benchmarks.pipeline_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpu": cpu_model(), "vcpus": os.cpu_count(), "host": platform.node()},
        "load_avg_1m": [round(x, 2) for x in loads],
        "in_process_row_cpu_ms": round(row_s * 1e3, 3),
        "cpu_s": {str(n): {k: [round(x, 2) for x in v] for k, v in c.items()} for n, c in costs.items()},
        "inject_python_workers_cpu_s": {str(n): [round(x, 2) for x in v] for n, v in worker_cpu.items()},
        "marginal_core_ms_per_stamp": {k: round(v * 1e3, 3) for k, v in marginal.items()},
        "fixed_cpu_s_per_job": {k: round(v, 1) for k, v in fixed.items()},
        "ratios": {k: {"ratio": round(ratios[k], 3), "target": t, "met": ratios[k] <= t} for k, t in TARGETS.items()},
        "seed_run": {"stamps": SEED_STAMPS, **plan.as_dict(), "node_hours": round(node_h, 2)},
    }
    path = write_results(args.out, out)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
