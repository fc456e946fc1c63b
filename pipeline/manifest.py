"""The Phase 4c manifest: one row per task, every random quantity frozen (SPEC sections 2, 7).

Determinism
-----------
Nothing here uses a stateful RNG. Every random number is a pure function of integers, computed
with the splitmix64 mixer (vectorised in numpy) and turned into a uniform in (0, 1] (see hash_uniform):

* region -> split:      u(seed, "split", region_id)
* LRG role and subset:  u(seed, "control", lrg_id), u(seed, "subset", lrg_id)
* task_seed:            splitmix64(seed, "task", lrg_id, replicate) >> 1   (a non-negative int64)
* task parameter k:     u(task_seed, k), k = the fixed stream numbers in `_STREAM`

so a task's parameters can be recomputed from its task_seed alone, the manifest does not depend
on the order of the LRG table's rows, and adding LRGs never changes the existing ones' draws.

Regions and splits
------------------
Sky regions are cells of `region_size_deg` on (ra cos(dec_ref), dec): Dec bands of height
`size`, each cut into n = max(1, floor(360 cos(dec_ref) / size)) equal RA cells, dec_ref being the
band's central Dec (cells wrap cleanly at RA 0/360). region_id = (dec_band + offset) * stride +
ra_cell. Each region goes to one split by its hash and `split_fractions`, so no region and no
LRG spans two splits. (Realised fractions follow the number of regions, not of LRGs.)

Controls (unpaired)
-------------------
Within a split of n LRGs, n_c LRGs become controls (one task each) and the other n - n_c
injection hosts (`replicates` tasks each); n_c is the integer that brings n_c / (n_c + R (n -
n_c)) closest to control_frac[split]. Which LRGs are controls is decided by their hash rank, so an
LRG is never both, and controls and hosts share the same PSF, depth and magnitude distributions.

Injection parameters
--------------------
theta_E ~ U[min, max]; SIE axis ratio q ~ U[lens_q_min, 1], position angle phi ~ U[0, pi),
e1 = (1-q)/(1+q) cos 2phi, e2 = (1-q)/(1+q) sin 2phi (lenstronomy param_util.phi_q2_ellipticity);
shear gamma1, gamma2 ~ N(0, shear_sigma) clipped to +-3 sigma; lens centre jitter ~ N(0,
lens_center_sigma_arcsec) clipped to +-3 sigma; cosmos_index uniform over the bank (over the
entries inside the half-light-radius filter when the bank's radii are given); src_dmag, src_gr,
src_rz, uniform in their ranges; src_phi ~ U[0, 2 pi). src_mag_r = mag_r + src_dmag, src_mag_g =
src_mag_r + src_gr, src_mag_z = src_mag_r - src_rz (every band of the table: pipeline.bands.band_magnitudes).

Source position (relative to the lens centre, source plane). With probability
src_inside_caustic_frac it is drawn uniformly in area inside the disc of radius
r_in = CAUSTIC_RADIUS_FACTOR * sqrt(q) * theta_E (0.8 sqrt(q) theta_E); otherwise uniformly in
area in the annulus r_in .. src_outer_radius_theta_e * theta_E (or the disc of that radius if it
is smaller than r_in). Why this disc: a singular isothermal sphere multiply-images every source
with beta < theta_E (its radial caustic, the "cut", is the circle beta = theta_E); for an SIE the
cut is an oval whose narrowest half-width is close to sqrt(q) theta_E in lenstronomy's theta_E
convention, and the shears we draw (|gamma| <~ 0.15) move it by ~ gamma theta_E. Measured with
lenstronomy's LensEquationSolver over the demo priors, sources at 0.85-0.95 sqrt(q) theta_E were
still all multiply imaged, first failures appeared at 1.05: the factor 0.8 leaves a margin.
tests/test_manifest.py checks the multiple-image fraction on a sample of tasks.

Files: `<out>/manifest.parquet` (this table) and `<out>/manifest.json` (run config, counts per
split, input checksums, and the task identity record of pipeline.task_identity that lets the
gate check task ids and LRG leakage without a shuffle).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.special import ndtri

from pipeline import storage
from pipeline.bands import band_columns, band_magnitudes
from pipeline.config import SPLITS, RunConfig
from pipeline.errors import InputError
from pipeline.survey.lrg_table import REQUIRED_COLUMNS as LRG_COLUMNS
from pipeline.survey.lrg_table import validate_lrg_table
from pipeline.task_identity import manifest_identity

MANIFEST_FORMAT_VERSION = 1
#: Radius of the "inside the caustic" disc in units of sqrt(q) theta_E (see module docstring).
CAUSTIC_RADIUS_FACTOR = 0.8
#: Normal draws are clipped at this many sigma.
CLIP_SIGMA = 3.0

#: LRG table columns the manifest needs (the survey's contract: pipeline.survey.lrg_table).
LRG_REQUIRED = tuple(LRG_COLUMNS)

#: Columns of the manifest, in order. All but replicate, src_gr and src_rz are contract columns.
MANIFEST_COLUMNS = (
    "task_id", "variant", "experiment_id", "task_seed", "replicate",
    "region_split", "region_id", "brickname", "lrg_id", "ra", "dec",
    "lens_mag_r", *band_columns("psfsize_{b}"), "psfdepth_r",
    "is_control", "lens_model",
    "theta_e_arcsec", "lens_e1", "lens_e2", "shear_gamma1", "shear_gamma2", "lens_x_arcsec", "lens_y_arcsec",
    "cosmos_index", "cosmos_hlr_arcsec", "src_x_arcsec", "src_y_arcsec", "src_phi_rad", "src_dmag",
    *band_columns("src_mag_{b}"), "src_mag_f814w", "src_redshift", "src_sed", "src_brightening_mag",
    "src_gr", "src_rz",
)
#: Null for control tasks.
INJECTION_COLUMNS = MANIFEST_COLUMNS[MANIFEST_COLUMNS.index("theta_e_arcsec"):]

# stream tags for the top-level hashes (arbitrary, fixed forever: changing one changes every manifest)
_SPLIT, _CONTROL, _SUBSET, _TASK = 1, 2, 3, 4
#: parameter -> stream number k of u(task_seed, k)
_STREAM = {
    "theta_e": 0, "q": 1, "phi_lens": 2, "gamma1": 3, "gamma2": 4, "lens_x": 5, "lens_y": 6, "cosmos": 7,
    "dmag": 8, "gr": 9, "rz": 10, "src_phi": 11, "inside": 12, "src_r": 13, "src_angle": 14,
    "src_z": 15, "src_sed": 16, "gr_scatter": 17, "rz_scatter": 18,
}

_U64 = np.uint64


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (uint64 arrays; wrap-around multiplication is intended)."""
    z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


