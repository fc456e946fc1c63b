"""Synthetic Phase 4c datasets in the contract format, clean or with one defect, for the gate tests.

The clean dataset looks like a small demo run: 600 rows over train/val/test, exactly half controls
per split, unpaired controls (every LRG used once), theta_E stratified-uniform in the config range,
magnification lognormal, arc flux = source flux x magnification x 0.97 (a little PSF wing lost at
the stamp edge), and real pixel arrays (a noisy de Vaucouleurs-ish LRG plus a PSF-blurred arc ring
at theta_E). Every pixel-derived scalar (arc fluxes, SNRs, masked fractions) is computed from those
pixels by the injection's own function, as the gate demands. Each defect breaks one thing the gate
must catch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import load_run_config
from pipeline.contract import BANDS, COLUMNS, INJECTION_ONLY, PIXEL_LAYOUT, STAMP_SIZE_PIX
from pipeline.injection.metrics import pixel_quantities
from pipeline.physics_checks import source_flux_nmgy
from pipeline.task_identity import manifest_identity

SPLIT_ROWS = {"train": 240, "val": 180, "test": 180}
#: Rows of a defective dataset: each defect breaks one check, which 200 rows show as well as 600
#: (a third of the pixels to write and read).
DEFECT_SPLIT_ROWS = {"train": 80, "val": 60, "test": 60}
BANK_SIZE = 60
HLR_FILTER_ARCSEC = (0.1, 1.0)
PIXSCALE = 0.262
_NPIX = len(BANDS) * STAMP_SIZE_PIX * STAMP_SIZE_PIX


def _stamps(rng, theta_e, is_control, arc_flux, lens_mag_r):
    """image, arc, invvar as (n, 3*64*64) float32: sky noise + LRG + (for injections) an arc."""
    n = len(theta_e)
    yy, xx = np.mgrid[0:STAMP_SIZE_PIX, 0:STAMP_SIZE_PIX] - 32.0
    r = np.hypot(xx, yy) * PIXSCALE
    phi = np.arctan2(yy, xx)
    sigma_sky = np.array([0.004, 0.006, 0.015], dtype=np.float32)  # nmgy/pixel, g r z
    lrg_colour = np.array([0.35, 1.0, 1.8])
    image = np.empty((n, 3, STAMP_SIZE_PIX, STAMP_SIZE_PIX), np.float32)
    arc = np.zeros_like(image)
    lrg_profile = np.exp(-7.67 * ((r + 0.05) / 1.2) ** 0.25)
    lrg_profile /= lrg_profile.sum()
    for i in range(n):
        lrg_flux = 10 ** ((22.5 - lens_mag_r[i]) / 2.5)
        image[i] = lrg_colour[:, None, None] * lrg_flux * lrg_profile
        if not is_control[i] and np.isfinite(theta_e[i]):
            ring = np.exp(-0.5 * ((r - theta_e[i]) / 0.35) ** 2) * (1 + np.cos(phi - rng.uniform(0, 2 * np.pi))) ** 2
            ring /= ring.sum()
            arc[i] = arc_flux[i][:, None, None] * ring
            image[i] += arc[i]
        image[i] += rng.normal(0, 1, (3, STAMP_SIZE_PIX, STAMP_SIZE_PIX)) * sigma_sky[:, None, None]
    invvar = np.broadcast_to((1 / sigma_sky**2)[None, :, None, None], image.shape).astype(np.float32)
    return image.reshape(n, -1), arc.reshape(n, -1), invvar.reshape(n, -1)


def clean_columns(split_rows: dict | None = None, seed: int = 7) -> dict:
    """Column name -> numpy array (object arrays for strings; None marks null) for a clean dataset."""
    split_rows = split_rows or SPLIT_ROWS
    cfg = load_run_config("demo")
    rng = np.random.default_rng(seed)
    n = sum(split_rows.values())
    split = np.concatenate([[s] * k for s, k in split_rows.items()]).astype(object)
    within = np.concatenate([np.arange(k) for k in split_rows.values()])
    is_control = within % 2 == 0
    inj = ~is_control
    c = {}
    c["task_id"] = np.array([f"{s}-{i:05d}" for s, i in zip(split, within)], dtype=object)
    c["run_id"] = np.full(n, "run-test", dtype=object)
    c["variant"] = np.full(n, "demo", dtype=object)
    c["experiment_id"] = np.full(n, cfg.experiment_id, dtype=object)
    c["pipeline_version"] = np.full(n, "0.0.test", dtype=object)
    c["task_seed"] = rng.integers(0, 2**62, n)
    c["region_split"] = split
    split_index = np.array([list(split_rows).index(s) for s in split])
    c["region_id"] = split_index * 100 + within % 7
    c["brickname"] = np.array([f"{1000 + split_index[i] * 10 + within[i] % 5:04d}p000" for i in range(n)], dtype=object)
    c["lrg_id"] = np.arange(n, dtype=np.int64) * 3 + 1000
    c["ra"] = 150 + split_index * 2 + rng.uniform(0, 1, n)
    c["dec"] = 2 + rng.uniform(0, 1, n)
    c["lens_mag_r"] = rng.uniform(17.5, 20.5, n)
    c["psfsize_r"] = rng.uniform(1.0, 1.6, n)
    c["psfsize_g"] = c["psfsize_r"] * rng.uniform(1.05, 1.15, n)
    c["psfsize_z"] = c["psfsize_r"] * rng.uniform(0.85, 0.95, n)
    c["psfdepth_r"] = rng.normal(23.9, 0.3, n)
    c["is_control"] = is_control
    c["lens_model"] = np.where(is_control, "CONTROL", "SIE").astype(object)
    # lens: theta_E stratified over the config range (flat by construction, random order)
    theta = np.full(n, np.nan)
    for s in split_rows:
        idx = np.flatnonzero(inj & (split == s))
        u = (rng.permutation(len(idx)) + rng.uniform(0, 1, len(idx))) / len(idx)
        theta[idx] = cfg.theta_e_min_arcsec + u * (cfg.theta_e_max_arcsec - cfg.theta_e_min_arcsec)
    c["theta_e_arcsec"] = theta
    c["lens_e1"] = rng.uniform(-0.2, 0.2, n)
    c["lens_e2"] = rng.uniform(-0.2, 0.2, n)
    c["shear_gamma1"] = rng.normal(0, 0.05, n)
    c["shear_gamma2"] = rng.normal(0, 0.05, n)
    c["lens_x_arcsec"] = rng.normal(0, 0.05, n)
    c["lens_y_arcsec"] = rng.normal(0, 0.05, n)
    c["cosmos_index"] = rng.integers(0, BANK_SIZE, n)
    c["cosmos_hlr_arcsec"] = rng.uniform(0.15, 0.9, n)
    c["src_x_arcsec"] = rng.normal(0, 0.3, n)
    c["src_y_arcsec"] = rng.normal(0, 0.3, n)
    c["src_phi_rad"] = rng.uniform(0, np.pi, n)
    # a fixed prior (not the config's bounds, which the physical model widens to a sanity range):
    # source r 4-6.5 mag fainter than the lens, arcs with whole-stamp SNR ~0.3-40 on this sky
    # as bright as the demo's physical source model makes them (arc_snr P50 ~14, the reference run
    # of expectations/demo.yaml); the earlier lens-relative 4.0-6.5 gave P50 ~2.5
    c["src_dmag"] = rng.uniform(2.0, 5.2, n)
    c["src_mag_r"] = c["lens_mag_r"] + c["src_dmag"]
    c["src_mag_g"] = c["src_mag_r"] + rng.uniform(0.2, 1.0, n)
    c["src_mag_z"] = c["src_mag_r"] - rng.uniform(0.0, 0.8, n)
    c["psf_fwhm_g"], c["psf_fwhm_r"], c["psf_fwhm_z"] = c["psfsize_g"], c["psfsize_r"], c["psfsize_z"]
    c["moffat_beta"] = np.full(n, cfg.moffat_beta)
    c["magnification"] = np.clip(np.exp(rng.normal(np.log(6.0), 0.6, n)), 1.5, 150)
    for b in BANDS:
        c[f"arc_flux_{b}"] = source_flux_nmgy(c[f"src_mag_{b}"]) * c["magnification"] * 0.97
    c["arc_snr"] = np.exp(rng.normal(np.log(4.2), 1.0, n))
    c["arc_snr_footprint"] = c["arc_snr"] * 3.4
    c["arc_snr_peak"] = c["arc_snr"] / 4
    c["arc_masked_frac"] = rng.uniform(0, 0.05, n)
    c["cutout_ok"] = np.ones(n, bool)
    c["cutout_error"] = np.full(n, None, dtype=object)
    c["bad_pixel_frac"] = rng.uniform(0, 0.02, n)
    arc_flux = np.stack([c[f"arc_flux_{b}"] for b in BANDS], axis=1)
    c["image"], c["arc"], c["invvar"] = _stamps(rng, theta, is_control, arc_flux, c["lens_mag_r"])
    c["maskbits"] = np.zeros((n, STAMP_SIZE_PIX * STAMP_SIZE_PIX), np.int32)
    # Every row agrees with its own pixels (the gate recomputes them): every pixel-derived scalar
    # (arc fluxes, SNRs, masked and bad-pixel fractions) is taken from the pixels, by the
    # injection's own definition. The arc_snr drawn above only seeded the columns; the SNRs follow
    # from the drawn fluxes and the sky noise (median ~3, lognormal-like over 0.3-40).
    refresh_pixel_quantities(c, np.arange(n))
    # the physical source model's columns (nullable, null for controls)
    c["cosmos_hlr_in_stamp_arcsec"] = c["cosmos_hlr_arcsec"] * 0.95
    c["src_mag_f814w"] = c["src_mag_r"] - 0.3
    c["src_redshift"] = rng.uniform(1.0, 3.0, n)
    c["src_sed"] = np.where(rng.uniform(size=n) < 0.5, "Im", "Scd").astype(object)
    c["src_brightening_mag"] = np.zeros(n)
    for name in ("cosmos_hlr_in_stamp_arcsec", "src_mag_f814w", "src_redshift", "src_sed", "src_brightening_mag"):
        set_null(c, name, is_control)
    for name in INJECTION_ONLY:  # controls carry no lens / source / rendering parameters
        set_null(c, name, is_control)
    return c


def pixel_quantities_of(c: dict, i: int) -> dict:
    """The pixel-derived scalars of row i, by the injection's own definition."""
    nb, n = len(BANDS), STAMP_SIZE_PIX
    arc = None if c["is_control"][i] or c["arc"][i] is None else np.asarray(c["arc"][i], np.float32).reshape(nb, n, n)
    return pixel_quantities(arc, np.asarray(c["invvar"][i], np.float32).reshape(nb, n, n),
                            np.asarray(c["maskbits"][i], np.int32).reshape(n, n), BANDS)


