"""`make bench`: run every benchmark in this folder; each prints its ratios and writes
benchmarks/results/<name>.json. Benchmarks are never tests: they measure, they do not assert.
At the end, one table of every target (SPEC 10, issue 17) with its measured value, its target and
whether it is met, read back from the results files this run wrote.

  python -m benchmarks.run            # all
  python -m benchmarks.run gate       # one
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"

BENCHMARKS = {
    # name: module with main(argv) -> int
    "gate": "benchmarks.gate_bench",
    "injection": "benchmarks.injection_bench",
    "storage": "benchmarks.storage_bench",
    "e2e": "benchmarks.e2e_bench",
    # the whole pipeline's cost per stamp as ratios to the in-process row (issue 17)
    "pipeline": "benchmarks.pipeline_bench",
}


def _load(name: str) -> dict | None:
    try:
        return json.loads((RESULTS / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def _verdict(ok) -> str:
    return "n/a" if ok is None else ("met" if ok else "NOT met")


def summary_lines(names: list[str]) -> list[str]:
    """Every target of the benchmarks that ran, from their results files."""
    lines = []
    if "injection" in names and (d := _load("injection")):
        t = d.get("target", {})
        r = d.get("ratio_render_naive_over_ours")
        lines.append(f"render vs naive lenstronomy          {r}x        target >= {t.get('ratio')}x   {_verdict(r >= t.get('ratio', 40) if r else None)}")
        l1 = (d.get("l1_vs_lenstronomy_ss8_r_band") or {}).get("stored_quantized", {}).get("max")
        if l1 is not None:
            lines.append(f"arc L1 (stored, worst stamp)         {l1 * 100:.2f}%     target <= {t.get('l1', 0.01) * 100:.0f}%     {_verdict(l1 <= t.get('l1', 0.01))}")
    if "pipeline" in names and (d := _load("pipeline")):
        m = d.get("machine", {})
        for k, v in (d.get("ratios") or {}).items():
            lines.append(f"{k + ' marginal / row':<36} {v['ratio']:.2f}x     target <= {v['target']}x   {_verdict(v['met'])}")
        s = d.get("seed_run") or {}
        if s:
            lines.append(f"seed's 11.75M stamps: {s.get('core_instance_count')} x {s.get('core_instance_type')} for "
                         f"{s.get('predicted_wall_hours', 0):.2f} h = {s.get('node_hours')} node-hours (seed: 82), from this "
                         f"machine's marginals ({m.get('cpu')}, {m.get('vcpus')} vCPUs)")
    if "gate" in names and (d := _load("gate")):
        c, w = d.get("cold_vs_scan"), d.get("warm_vs_scan")
        rows = f"{d.get('rows', 0) / 1e6:g}M-row"
        if c:
            lines.append(f"{rows} gate cold / bare scan cold     {c['ratio']:.2f}x     target <= 1.5x   {_verdict(c['met_ratio'])}")
            lines.append(f"{rows} gate cold (fresh JVM)          {c['gate_cold_s']:.1f} s    target <= 60 s   {_verdict(c['met_gate_s'])}")
        if w:
            lines.append(f"{rows} gate warm / bare scan warm     {w['ratio']:.2f}x     target <= 1.5x   {_verdict(w['met_ratio'])}")
        if "gate_median_s" in d:
            lines.append(f"{rows} gate, median of runs           {d['gate_median_s']:.1f} s    target <= 60 s   {_verdict(d['gate_median_s'] <= 60)}")
        if d.get("rows") != 12_000_000:
            lines.append(f"  (gate measured on {d.get('rows'):,} rows, not the 12M of the target: run with --rows 12000000)")
    if "storage" in names and (d := _load("storage")):
        kb = ((d.get("results") or {}).get("stored") or {}).get("kb_per_stamp")
        if isinstance(kb, (int, float)):
            lines.append(f"bytes per stamp (stored)             {kb:.1f} KB   target <= 40 KB  {_verdict(kb <= 40)}")
    return lines


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
    print("\n== targets (from benchmarks/results/*.json of this run) ==")
    for line in summary_lines(names):
        print(line)
    return status


if __name__ == "__main__":
    sys.exit(main())