def _as_u64(values) -> np.ndarray:
    return np.atleast_1d(np.asarray(values, dtype=np.int64)).view(_U64)


def hash64(*keys) -> np.ndarray:
    """Mix integer keys (scalars or int64 arrays, broadcast) into uint64 hashes."""
    with np.errstate(over="ignore"):
        h = np.full(1, 0x243F6A8885A308D3, dtype=_U64)
        for key in keys:
            h = _mix64(h ^ (_as_u64(key) + _U64(0x9E3779B97F4A7C15)))
    return h


def hash_uniform(*keys) -> np.ndarray:
    """Uniform in (0, 1] from integer keys (53 bits): (k + 0.5) 2^-53 rounds to exactly 1.0 for the
    largest keys (a 2^-53 chance per draw; every consumer compares with < or clips)."""
    return ((hash64(*keys) >> _U64(11)).astype(np.float64) + 0.5) * 2.0**-53


def region_ids(ra_deg: np.ndarray, dec_deg: np.ndarray, region_size_deg: float) -> np.ndarray:
    """Sky region of each position (see module docstring), int64."""
    size = float(region_size_deg)
    dec_band = np.floor((np.asarray(dec_deg, float) + 90.0) / size).astype(np.int64)
    dec_ref = np.clip(-90.0 + (dec_band + 0.5) * size, -90.0, 90.0)
    n_ra = np.maximum(1, np.floor(360.0 * np.cos(np.radians(dec_ref)) / size)).astype(np.int64)
    ra_cell = np.floor(np.mod(np.asarray(ra_deg, float), 360.0) / 360.0 * n_ra).astype(np.int64) % n_ra
    stride = int(math.ceil(360.0 / size)) + 1
    return dec_band * stride + ra_cell