def refresh_pixel_quantities(c: dict, rows) -> None:
    """Re-derive rows' pixel-derived scalars from their (changed) pixels: a defect that edits
    pixels stays consistent with them, so it trips only the check it is about."""
    for i in rows:
        if not c["cutout_ok"][i] or c["invvar"][i] is None:
            continue
        for name, value in pixel_quantities_of(c, i).items():
            if name in c:
                if c[name].dtype != object and not np.issubdtype(c[name].dtype, np.floating):
                    c[name] = c[name].astype(float)
                c[name][i] = value


def set_null(c: dict, name: str, where) -> None:
    """Null `name` where `where`; a 2-D pixel column becomes a 1-D object array of rows."""
    where = np.asarray(where, bool)
    if c[name].dtype != object:
        values = c[name]
        c[name] = np.empty(len(values), dtype=object)
        for i in range(len(values)):
            c[name][i] = values[i]
    c[name][where] = None


def _arrow_column(col, values) -> pa.Array:
    if pa.types.is_fixed_size_list(col.type):
        # Parquet cannot write a fixed-size list with null entries (they still own values), so
        # pixels are written as variable lists whose null entries are empty, as Spark writes them.
        rows = list(values)
        mask = np.array([v is None for v in rows], bool)
        size = col.type.list_size
        lengths = np.where(mask, 0, size)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        dense = [np.asarray(v).reshape(-1) for v in rows if v is not None]
        flat = np.concatenate(dense) if dense else np.zeros(0)
        flat = pa.array(flat.astype(col.type.value_type.to_pandas_dtype()))
        return pa.ListArray.from_arrays(pa.array(offsets), flat, mask=pa.array(mask))
    return pa.array([None if v is None else v for v in values.tolist()], type=col.type)


