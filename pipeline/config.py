"""Run configuration: every knob of a Phase 4a/4c run, validated on load.

A run config is a YAML file (see `pipeline/configs/`). Loading checks every value and raises
`InputError` naming the file and the key, so a bad config stops a run before any output.
"""

from __future__ import annotations

import dataclasses
import re
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: the bands a run may render: the band table's (pipeline.bands), in the contract's order
from pipeline.contract import BANDS
from pipeline.errors import InputError

CONFIG_DIR = Path(__file__).parent / "configs"
SPLITS = ("train", "val", "test")
#: Comma-separated local roots and/or s3:// prefixes that runs may write under (the DAG's plan
#: task reads the same variable). A typo in an output prefix must fail, not write somewhere else.
OUTPUT_ROOTS_ENV = "DHS_ALLOWED_OUTPUT_ROOTS"


@dataclass(frozen=True)
class RunConfig:
    variant: str = "demo"
    experiment_id: str = "demo_stamp64_bandsgrz_cosmos"
    #: Master seed; every task seed derives from it and the task id.
    seed: int = 20260204
    bands: tuple[str, ...] = BANDS
    stamp_size_pix: int = 64
    # lens priors
    theta_e_min_arcsec: float = 0.5
    theta_e_max_arcsec: float = 2.5
    #: Axis ratio q of the SIE drawn uniformly in [q_min, 1]; e1/e2 follow lenstronomy's convention.
    lens_q_min: float = 0.5
    #: Each external-shear component ~ Normal(0, sigma), clipped to +-3 sigma.
    shear_sigma: float = 0.05
    #: Lens centre jitter (Normal sigma) about the LRG's pixel centre.
    lens_center_sigma_arcsec: float = 0.05
    # source priors
    src_dmag_min: float = 1.0
    src_dmag_max: float = 3.0
    #: Source colours (AB): g - r and r - z, uniform in these ranges.
    src_gr_min: float = 0.2
    src_gr_max: float = 1.0
    src_rz_min: float = 0.0
    src_rz_max: float = 0.8
    #: Source brightness and colours (docs/physics.md, "Source brightness"): "physical" = the
    #: galaxy's own F814W magnitude and template colours at its redshift (pipeline.bank.colours);
    #: "lens_relative" = the earlier prior, source r = lens r + U[src_dmag_min, src_dmag_max],
    #: colours uniform in the src_gr / src_rz ranges. Physical mode records src_dmag (source r -
    #: lens r) too; src_dmag_min / max then only bound it for the row contract.
    src_brightness: str = "lens_relative"
    #: Physical mode: magnitudes by which every source is made BRIGHTER than the galaxy is (0 =
    #: never; > 0 also scales the source's HST noise by 10**(0.4 x this)); recorded per row.
    src_brightening_mag: float = 0.0
    #: Physical mode: Normal sigma (mag) of the scatter added to the template g - r and r - z.
    src_colour_scatter_mag: float = 0.2
    #: Physical mode: redshift range of the colour table; a catalogue zphot is clipped into it, a
    #: galaxy without one gets a redshift drawn uniformly in it.
    src_z_min: float = 1.0
    src_z_max: float = 3.0
    #: Fraction of sources placed inside the caustic region (strongly lensed); the rest go
    #: up to `src_outer_radius_theta_e` Einstein radii out.
    src_inside_caustic_frac: float = 0.85
    src_outer_radius_theta_e: float = 1.0
    # splits and sampling
    split_fractions: dict = field(default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15})
    control_frac: dict = field(default_factory=lambda: {"train": 0.5, "val": 0.5, "test": 0.5})
    #: Sky regions are square cells of this size on (ra cos dec, dec); a region is one split.
    region_size_deg: float = 0.5
    #: Injections per injection-host LRG (controls are always one per LRG).
    replicates: int = 1
    # rendering
    #: PSF class (pipeline.injection.psf.PSF_MODELS); moffat_beta is the "moffat" model's parameter.
    psf_model: str = "moffat"
    moffat_beta: float = 3.5
    source_mode: str = "cosmos"
    #: Supersampling of the lens-plane ray-trace on the 0.262" grid.
    supersampling: int = 4
    unpaired_controls: bool = True
    #: The weakest gate suite (expectations/<name>.yaml) this run's data may be promoted under:
    #: the plan refuses a suite that is not at least as strict (pipeline.gate.thresholds), and the
    #: promotion record and its consumers check it again.
    min_gate_suite: str = "demo"

    def __post_init__(self):
        object.__setattr__(self, "bands", tuple(self.bands))
        self.validate()

    def validate(self, source: str = "run config") -> None:
        def bad(key, why):
            raise InputError(f"{source}: {key}", why)

        unknown = [b for b in self.bands if b not in BANDS]
        if unknown or not self.bands:
            bad("bands", f"unknown band(s) {unknown or self.bands}; allowed: {','.join(BANDS)}")
        if not 0 < self.theta_e_min_arcsec <= self.theta_e_max_arcsec:
            bad("theta_e_min_arcsec", f"need 0 < min <= max, got {self.theta_e_min_arcsec} > {self.theta_e_max_arcsec}"
                if self.theta_e_min_arcsec > self.theta_e_max_arcsec else f"must be > 0, got {self.theta_e_min_arcsec}")
        if self.src_dmag_min > self.src_dmag_max:
            bad("src_dmag_min", f"min {self.src_dmag_min} > max {self.src_dmag_max}")
        if self.src_brightness not in ("physical", "lens_relative"):
            bad("src_brightness", f"must be 'physical' or 'lens_relative', got {self.src_brightness!r}")
        if not self.src_brightening_mag >= 0:
            bad("src_brightening_mag", f"must be >= 0 (a source is never made fainter than itself), got {self.src_brightening_mag}")
        if not self.src_colour_scatter_mag >= 0:
            bad("src_colour_scatter_mag", f"must be >= 0, got {self.src_colour_scatter_mag}")
        if not 0 <= self.src_z_min <= self.src_z_max:
            bad("src_z_min", f"need 0 <= src_z_min <= src_z_max, got {self.src_z_min}, {self.src_z_max}")
        if not 0 < self.lens_q_min <= 1:
            bad("lens_q_min", f"must be in (0, 1], got {self.lens_q_min}")
        if self.shear_sigma < 0:
            bad("shear_sigma", f"must be >= 0, got {self.shear_sigma}")
        if not 0 <= self.src_inside_caustic_frac <= 1:
            bad("src_inside_caustic_frac", f"must be in [0, 1], got {self.src_inside_caustic_frac}")
        if set(self.split_fractions) != set(SPLITS):
            bad("split_fractions", f"must have exactly the keys {SPLITS}, got {sorted(self.split_fractions)}")
        if any(v < 0 for v in self.split_fractions.values()) or abs(sum(self.split_fractions.values()) - 1) > 1e-9:
            bad("split_fractions", f"must be >= 0 and sum to 1, got {self.split_fractions}")
        if set(self.control_frac) != set(SPLITS):
            bad("control_frac", f"must have exactly the keys {SPLITS}, got {sorted(self.control_frac)}")
        if any(not 0 <= v < 1 for v in self.control_frac.values()):
            bad("control_frac", f"each value must be in [0, 1), got {self.control_frac}")
        if self.replicates < 1:
            bad("replicates", f"must be >= 1, got {self.replicates}")
        from pipeline.injection.psf import PSF_MODELS  # noqa: PLC0415 - the registry of PSF classes

        if self.psf_model not in PSF_MODELS:
            bad("psf_model", f"must be one of {sorted(PSF_MODELS)} (pipeline.injection.psf.PSF_MODELS), "
                             f"got {self.psf_model!r}")
        if not self.moffat_beta > 1:
            bad("moffat_beta", f"must be > 1 (finite flux), got {self.moffat_beta}")
        if self.source_mode != "cosmos":
            bad("source_mode", f"only 'cosmos' is implemented, got {self.source_mode!r}")
        if self.supersampling < 1:
            bad("supersampling", f"must be >= 1, got {self.supersampling}")
        if self.stamp_size_pix != 64:
            bad("stamp_size_pix", "the data contract fixes 64x64 stamps")
        if self.region_size_deg <= 0:
            bad("region_size_deg", f"must be > 0, got {self.region_size_deg}")
        if not isinstance(self.min_gate_suite, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", self.min_gate_suite):
            bad("min_gate_suite", f"must name a suite in expectations/ (lower-case letters, digits, _), got {self.min_gate_suite!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["bands"] = list(self.bands)
        return d

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)


def load_run_config(path_or_name: str | Path, **overrides) -> RunConfig:
    """Load a run config from a YAML path, or by name from `pipeline/configs/` ("demo")."""
    path = Path(path_or_name)
    if not path.exists() and (CONFIG_DIR / f"{path_or_name}.yaml").exists():
        path = CONFIG_DIR / f"{path_or_name}.yaml"
    if not path.exists():
        names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        raise InputError(str(path_or_name), f"no such run config file (built-in names: {', '.join(names)})")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(str(path), f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(str(path), "a run config must be a YAML mapping")
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InputError(str(path), f"unknown key(s) {unknown}; known keys: {sorted(known)}")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(raw.get("bands"), str):
        raw["bands"] = parse_bands(raw["bands"], source=f"{path}: bands")
    try:
        return RunConfig(**raw)
    except InputError as exc:
        raise InputError(str(path), f"{exc.source.split(': ', 1)[-1]}: {exc.problem}") from None
    except TypeError as exc:
        raise InputError(str(path), str(exc)) from None


def parse_bands(text: str, source: str = "--bands") -> tuple[str, ...]:
    """Parse a comma-separated band list ('g,r,z'; any bands of pipeline.bands). 'grz' is refused:
    the seed lost a run to it."""
    bands = tuple(b.strip() for b in text.split(",") if b.strip())
    bad = [b for b in bands if b not in BANDS]
    if not bands or bad:
        hint = f" (write bands comma-separated, e.g. {','.join(BANDS)})" if len(bands) == 1 and len(bands[0]) > 1 else ""
        raise InputError(source, f"unknown band(s) {bad or list(bands)}{hint}; allowed: {','.join(BANDS)}")
    return bands


def allowed_output_roots(default: str | None = None, env: str = OUTPUT_ROOTS_ENV) -> list[str]:
    """The configured output roots ($DHS_ALLOWED_OUTPUT_ROOTS, or the `env` named, else `default`);
    [] = no limit."""
    raw = os.environ.get(env)
    if raw is None:
        raw = default or ""
    return [r.strip() for r in raw.split(",") if r.strip()]


def check_output_prefix(prefix: str, source: str = "output prefix", roots: list[str] | None = None,
                        env: str = OUTPUT_ROOTS_ENV) -> str:
    """Refuse an output location outside the allowed roots (InputError naming `source`).

    s3://, s3a:// and s3n:// spellings of one object are the same place; local paths are resolved
    first, so `root/../elsewhere` is outside; S3 keys with `..`, `.`, empty or percent-encoded
    segments are refused (storage.check_s3_uri). A root matches whole path components only:
    root `s3://b/runs` does not admit `s3://b/runs-old`. Returns the normalised prefix. `env`
    names the variable that sets `roots` (for the message; code and log roots use this too)."""
    from pipeline import storage  # noqa: PLC0415 - storage is light, but config must import first

    roots = allowed_output_roots(env=env) if roots is None else roots
    prefix = str(prefix)
    if storage.is_s3(prefix):
        prefix = storage.check_s3_uri(prefix, source)
    if not roots:
        return prefix
    if storage.is_s3(prefix):
        normal = prefix
        for root in (storage.to_s3(r).rstrip("/") for r in roots if storage.is_s3(r)):
            if normal == root or normal.startswith(root + "/"):
                return normal
    else:
        path = Path(prefix).resolve()
        for root in (Path(r).resolve() for r in roots if not storage.is_s3(r)):
            if path == root or root in path.parents:
                return str(path)
    raise InputError(source, f"{prefix!r} is outside the allowed output roots {roots} "
                             f"(set {env} to change them)")