def split_of_regions(region_id: np.ndarray, config: RunConfig) -> np.ndarray:
    """train / val / test per region, by the region's hash and config.split_fractions."""
    u = hash_uniform(config.seed, _SPLIT, np.asarray(region_id, dtype=np.int64))
    edges = np.cumsum([config.split_fractions[s] for s in SPLITS])
    idx = np.minimum(np.searchsorted(edges, u, side="right"), len(SPLITS) - 1)
    return np.asarray(SPLITS, dtype=object)[idx]


def n_controls_for(n_lrg: int, control_frac: float, replicates: int) -> int:
    """Number of control LRGs out of n_lrg that makes the split's control fraction of TASKS
    closest to control_frac (controls: 1 task, hosts: `replicates` tasks)."""
    if n_lrg == 0:
        return 0
    n_c = np.arange(n_lrg + 1)
    frac = n_c / (n_c + replicates * (n_lrg - n_c))
    return int(np.argmin(np.abs(frac - control_frac)))


def _validate_lrg(lrg: pd.DataFrame, source: str) -> pd.DataFrame:
    """The survey's LRG-table check (one definition of the table), then a canonical order."""
    validate_lrg_table(lrg, source)
    # a canonical order makes everything below independent of the input's row order
    return lrg.sort_values("lrg_id", kind="mergesort").reset_index(drop=True)


def _source_photometry(config: RunConfig, lens_mag_r: np.ndarray, cosmos: np.ndarray, u, clipped_normal,
                       bank_mag_f814w, bank_zphot) -> dict[str, np.ndarray]:
    """Source magnitudes per task (docs/physics.md, "Source brightness").

    physical: r = the galaxy's own F814W magnitude (measured on its clean bank stamp) + template
    r - F814W at its redshift - src_brightening_mag; g and z from the template's g - r and r - z
    (pipeline.bank.colours) plus Normal(0, src_colour_scatter_mag) scatter clipped at 3 sigma;
    redshift = the catalogue's zphot clipped to [src_z_min, src_z_max], else uniform in it; SED
    Im or Scd with equal odds.
    lens_relative: r = lens r + U[src_dmag_min, src_dmag_max], g - r and r - z uniform in their
    ranges (the earlier prior, kept as a named option); src_brightening_mag is then how much
    brighter than the galaxy itself the source is made (F814W - r, nan without bank magnitudes)."""
    from pipeline.bank.colours import SEDS, template_colours  # noqa: PLC0415

    c = config
    n = len(lens_mag_r)
    mag_f814w = (np.asarray(bank_mag_f814w, dtype=float)[cosmos] if bank_mag_f814w is not None
                 else np.full(n, np.nan))
    if c.src_brightness == "lens_relative":
        dmag = c.src_dmag_min + (c.src_dmag_max - c.src_dmag_min) * u("dmag")
        gr = c.src_gr_min + (c.src_gr_max - c.src_gr_min) * u("gr")
        rz = c.src_rz_min + (c.src_rz_max - c.src_rz_min) * u("rz")
        src_mag_r = lens_mag_r + dmag
        return {"src_dmag": dmag, "src_mag_r": src_mag_r, "src_gr": gr, "src_rz": rz, "src_mag_f814w": mag_f814w,
                "src_redshift": np.full(n, np.nan), "src_sed": np.full(n, None, dtype=object),
                "src_brightening_mag": mag_f814w - src_mag_r}
    if bank_mag_f814w is None or not np.all(np.isfinite(mag_f814w)):
        raise InputError("bank: mag_f814w", "the physical source model needs every drawn galaxy's F814W magnitude "
                                            "(build the bank with `dhs bank build` / `dhs bank synth`)")
    zphot = np.asarray(bank_zphot, dtype=float)[cosmos] if bank_zphot is not None else np.full(n, np.nan)
    z_drawn = c.src_z_min + (c.src_z_max - c.src_z_min) * u("src_z")
    z = np.where(np.isfinite(zphot), np.clip(zphot, c.src_z_min, c.src_z_max), z_drawn)
    sed = np.asarray(SEDS, dtype=object)[np.minimum((u("src_sed") * len(SEDS)).astype(np.int64), len(SEDS) - 1)]
    t_gr, t_rz, t_dr = template_colours(sed.astype(str), z)
    gr = t_gr + clipped_normal("gr_scatter", c.src_colour_scatter_mag)
    rz = t_rz + clipped_normal("rz_scatter", c.src_colour_scatter_mag)
    src_mag_r = mag_f814w + t_dr - c.src_brightening_mag
    return {"src_dmag": src_mag_r - lens_mag_r, "src_mag_r": src_mag_r, "src_gr": gr, "src_rz": rz,
            "src_mag_f814w": mag_f814w, "src_redshift": z, "src_sed": sed,
            "src_brightening_mag": np.full(n, float(c.src_brightening_mag))}