def to_table(c: dict) -> pa.Table:
    return pa.table({col.name: _arrow_column(col, c[col.name]) for col in COLUMNS})


def write_dataset(c: dict, root: Path, *, files_per_split: int = 2, metadata: dict | None = None) -> Path:
    """Write D/phase4c/region_split=<split>/part-*.parquet + _dhs_dataset.json; returns D."""
    root = Path(root)
    data = root / "phase4c"
    table = to_table(c)
    splits = np.asarray(c["region_split"])
    rows_per_split = {}
    for s in dict.fromkeys(splits.tolist()):
        idx = np.flatnonzero(splits == s)
        rows_per_split[s] = len(idx)
        part = table.take(pa.array(idx)).drop_columns(["region_split"])
        out = data / f"region_split={s}"
        out.mkdir(parents=True, exist_ok=True)
        for k, chunk in enumerate(np.array_split(np.arange(part.num_rows), files_per_split)):
            pq.write_table(part.take(pa.array(chunk)), out / f"part-{k:05d}.parquet", compression="zstd")
    meta = metadata or {
        "run_config": load_run_config("demo").to_dict(),
        "bank": {"sha256": "0" * 64, "hlr_filter_arcsec": list(HLR_FILTER_ARCSEC), "n_sources": BANK_SIZE},
        "rows_per_split": rows_per_split,
        "pixel_layout": PIXEL_LAYOUT,
    }
    (data / "_dhs_dataset.json").write_text(json.dumps(meta, indent=1))
    return root


