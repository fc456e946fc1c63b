"""What every benchmark shares: writing its results file."""

from __future__ import annotations

import json
from pathlib import Path


def write_results(path: str | Path, out: dict) -> Path:
    """benchmarks/results/<name>.json (or --out): the figures the docs quote, with their command."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return path