def _draw_injections(hosts: pd.DataFrame, config: RunConfig, allowed_cosmos: np.ndarray,
                     bank_hlr_arcsec: np.ndarray | None, bank_mag_f814w=None, bank_zphot=None) -> dict[str, np.ndarray]:
    """Lens and source parameters for each host row (host rows already carry task_seed)."""
    seeds = hosts["task_seed"].to_numpy(np.int64)

    def u(name):
        return hash_uniform(seeds, _STREAM[name])

    def clipped_normal(name, sigma):
        return sigma * np.clip(ndtri(u(name)), -CLIP_SIGMA, CLIP_SIGMA)

    c = config
    theta_e = c.theta_e_min_arcsec + (c.theta_e_max_arcsec - c.theta_e_min_arcsec) * u("theta_e")
    q = c.lens_q_min + (1.0 - c.lens_q_min) * u("q")
    phi = np.pi * u("phi_lens")
    ell = (1.0 - q) / (1.0 + q)
    cosmos = allowed_cosmos[np.minimum((u("cosmos") * allowed_cosmos.size).astype(np.int64), allowed_cosmos.size - 1)]
    phot = _source_photometry(c, hosts["mag_r"].to_numpy(float), cosmos, u, clipped_normal, bank_mag_f814w,
                              bank_zphot)
    # source position: uniform in area inside r_in, or in the annulus r_in .. r_out
    r_in = CAUSTIC_RADIUS_FACTOR * np.sqrt(q) * theta_e
    r_out = c.src_outer_radius_theta_e * theta_e
    inside = u("inside") < c.src_inside_caustic_frac
    lo = np.where(inside | (r_out <= r_in), 0.0, r_in)
    hi = np.where(inside, r_in, r_out)
    radius = np.sqrt(lo**2 + (hi**2 - lo**2) * u("src_r"))
    angle = 2.0 * np.pi * u("src_angle")
    src_mag_r = phot["src_mag_r"]
    # every band's magnitude from r and (g - r, r - z), in the band table's order (pipeline.bands)
    src_mags = {f"src_mag_{b}": m for b, m in band_magnitudes(src_mag_r, phot["src_gr"], phot["src_rz"]).items()}
    return {
        "theta_e_arcsec": theta_e,
        "lens_e1": ell * np.cos(2 * phi),
        "lens_e2": ell * np.sin(2 * phi),
        "shear_gamma1": clipped_normal("gamma1", c.shear_sigma),
        "shear_gamma2": clipped_normal("gamma2", c.shear_sigma),
        "lens_x_arcsec": clipped_normal("lens_x", c.lens_center_sigma_arcsec),
        "lens_y_arcsec": clipped_normal("lens_y", c.lens_center_sigma_arcsec),
        "cosmos_index": cosmos,
        "cosmos_hlr_arcsec": (bank_hlr_arcsec[cosmos] if bank_hlr_arcsec is not None else np.full(len(seeds), np.nan)),
        "src_x_arcsec": radius * np.cos(angle),
        "src_y_arcsec": radius * np.sin(angle),
        "src_phi_rad": 2.0 * np.pi * u("src_phi"),
        "src_dmag": phot["src_dmag"],
        **src_mags,
        "src_mag_f814w": phot["src_mag_f814w"],
        "src_redshift": phot["src_redshift"],
        "src_sed": phot["src_sed"],
        "src_brightening_mag": phot["src_brightening_mag"],
        "src_gr": phot["src_gr"],
        "src_rz": phot["src_rz"],
    }


