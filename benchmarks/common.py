"""What every benchmark shares: writing its results file."""

from __future__ import annotations

import json
import platform
from pathlib import Path


def write_results(path: str | Path, out: dict) -> Path:
    """benchmarks/results/<name>.json (or --out): the figures the docs quote, with their command."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return path


def cpu_model() -> str:
    """The CPU's model name (results name the machine they were measured on)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