def identity_of(c: dict) -> dict:
    """The manifest.json identity record of these columns' tasks, as `dhs manifest` writes it."""
    return manifest_identity(c["task_id"], c["lrg_id"], c["region_split"], c["is_control"])


def write_manifest(root: Path, tasks_per_split: dict | None = None, identity: dict | None = None,
                   tasks: dict | None = None) -> Path:
    """manifest.json with the counts and (when given) the task identity record; a real manifest is
    the clean plan, so the gate cases pass the clean columns' identity even for a defect. `tasks`
    (clean columns) also writes manifest.parquet's identity columns, which the gate reads to name
    the rows that differ from the manifest."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if tasks is not None:
        pq.write_table(pa.table({"task_id": pa.array(list(tasks["task_id"]), pa.string()),
                                 "lrg_id": pa.array(np.asarray(tasks["lrg_id"], np.int64)),
                                 "region_split": pa.array(list(tasks["region_split"]), pa.string()),
                                 "is_control": pa.array(np.asarray(tasks["is_control"], bool))}),
                       root / "manifest.parquet")
    per_split = tasks_per_split or dict(SPLIT_ROWS)
    doc = {"run_config": load_run_config("demo").to_dict(), "tasks_per_split": per_split,
           "n_tasks": int(sum(v["tasks"] if isinstance(v, dict) else v for v in per_split.values()))}
    if identity is not None:
        doc["identity"] = identity
    (root / "manifest.json").write_text(json.dumps(doc, indent=1))
    return root


# --- defects: each takes the clean columns and breaks one thing ----------------------------------

def _injections(c, split=None):
    mask = ~c["is_control"].astype(bool)
    if split:
        mask &= c["region_split"] == split
    return np.flatnonzero(mask)


def faint_arcs(c):
    """The seed's flux-per-pixel bug: arcs 1,111x too faint."""
    i = _injections(c)
    for name in ("arc_flux_g", "arc_flux_r", "arc_flux_z", "arc_snr", "arc_snr_footprint", "arc_snr_peak"):
        c[name][i] = c[name][i].astype(float) / 1111
    for j in i:
        c["image"][j] = c["image"][j] - c["arc"][j] * (1 - 1 / 1111)
        c["arc"][j] = c["arc"][j] / 1111
    refresh_pixel_quantities(c, i)


