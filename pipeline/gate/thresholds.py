"""Per-variant gate thresholds, read from `<variant>.yaml` in $DHS_EXPECTATIONS_DIR, else the source
tree's `expectations/`, else the copy a wheel installs under `<sys.prefix>/share/dark-halo-scope/`.

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

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import InputError

#: Environment variable naming the suites folder (docker-compose mounts expectations/ there).
ENV_VAR = "DHS_EXPECTATIONS_DIR"
#: expectations/ beside the package in a source checkout or an editable install.
SOURCE_DIR = Path(__file__).resolve().parents[2] / "expectations"
#: Where a wheel installs expectations/*.yaml (pyproject.toml [tool.setuptools.data-files]).
INSTALLED_SUBDIR = Path("share") / "dark-halo-scope" / "expectations"


def search_dirs() -> list[Path]:
    """Where suites are looked up, in order: $DHS_EXPECTATIONS_DIR, the source tree's
    expectations/, then the installed copy under sys.prefix (and the user base, for --user)."""
    dirs = []
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]))
    dirs.append(SOURCE_DIR)
    import site  # noqa: PLC0415

    for prefix in (sys.prefix, sys.base_prefix, site.getuserbase()):
        d = Path(prefix) / INSTALLED_SUBDIR
        if d not in dirs:
            dirs.append(d)
    return dirs


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
    """A suite's YAML: an existing .yaml/.yml path as given, else `<variant>.yaml` in the first of
    search_dirs() that has it. $DHS_EXPECTATIONS_DIR, when set, must exist: a mount that did not
    happen should not silently fall back to other thresholds."""
    p = Path(variant_or_path)
    if p.suffix in (".yaml", ".yml"):
        if p.is_file():
            return p
        raise InputError(f"--variant {variant_or_path}", f"no such thresholds file {p}")
    env = os.environ.get(ENV_VAR)
    if env and not Path(env).is_dir():
        raise InputError(f"${ENV_VAR}={env}", "not a directory (it should hold the suites <variant>.yaml)")
    dirs = search_dirs()
    for d in dirs:
        if (d / f"{variant_or_path}.yaml").is_file():
            return d / f"{variant_or_path}.yaml"
    known = sorted({x.stem for d in dirs if d.is_dir() for x in d.glob("*.yaml")})
    raise InputError(f"--variant {variant_or_path}",
                     f"no {variant_or_path}.yaml in {', '.join(map(str, dirs))} "
                     f"(known variants: {', '.join(known) or 'none'}; set ${ENV_VAR} to the suites folder)")


def _expand_per_band(items: list, path: Path) -> list[tuple[int, Any]]:
    """(index in the file, check) with each `per_band: true` check written once per band of the
    band table (pipeline.bands, reference band first), `{band}` in its name, metric and why
    replaced: a new band gets its checks from its table entry."""
    from pipeline.bands import reference_first  # noqa: PLC0415

    out = []
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and item.get("per_band")):
            out.append((i, item))
            continue
        if "{band}" not in str(item.get("name", "")) or "{band}" not in str(item.get("metric", "")):
            raise InputError(f"{path}: checks[{i}]", "a per_band check needs {band} in its name and its metric")
        for b in reference_first():
            out.append((i, {k: (v.replace("{band}", b) if isinstance(v, str) else v)
                            for k, v in item.items() if k != "per_band"}))
    return out


def load_thresholds(variant_or_path: str) -> Thresholds:
    path = thresholds_path(variant_or_path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(str(path), f"not valid YAML: {exc}") from None
    checks, seen = [], set()
    for i, item in _expand_per_band(raw.get("checks") or [], path):
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


def _bound_within(mine: Check, theirs: Check) -> bool:
    """`mine` accepts no value that `theirs` refuses (same metric and scope)."""
    lo_ok = theirs.min is None or (mine.min is not None and mine.min >= theirs.min)
    hi_ok = theirs.max is None or (mine.max is not None and mine.max <= theirs.max)
    return lo_ok and hi_ok


def strictness_gaps(suite: Thresholds, minimum: Thresholds) -> list[str]:
    """Why `suite` is NOT at least as strict as `minimum` ([] when it is).

    At least as strict means: every check of `minimum` has a check in `suite` on the same metric
    and scope whose bounds lie inside it, and every drift limit of `minimum` is matched by an equal
    or tighter one. Computed from the YAML files themselves, so no suite can declare itself strict."""
    gaps = []
    for want in minimum.checks:
        same = [c for c in suite.checks if c.metric == want.metric and c.scope == want.scope]
        if not any(_bound_within(c, want) for c in same):
            have = ", ".join(f"{c.name} {c.expected()}" for c in same) or "no such check"
            gaps.append(f"{want.name} ({want.metric}, {want.scope}) must be {want.expected()}; {suite.variant} has: {have}")
    for metric, limit in minimum.drift.items():
        if metric not in suite.drift or suite.drift[metric] > limit:
            gaps.append(f"drift {metric} must be <= {limit:g}; {suite.variant} has "
                        f"{suite.drift.get(metric, 'no limit')}")
    return gaps


def check_suite_policy(suite: str, minimum: str, *, source: str = "gate_suite") -> None:
    """InputError naming `source` when suite `suite` is weaker than `minimum` (the run config's
    min_gate_suite)."""
    have, need = load_thresholds(suite), load_thresholds(minimum)
    gaps = strictness_gaps(have, need)
    if gaps:
        listing = "; ".join(gaps[:5]) + (f"; and {len(gaps) - 5} more" if len(gaps) > 5 else "")
        raise InputError(source, f"suite {have.variant!r} is weaker than {need.variant!r}, the weakest suite this run "
                                 f"config may be promoted under (min_gate_suite): {listing}")