def _allowed_cosmos(bank_size: int, bank_hlr_arcsec, hlr_filter_arcsec) -> tuple[np.ndarray, np.ndarray | None]:
    if not isinstance(bank_size, int | np.integer) or bank_size < 1:
        raise InputError("bank", f"bank_size must be a positive integer, got {bank_size!r}")
    if bank_hlr_arcsec is None:
        return np.arange(bank_size, dtype=np.int64), None
    hlr = np.asarray(bank_hlr_arcsec, dtype=float)
    if hlr.shape != (bank_size,):
        raise InputError("bank: hlr_arcsec", f"has {hlr.size} values for a bank of {bank_size} galaxies")
    if hlr_filter_arcsec is None:
        return np.arange(bank_size, dtype=np.int64), hlr
    lo, hi = hlr_filter_arcsec
    allowed = np.flatnonzero(np.isfinite(hlr) & (hlr >= lo) & (hlr <= hi)).astype(np.int64)
    if allowed.size == 0:
        raise InputError("bank: hlr_arcsec", f"no galaxy has a half-light radius inside the filter [{lo}, {hi}] arcsec")
    return allowed, hlr


def _build(lrg: pd.DataFrame, config: RunConfig, allowed: np.ndarray, hlr, bank_mag_f814w=None,
           bank_zphot=None) -> pd.DataFrame:
    region = region_ids(lrg["ra"].to_numpy(float), lrg["dec"].to_numpy(float), config.region_size_deg)
    lrg = lrg.assign(region_id=region, region_split=split_of_regions(region, config))
    lrg_ids = lrg["lrg_id"].to_numpy(np.int64)
    rank = hash_uniform(config.seed, _CONTROL, lrg_ids)
    is_control = np.zeros(len(lrg), dtype=bool)
    for split in SPLITS:
        idx = np.flatnonzero(lrg["region_split"].to_numpy() == split)
        n_c = n_controls_for(idx.size, config.control_frac[split], config.replicates)
        order = idx[np.lexsort((lrg_ids[idx], rank[idx]))]
        is_control[order[:n_c]] = True
    lrg["is_control"] = is_control

    controls = lrg[is_control].assign(replicate=0)
    hosts = lrg[~is_control]
    hosts = hosts.loc[hosts.index.repeat(config.replicates)].copy()
    hosts["replicate"] = np.tile(np.arange(config.replicates), int((~is_control).sum()))
    tasks = pd.concat([controls, hosts], ignore_index=True)
    tasks["task_seed"] = (hash64(config.seed, _TASK, tasks["lrg_id"].to_numpy(np.int64),
                                 tasks["replicate"].to_numpy(np.int64)) >> _U64(1)).astype(np.int64)
    role = np.where(tasks["is_control"], "c", "i")
    tasks["task_id"] = [f"{config.experiment_id}-{i}-{r}{k}" for i, r, k in
                        zip(tasks["lrg_id"], role, tasks["replicate"])]
    tasks["variant"] = config.variant
    tasks["experiment_id"] = config.experiment_id
    tasks["lens_model"] = np.where(tasks["is_control"], "CONTROL", "SIE")
    tasks["lens_mag_r"] = tasks["mag_r"].astype(float)

    inj = ~tasks["is_control"].to_numpy()
    params = _draw_injections(tasks[inj], config, allowed, hlr, bank_mag_f814w, bank_zphot)
    for name, values in params.items():
        if name == "src_sed":
            col = np.full(len(tasks), None, dtype=object)
            col[inj] = values
        elif name == "cosmos_index":
            col = pd.array(np.zeros(len(tasks), dtype=np.int64), dtype="Int64")
            col[:] = pd.NA
            col[inj] = values
        else:
            col = np.full(len(tasks), np.nan)
            col[inj] = values
        tasks[name] = col
    for name in ("ra", "dec", *band_columns("psfsize_{b}"), "psfdepth_r"):
        tasks[name] = tasks[name].astype(float)
    tasks["lrg_id"] = tasks["lrg_id"].astype(np.int64)
    tasks["region_id"] = tasks["region_id"].astype(np.int64)
    tasks["replicate"] = tasks["replicate"].astype(np.int64)
    tasks["brickname"] = tasks["brickname"].astype(str)
    tasks = tasks.sort_values(["brickname", "lrg_id", "replicate"], kind="mergesort").reset_index(drop=True)
    return tasks[list(MANIFEST_COLUMNS)]


