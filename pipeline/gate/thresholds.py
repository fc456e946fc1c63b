"""Per-variant gate thresholds, read from `expectations/<variant>.yaml`.

A thresholds file lists checks; each bounds one metric of the profile:

    checks:
      - name: cutout_success_rate      # the check's name in every message and in Data Docs
        metric: cutout_ok_rate         # a column of the metrics frame (see suites.metrics_frame)
        scope: split                   # split: every split's row; dataset: the whole dataset
        min: 0.995                     # inclusive; omit for no bound
        max: null
        why: seed section 4.2 reports 99.85-100% per split
    drift:                             # used only when a reference profile is given
      arc_snr_p50: 0.10                # max relative change per split against the reference
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.errors import InputError

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"


@dataclass(frozen=True)
class Check:
    name: str
    metric: str
    scope: str = "split"
    min: float | None = None
    max: float | None = None
    why: str = ""

    def expected(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{self.min:g} (exact)" if self.min == self.max else f"in [{self.min:g}, {self.max:g}]"
        return f">= {self.min:g}" if self.min is not None else f"<= {self.max:g}"


@dataclass(frozen=True)
class Thresholds:
    variant: str
    description: str
    checks: tuple[Check, ...]
    drift: dict = field(default_factory=dict)
    source: str = ""


def thresholds_path(variant_or_path: str) -> Path:
    p = Path(variant_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    p = EXPECTATIONS_DIR / f"{variant_or_path}.yaml"
    if not p.exists():
        known = sorted(x.stem for x in EXPECTATIONS_DIR.glob("*.yaml"))
        raise InputError(f"--variant {variant_or_path}", f"no thresholds file {p} (known variants: {', '.join(known)})")
    return p


def load_thresholds(variant_or_path: str) -> Thresholds:
    path = thresholds_path(variant_or_path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(str(path), f"not valid YAML: {exc}") from None
    checks, seen = [], set()
    for i, item in enumerate(raw.get("checks") or []):
        where = f"{path}: checks[{i}]"
        if not isinstance(item, dict) or not item.get("name") or not item.get("metric"):
            raise InputError(where, "each check needs a name and a metric")
        if item.get("min") is None and item.get("max") is None:
            raise InputError(where, f"check {item['name']!r} needs min and/or max")
        if item.get("scope", "split") not in ("split", "dataset"):
            raise InputError(where, "scope must be 'split' or 'dataset'")
        if item["name"] in seen:
            raise InputError(where, f"duplicate check name {item['name']!r}")
        seen.add(item["name"])
        checks.append(Check(item["name"], item["metric"], item.get("scope", "split"),
                            item.get("min"), item.get("max"), str(item.get("why", "")).strip()))
    if not checks:
        raise InputError(str(path), "no checks")
    drift = {str(k): float(v) for k, v in (raw.get("drift") or {}).items()}
    return Thresholds(str(raw.get("variant", path.stem)), str(raw.get("description", "")).strip(),
                      tuple(checks), drift, str(path))