def control_60_40(c):
    """60% controls: one in five injections (pixels and all) turned into a control."""
    for s in dict.fromkeys(c["region_split"].tolist()):
        i = _injections(c, s)[::5]
        c["is_control"][i] = True
        c["lens_model"][i] = "CONTROL"
        for j in i:
            c["image"][j] = c["image"][j] - c["arc"][j]
        for name in INJECTION_ONLY:
            set_null(c, name, np.isin(np.arange(len(c["task_id"])), i))


def theta_e_out_of_range(c):
    i = _injections(c)[::8]
    c["theta_e_arcsec"][i] = 3.2


def cutout_rate_95(c):
    """5% of tasks (controls and injections alike) failed to render."""
    i = np.arange(len(c["task_id"]))[3::20]
    c["cutout_ok"][i] = False
    c["cutout_error"][i] = "RowError: LRG too close to the brick edge"
    failed = np.isin(np.arange(len(c["task_id"])), i)
    for name in INJECTION_ONLY + ("image", "invvar", "maskbits", "bad_pixel_frac"):
        set_null(c, name, failed)


def hlr_in_pixels(c):
    i = _injections(c)
    c["cosmos_hlr_arcsec"][i] = c["cosmos_hlr_arcsec"][i].astype(float) * 33.3


def lrg_in_two_splits(c):
    val_row = np.flatnonzero(c["region_split"] == "val")[0]
    train_row = np.flatnonzero(c["region_split"] == "train")[0]
    c["lrg_id"][val_row] = c["lrg_id"][train_row]


def controls_share_lrgs(c):
    ctrl = np.flatnonzero(c["is_control"].astype(bool) & (c["region_split"] == "train"))[:5]
    c["lrg_id"][ctrl] = c["lrg_id"][_injections(c, "train")[:5]]


def psf_parity(c):
    """Injections placed on the worse-seeing half of the sky: a shortcut a CNN would learn."""
    n = len(c["task_id"])
    rng = np.random.default_rng(3)
    inj = ~c["is_control"].astype(bool)
    psf = np.where(inj, rng.uniform(1.3, 1.6, n), rng.uniform(1.0, 1.3, n))
    c["psfsize_r"] = psf
    c["psf_fwhm_r"] = np.where(inj, psf, None).astype(object)