def build_manifest(lrg: pd.DataFrame, config: RunConfig, bank_size: int, bank_hlr_arcsec=None, *,
                   hlr_filter_arcsec: tuple[float, float] | None = None, max_tasks: int | None = None,
                   source: str = "LRG table", bank_mag_f814w=None, bank_zphot=None) -> pd.DataFrame:
    """The manifest for an LRG table (columns LRG_REQUIRED) and a bank of `bank_size` galaxies.

    bank_hlr_arcsec (optional, one per bank galaxy) fills cosmos_hlr_arcsec; with
    hlr_filter_arcsec = (lo, hi) too, only galaxies inside the filter are drawn. bank_mag_f814w
    (one per galaxy) is required by config.src_brightness = "physical", bank_zphot is optional.
    max_tasks keeps a hash-chosen subset of the LRGs so that there are at most that many tasks
    (exactly that many when replicates = 1 and the table is large enough), except that a subset
    never splits an LRG: when one LRG alone has more tasks than max_tasks (replicates > max_tasks),
    its tasks are all kept.
    Sorted by (brickname, lrg_id, replicate) so that a brick's tasks are contiguous."""
    lrg = _validate_lrg(lrg, source)
    allowed, hlr = _allowed_cosmos(bank_size, bank_hlr_arcsec, hlr_filter_arcsec)
    if max_tasks is None:
        return _build(lrg, config, allowed, hlr, bank_mag_f814w, bank_zphot)
    if int(max_tasks) < 1:
        raise InputError("--max-tasks", f"must be >= 1, got {max_tasks}")
    max_tasks = int(max_tasks)
    rank = hash_uniform(config.seed, _SUBSET, lrg["lrg_id"].to_numpy(np.int64))
    order = np.lexsort((lrg["lrg_id"].to_numpy(), rank))
    # tasks per LRG when a fraction f of the TASKS are controls: 1 / (f + (1 - f) / R)
    f = sum(config.split_fractions[s] * config.control_frac[s] for s in SPLITS)
    tasks_per_lrg = 1.0 / (f + (1.0 - f) / config.replicates)
    n_keep = min(len(lrg), max(1, int(max_tasks / tasks_per_lrg)))
    best = None
    for _ in range(6):  # a few corrections: the split/control rounding makes the count approximate
        tasks = _build(lrg.iloc[np.sort(order[:n_keep])].reset_index(drop=True), config, allowed, hlr,
                       bank_mag_f814w, bank_zphot)
        if len(tasks) <= max_tasks and (best is None or len(tasks) > len(best)):
            best = tasks
        step = int(round((max_tasks - len(tasks)) / tasks_per_lrg))
        if len(tasks) > max_tasks:
            step = min(step, -1)
        new_keep = min(len(lrg), max(1, n_keep + step))
        if new_keep == n_keep or (best is not None and len(best) == max_tasks):
            break
        n_keep = new_keep
    return best if best is not None else tasks


def manifest_counts(df: pd.DataFrame) -> dict:
    """Tasks per split: total, control, injection, control fraction, LRGs, regions."""
    out = {}
    for split in SPLITS:
        part = df[df["region_split"] == split]
        n_c = int(part["is_control"].sum())
        out[split] = {
            "tasks": int(len(part)), "control": n_c, "injection": int(len(part) - n_c),
            "control_frac": (n_c / len(part)) if len(part) else None,
            "lrgs": int(part["lrg_id"].nunique()), "regions": int(part["region_id"].nunique()),
        }
    return out