def nan_pixels(c):
    n = len(c["task_id"])
    for i in (5, n // 2, n - 7):  # one row in each split
        c["image"][i, 100 + i] = np.nan


def duplicate_task_ids(c):
    n = len(c["task_id"])
    c["task_id"][10] = c["task_id"][12]
    c["task_id"][n // 2] = c["task_id"][n // 2 + 2]


def arc_snr_contradicts_pixels(c):
    """Two injections carry an arc_snr 10% above what their own pixels give."""
    for j in _injections(c)[[3, -3]]:
        c["arc_snr"][j] = float(c["arc_snr"][j]) * 1.1


def psf_from_wrong_band(c):
    """The g and z PSFs swapped on every injection (the kernel of the wrong band)."""
    i = _injections(c)
    g, z = c["psf_fwhm_g"][i].copy(), c["psf_fwhm_z"][i].copy()
    c["psf_fwhm_g"][i], c["psf_fwhm_z"][i] = z, g


def arc_bands_swapped(c):
    """Three injections whose arc pixels were written z, r, g (their fluxes still say g, r, z)."""
    nb, n = len(BANDS), STAMP_SIZE_PIX
    for j in _injections(c)[[1, 4, 7]]:
        for col in ("arc", "image"):
            planes = np.asarray(c[col][j]).reshape(nb, n, n)
            c[col][j] = planes[::-1].reshape(-1).copy()


def foreign_task(c):
    """One task swapped for a task the manifest does not have; every count (rows per split,
    controls, LRGs) unchanged, no duplicate, no leakage."""
    j = _injections(c, "val")[2]
    c["task_id"][j] = "val-foreign-00001"


DEFECTS = {f.__name__: f for f in (
    faint_arcs, control_60_40, theta_e_out_of_range, cutout_rate_95, hlr_in_pixels, lrg_in_two_splits,
    controls_share_lrgs, psf_parity, nan_pixels, duplicate_task_ids, arc_snr_contradicts_pixels,
    psf_from_wrong_band, arc_bands_swapped, foreign_task)}


def make_case(tmp_path: Path, defect: str | None = None, *, rows_lost: int = 0,
              split_rows: dict | None = None) -> tuple[Path, Path]:
    """(dataset D, manifest M) for a clean dataset or one with `defect`; `rows_lost` rows of the
    train split are dropped from the data but stay in the manifest. `split_rows` defaults to
    SPLIT_ROWS for the clean dataset and DEFECT_SPLIT_ROWS for a defective one."""
    split_rows = split_rows or (DEFECT_SPLIT_ROWS if (defect or rows_lost) else SPLIT_ROWS)
    c = _cached_clean(split_rows)
    c = {k: v.copy() for k, v in c.items()}
    if defect:
        DEFECTS[defect](c)
    if rows_lost:
        keep = np.ones(len(c["task_id"]), bool)
        keep[np.flatnonzero(c["region_split"] == "train")[:rows_lost]] = False
        c = {k: v[keep] for k, v in c.items()}
    name = defect or ("rows_lost" if rows_lost else "clean")
    clean = _cached_clean(split_rows)
    return write_dataset(c, Path(tmp_path) / name), write_manifest(Path(tmp_path) / f"{name}_manifest", split_rows,
                                                                   identity_of(clean), tasks=clean)


_CLEAN = {}


def _cached_clean(split_rows: dict | None = None):
    split_rows = split_rows or SPLIT_ROWS
    key = tuple(split_rows.items())
    if key not in _CLEAN:
        _CLEAN[key] = clean_columns(split_rows)
    return _CLEAN[key]


# --- pytest fixtures shared by the gate test modules (import them by name) ---------------------
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def gate_cases(tmp_path_factory):
    """Lazily built (dataset, manifest) per case name, written once per test session."""
    root = tmp_path_factory.mktemp("gate_cases")
    cache = {}

    def get(name: str = "clean"):
        if name not in cache:
            if name == "clean":
                cache[name] = make_case(root)
            elif name == "rows_lost":
                cache[name] = make_case(root, rows_lost=10)
            else:
                cache[name] = make_case(root, name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def clean_validation(spark, gate_cases, tmp_path_factory):
    """validate_dataset on the clean dataset with the demo suite, Data Docs and report: run once,
    shared read-only by every test that only reads its outputs. (GateResult, out_dir)."""
    from pipeline.gate.validate import validate_dataset

    d, m = gate_cases("clean")
    out = tmp_path_factory.mktemp("val_clean")
    return validate_dataset(str(d), manifest_uri=str(m), variant="demo", out_dir=str(out), spark=spark), out


@pytest.fixture(scope="session")
def strict_validation(spark, gate_cases, tmp_path_factory):
    """validate_dataset on the clean dataset with the strict suite (fails on purpose); no docs."""
    from pipeline.gate.validate import validate_dataset

    d, m = gate_cases("clean")
    out = tmp_path_factory.mktemp("val_strict")
    return validate_dataset(str(d), manifest_uri=str(m), variant="strict", out_dir=str(out), spark=spark,
                            build_docs=False, build_report=False), out


# --- issue 20: defects for the gate checks no test failed before (each trips exactly its own) ---

def _every_nth_injection_per_split(c, step, start=0):
    return np.concatenate([_injections(c, s)[start::step] for s in dict.fromkeys(c["region_split"].tolist())])


def magnification_unphysical(c):
    """One injection per split with magnification 250 (> 200: no galaxy-scale lens does that), its
    source made fainter by the same factor so the arc flux stays consistent: only the magnification
    invariant can see it."""
    i = _every_nth_injection_per_split(c, 1000, 3)
    factor = 250.0 / c["magnification"][i].astype(float)
    c["magnification"][i] = 250.0
    dm = 2.5 * np.log10(factor)
    for name in ("src_mag_g", "src_mag_r", "src_mag_z", "src_dmag", "src_mag_f814w"):
        c[name][i] = c[name][i].astype(float) + dm


def magnification_scaled_up(c):
    """Every magnification 1.3x larger (sources 1.3x fainter, arc fluxes unchanged): physical
    (max 150 x 1.3 = 195 < 200), consistent, caught only by drift of magnification_p50."""
    i = _injections(c)
    for name in ("src_mag_g", "src_mag_r", "src_mag_z", "src_dmag", "src_mag_f814w"):
        c[name][i] = c[name][i].astype(float) + 2.5 * np.log10(1.3)
    c["magnification"][i] = c["magnification"][i].astype(float) * 1.3


def theta_e_below_range(c):
    i = _injections(c)[::8]
    c["theta_e_arcsec"][i] = 0.4


def theta_e_not_flat(c):
    """theta_E squeezed into the lower half of the configured range (still inside it): the KS
    flatness check (and the drift of its mean) must see it; the range checks must not."""
    cfg = load_run_config("demo")
    i = _injections(c)
    lo = cfg.theta_e_min_arcsec
    c["theta_e_arcsec"][i] = lo + (c["theta_e_arcsec"][i].astype(float) - lo) * 0.5


def psfsize_out_of_range(c):
    """Two controls (no PSF used to check against) with a survey PSF outside the suite's band:
    0.55" (< 0.6) in train and 2.6" (> 2.5) in test."""
    c["psfsize_r"][np.flatnonzero(c["is_control"].astype(bool) & (c["region_split"] == "train"))[0]] = 0.55
    c["psfsize_r"][np.flatnonzero(c["is_control"].astype(bool) & (c["region_split"] == "test"))[0]] = 2.6


def seeing_worse(c):
    """Every PSF 20% wider (survey and used alike): in range, no parity shift, caught only by the
    drift of psfsize_r_mean."""
    for b in BANDS:
        c[f"psfsize_{b}"] = c[f"psfsize_{b}"].astype(float) * 1.2
        used = c[f"psf_fwhm_{b}"]
        c[f"psf_fwhm_{b}"] = np.array([None if v is None else float(v) * 1.2 for v in used], dtype=object)


def cosmos_reused(c):
    """40% of each split's injections use COSMOS source 0 (the suite allows 25%); the rest keep
    their (tens of) sources, so the unique count stays above its minimum."""
    for s in dict.fromkeys(c["region_split"].tolist()):
        i = _injections(c, s)
        c["cosmos_index"][i[: int(0.4 * len(i))]] = 0


def _parity_shift(c, column, inj_range, ctrl_range, *, used=None):
    n = len(c["task_id"])
    rng = np.random.default_rng(5)
    inj = ~c["is_control"].astype(bool)
    values = np.where(inj, rng.uniform(*inj_range, n), rng.uniform(*ctrl_range, n))
    c[column] = values
    if used:
        c[used] = np.where(inj, values, None).astype(object)


def psf_parity_g(c):
    _parity_shift(c, "psfsize_g", (1.45, 1.75), (1.1, 1.45), used="psf_fwhm_g")


def psf_parity_z(c):
    _parity_shift(c, "psfsize_z", (1.15, 1.45), (0.85, 1.15), used="psf_fwhm_z")


def depth_parity(c):
    """Injections on the deeper half of the sky."""
    _parity_shift(c, "psfdepth_r", (23.9, 24.5), (23.3, 23.9))


def lens_mag_parity(c):
    """Injections around the brighter lenses (the sources keep their own magnitudes)."""
    n = len(c["task_id"])
    rng = np.random.default_rng(6)
    inj = ~c["is_control"].astype(bool)
    c["lens_mag_r"] = np.where(inj, rng.uniform(17.5, 19.0, n), rng.uniform(19.0, 20.5, n))
    c["src_dmag"] = np.where(inj, c["src_mag_r"].astype(float) - c["lens_mag_r"], None).astype(object)


def clean_small(c):
    """No defect: the clean columns at the defect size, the drift reference for the defects."""


DEFECTS.update({f.__name__: f for f in (
    magnification_unphysical, magnification_scaled_up, theta_e_below_range, theta_e_not_flat,
    psfsize_out_of_range, seeing_worse, cosmos_reused, psf_parity_g, psf_parity_z, depth_parity,
    lens_mag_parity, clean_small)})