def _input_record(name: str, value) -> dict:
    if isinstance(value, Mapping):
        return dict(value)
    uri = str(value)
    if storage.is_s3(uri):
        digest = hashlib.sha256(storage.read_bytes(uri)).hexdigest()
    else:
        path = Path(uri)
        if not path.is_file():
            raise InputError(uri, f"input {name!r} is not a file (cannot checksum it)")
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
    return {"uri": uri, "sha256": digest}


def write_manifest(df: pd.DataFrame, out_dir: str, config: RunConfig, inputs: dict) -> dict:
    """Write out_dir/manifest.parquet and out_dir/manifest.json; return the JSON document.

    `inputs` maps a name ("lrg", "bank") to a path/URI (checksummed here) or to a ready dict
    such as {"uri": ..., "sha256": ...}."""
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise InputError("manifest", f"lacks column(s) {missing}")
    table = pa.Table.from_pandas(df[list(MANIFEST_COLUMNS)], preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    storage.write_bytes(storage.join(out_dir, "manifest.parquet"), buf.getvalue())
    doc = {
        "format": "dhs-manifest",
        "format_version": MANIFEST_FORMAT_VERSION,
        "n_tasks": int(len(df)),
        "tasks_per_split": manifest_counts(df),
        "caustic_radius_factor": CAUSTIC_RADIUS_FACTOR,
        "config": config.to_dict(),
        "inputs": {name: _input_record(name, value) for name, value in sorted(inputs.items())},
        "columns": list(MANIFEST_COLUMNS),
        # what the gate needs to check the rows' task ids and LRG leakage without a shuffle
        "identity": manifest_identity(df["task_id"], df["lrg_id"], df["region_split"], df["is_control"]),
    }
    storage.write_bytes(storage.join(out_dir, "manifest.json"), (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode())
    return doc


def task_count(manifest_uri: str, *, source: str = "manifest_uri") -> int:
    """The manifest's task count (manifest.json `n_tasks`) without reading its rows (cluster sizing)."""
    uri = storage.join(str(manifest_uri), "manifest.json")
    try:
        n = json.loads(storage.read_bytes(uri))["n_tasks"]
    except (FileNotFoundError, InputError):  # storage names a missing local file / S3 key itself
        if not storage.exists(uri):
            raise InputError(source, f"no manifest.json under {manifest_uri} (make one with `dhs manifest`)") from None
        raise InputError(source, f"{uri} cannot be read") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(source, f"{uri} is not a readable manifest.json ({type(exc).__name__})") from None
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InputError(source, f"{uri}: n_tasks must be a non-negative integer")
    return n


def manifest_parquet_uri(uri: str) -> str:
    """`M` or `M/manifest.parquet` -> the parquet file's URI."""
    uri = str(uri)
    return uri if uri.endswith(".parquet") else storage.join(uri, "manifest.parquet")


def read_manifest(uri: str) -> pd.DataFrame:
    """Read and validate a manifest (a directory holding manifest.parquet, or the file itself).
    Raises InputError naming the file (and column) when it is missing, lacks columns, is empty or
    has duplicate task ids."""
    path = manifest_parquet_uri(uri)
    data = storage.read_bytes(path)  # InputError "no such file" when missing
    try:
        df = pq.read_table(pa.BufferReader(data)).to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(path, f"not a Parquet manifest ({exc})") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: {missing[0]}", f"manifest lacks column(s) {missing}")
    if len(df) == 0:
        raise InputError(path, "manifest has no tasks")
    dup = df["task_id"].duplicated()
    if dup.any():
        raise InputError(f"{path}: task_id", f"not unique: {int(dup.sum())} duplicate(s), e.g. {df.loc[dup, 'task_id'].iloc[0]!r}")
    if df["task_id"].isna().any():
        raise InputError(f"{path}: task_id", "missing value(s)")
    bad_split = sorted(set(df["region_split"]) - set(SPLITS))
    if bad_split:
        raise InputError(f"{path}: region_split", f"unknown split(s) {bad_split}; allowed {list(SPLITS)}")
    return df
