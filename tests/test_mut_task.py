"""pipeline/injection/task.py against truth written here (issue 20, mutation testing): the row's
columns listed by hand from the contract's documentation and the band table, values converted as
the contract's types say, the lens centre from the LRG's brick pixel by hand, the stored pixels
against the raw brick window and the render called directly, the pixel-derived scalars recomputed
from the stored pixels with numpy by their documented formulas (not by pipeline.injection.metrics),
and every failure message in full.

Fast (no Spark): a few dozen 32- and 64-pixel renders of tests/injection_fixtures.py's brick.
task.py has no cache of its own; the render's kernel caches (psf.py) are keyed by their arguments,
so a mutant of task.py that asks for another PSF gets another kernel, never a stale one.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.bands import BANDS, REFERENCE_BAND
from pipeline.config import RunConfig
from pipeline.contract import COLUMN_NAMES
from pipeline.injection import task as task_mod
from pipeline.injection.psf import MoffatPSF
from pipeline.injection.render import LensParams, SourcePlacement, render_arc
from pipeline.injection.task import (
    RunContext,
    _convert,
    _is_null,
    failed_record,
    inject_brick_tasks,
    inject_task,
)
from pipeline.survey import maskbits as mb
from tests.injection_fixtures import (
    BRICK_LRGS,
    PSF_FWHM,
    make_bank,
    make_brick,
    make_task,
)

S = 0.262  # DR10 arcsec / pixel (units.DR10_PIXSCALE_ARCSEC), written out
CFG = RunConfig(variant="mut_variant", experiment_id="mut_experiment")
CTX = RunContext(run_id="run-mut", pipeline_version="9.9.mut", config=CFG)

#: the row's columns as docs/architecture.md and contract.py describe them, by hand (g, r, z)
HAND_TASK_COLUMNS = ("task_id", "task_seed", "region_split", "region_id", "brickname", "lrg_id", "ra", "dec",
                     "lens_mag_r", "psfsize_g", "psfsize_r", "psfsize_z", "psfdepth_r", "is_control", "lens_model")
HAND_PARAM_COLUMNS = ("theta_e_arcsec", "lens_e1", "lens_e2", "shear_gamma1", "shear_gamma2", "lens_x_arcsec",
                      "lens_y_arcsec", "cosmos_index", "cosmos_hlr_arcsec", "src_x_arcsec", "src_y_arcsec",
                      "src_phi_rad", "src_dmag", "src_mag_g", "src_mag_r", "src_mag_z")
HAND_OPTIONAL = ("src_mag_f814w", "src_redshift", "src_sed", "src_brightening_mag")
PIXELS = ("image", "invvar", "arc", "maskbits")
DERIVED = ("arc_flux_g", "arc_flux_r", "arc_flux_z", "arc_snr", "arc_snr_footprint", "arc_snr_peak",
           "arc_masked_frac", "bad_pixel_frac")
RENDERED = ("cosmos_hlr_in_stamp_arcsec", "psf_fwhm_g", "psf_fwhm_r", "psf_fwhm_z", "moffat_beta", "magnification")


def test_the_band_table_is_the_one_these_hand_lists_assume():
    assert BANDS == ("g", "r", "z") and REFERENCE_BAND == "r"


@pytest.fixture(scope="module")
def brick():
    return make_brick()


@pytest.fixture(scope="module")
def map_brick():
    """LRG 0 (brick pixel x 70.3, y 80.6 -> centre pixel x 70, y 81) with psfsize map values at its
    centre pixel that differ from the task's psfsize_<band>, a saturated block in r and an invvar
    hole in g inside its 32-pixel window (x 54..85, y 65..96)."""
    b = make_brick()
    b.psfsize["g"][81, 70] = 1.52
    b.psfsize["r"][81, 70] = 1.31
    b.psfsize["z"][81, 70] = 0.0  # DR10 writes 0 without coverage: the task's value is used
    b.maskbits[76:84, 66:74] |= mb.SATUR_R
    b.invvar["g"][90:93, 60:62] = 0.0
    return b


@pytest.fixture(scope="module")
def bank():
    bk = make_bank(n=6)
    bk.hlr_in_stamp_arcsec = np.array([0.11, 0.22, 0.33, 0.44, 0.55, 0.66])
    return bk


# ----------------------------------------------------------------------------- conversions

@pytest.mark.parametrize("value", [None, float("nan"), np.float32("nan"), np.float64("nan"), pd.NA, -float("nan")])
def test_null_values(value):
    assert _is_null(value) is True


@pytest.mark.parametrize("value", [0.0, 0, -0.0, np.float32(0.0), np.int64(0), "", "nan", False, float("inf"),
                                   np.float32("inf"), 1.5])
def test_values_that_are_not_null(value):
    assert _is_null(value) is False


@pytest.mark.parametrize("name,value,expected,kind", [
    ("ra", np.float32(1.5), 1.5, float), ("ra", 2, 2.0, float), ("theta_e_arcsec", "1.25", 1.25, float),
    ("task_seed", np.int64(7), 7, int), ("task_seed", 7.0, 7, int), ("cosmos_index", np.float64(3.0), 3, int),
    ("is_control", np.bool_(True), True, bool), ("is_control", 0, False, bool), ("is_control", 1.0, True, bool),
    ("task_id", 12, "12", str), ("lens_model", "SIE", "SIE", str), ("src_sed", np.str_("Sbc"), "Sbc", str),
])
def test_convert_gives_the_contract_type(name, value, expected, kind):
    out = _convert(name, value)
    assert out == expected and type(out) is kind


@pytest.mark.parametrize("name", ["ra", "task_seed", "is_control", "task_id", "cosmos_index"])
@pytest.mark.parametrize("value", [None, float("nan"), pd.NA, np.float32("nan")])
def test_convert_null_is_none(name, value):
    assert _convert(name, value) is None


@pytest.mark.parametrize("arrow_type,value,expected,kind", [
    (pa.float32(), np.float64(0.25), 0.25, float), (pa.float32(), "3", 3.0, float),
    (pa.int32(), np.float32(4.0), 4, int), (pa.int32(), "5", 5, int),
])
def test_convert_float32_and_int32_columns(monkeypatch, arrow_type, value, expected, kind):
    """A contract column of type float (float32) or int32 converts like double / int64 (none exists
    in this contract; the rule is for the column types the contract may use)."""
    monkeypatch.setitem(task_mod.BY_NAME, "mut_col", SimpleNamespace(type=arrow_type))
    out = _convert("mut_col", value)
    assert out == expected and type(out) is kind


# ----------------------------------------------------------------------------- failed rows

def _full_task(brick) -> dict:
    t = make_task(brick, 0)
    t.update(src_mag_f814w=24.1, src_redshift=1.7, src_sed="Sbc", src_brightening_mag=0.5)
    return t


def test_failed_record_copies_the_task_and_nothing_else(brick):
    t = _full_task(brick)
    r = failed_record(t, RuntimeError("brick could not be loaded: x.fits"), CTX)
    assert list(r) == list(COLUMN_NAMES)
    for name in HAND_TASK_COLUMNS + HAND_PARAM_COLUMNS + HAND_OPTIONAL:
        v = t[name]
        if isinstance(v, float) and math.isnan(v):
            assert r[name] is None, name
        else:
            assert r[name] == v, name
    assert type(r["task_seed"]) is int and type(r["lrg_id"]) is int and type(r["cosmos_index"]) is int
    assert type(r["ra"]) is float and type(r["is_control"]) is bool and type(r["src_sed"]) is str
    assert (r["run_id"], r["pipeline_version"], r["variant"], r["experiment_id"]) == (
        "run-mut", "9.9.mut", "mut_variant", "mut_experiment")
    assert r["cutout_ok"] is False
    assert r["cutout_error"] == "brick could not be loaded: x.fits"
    for name in PIXELS + DERIVED + RENDERED:
        assert r[name] is None, name
    assert r["cosmos_hlr_arcsec"] is None  # NaN in the task


def test_optional_source_columns_absent_are_null_and_is_control_defaults_to_false(brick):
    t = make_task(brick, 0, control=True)
    del t["is_control"]
    r = failed_record(t, "why", CTX)
    assert r["is_control"] is False
    assert all(r[c] is None for c in HAND_OPTIONAL)
    t["is_control"] = None
    assert failed_record(t, "why", CTX)["is_control"] is False
    t["is_control"] = float("nan")
    assert failed_record(t, "why", CTX)["is_control"] is False
    t["is_control"] = True
    assert failed_record(t, "why", CTX)["is_control"] is True


def test_malformed_task_keeps_only_its_names(brick, bank):
    t = make_task(brick, 0)
    t["ra"] = "north"
    r = inject_task(t, brick, bank, CTX)
    assert list(r) == list(COLUMN_NAMES)
    assert r["cutout_ok"] is False
    assert r["cutout_error"] == "malformed task: ValueError: could not convert string to float: 'north'"
    assert (r["task_id"], r["lrg_id"], r["brickname"]) == ("test-0-i", 100, "1500p020")
    assert r["run_id"] == "run-mut" and r["variant"] == "mut_variant" and r["is_control"] is False
    for name in set(HAND_TASK_COLUMNS + HAND_PARAM_COLUMNS) - {"task_id", "lrg_id", "brickname", "is_control"}:
        assert r[name] is None, name
    assert all(r[c] is None for c in PIXELS)


@pytest.mark.parametrize("missing", [("ra",), ("dec",), ("ra", "dec")])
def test_a_task_without_ra_or_dec_is_a_failed_row(brick, bank, missing):
    t = make_task(brick, 0)
    for k in missing:
        t[k] = None
    r = inject_task(t, brick, bank, CTX)
    assert r["cutout_ok"] is False and r["cutout_error"] == "task has no ra/dec"
    assert r["theta_e_arcsec"] == 1.3 and r["image"] is None


def test_missing_parameters_are_listed_in_column_order(brick, bank):
    t = make_task(brick, 0)
    t["src_mag_g"] = None
    t["theta_e_arcsec"] = float("nan")
    t["cosmos_index"] = pd.NA
    r = inject_task(t, brick, bank, CTX)
    assert r["cutout_ok"] is False
    assert r["cutout_error"] == "injection task lacks parameter(s) ['theta_e_arcsec', 'cosmos_index', 'src_mag_g']"


def test_a_bank_index_out_of_range_is_the_banks_problem_without_its_path(brick, bank):
    r = inject_task(make_task(brick, 0, cosmos_index=6), brick, bank, CTX)
    assert r["cutout_ok"] is False
    assert r["cutout_error"] == "index 6 out of range: the bank holds 6 galaxies"
    assert r["lens_x_arcsec"] == 0.02  # a failed row keeps the manifest's value (no LRG offset)


@pytest.mark.parametrize("task_value", [None, float("nan"), 0.0, -1.0])
def test_no_psf_size_anywhere_is_a_failed_row_naming_the_band(map_brick, bank, task_value):
    """z has no map value at the centre pixel (0 there), so the task's psfsize_z is the only source."""
    t = make_task(map_brick, 0)
    t["psfsize_z"] = task_value
    r = inject_task(t, map_brick, bank, CTX)
    assert r["cutout_ok"] is False
    assert r["cutout_error"] == ("no PSF size for band z: no positive psfsize map value at the centre pixel "
                                 "and psfsize_z missing in the manifest")


def test_a_run_without_the_reference_band_fails_after_the_cutout(map_brick, bank):
    ctx = RunContext("run-mut", "9.9.mut", RunConfig(bands=("g", "z")))
    r = inject_task(make_task(map_brick, 0), map_brick, bank, ctx)
    assert r["cutout_ok"] is False
    assert r["cutout_error"] == "arc_snr is defined on the r band, which this run does not render"
    assert r["psfsize_g"] == PSF_FWHM["g"]  # the failed row is the task's: not the map's 1.52
    assert r["arc"] is None and r["psf_fwhm_g"] is None


def test_row_errors_and_unexpected_exceptions_become_failed_rows(brick, bank, monkeypatch):
    from pipeline.errors import RowError

    def row_error(*args, **kwargs):
        raise RowError("the render refused: reason")

    def boom(*args, **kwargs):
        raise KeyError("boom")

    t = make_task(brick, 0)
    monkeypatch.setattr(task_mod, "render_arc", row_error)
    r = inject_task(t, brick, bank, CTX)
    assert r["cutout_ok"] is False and r["cutout_error"] == "the render refused: reason"
    monkeypatch.setattr(task_mod, "render_arc", boom)
    r = inject_task(t, brick, bank, CTX)
    assert r["cutout_ok"] is False and r["cutout_error"] == "unexpected KeyError while rendering: 'boom'"
    assert list(r) == list(COLUMN_NAMES) and r["task_id"] == t["task_id"] and r["image"] is None


# ----------------------------------------------------------------------------- rendered rows

def _window(brick, bands, n):
    """The n x n brick window around LRG 0's centre pixel (x 70, y 81), by hand: x 70 - n/2 .., y 81 - n/2 .."""
    ys, xs = slice(81 - n // 2, 81 - n // 2 + n), slice(70 - n // 2, 70 - n // 2 + n)
    img = np.stack([brick.image[b][ys, xs] for b in bands]).astype(np.float64)
    iv = np.stack([brick.invvar[b][ys, xs] for b in bands]).astype(np.float64)
    return img, iv, brick.maskbits[ys, xs].astype(np.int64)


def _hand_metrics(arc, invvar, maskbits, bands):
    """The documented formulas (metrics.py's docstring), in numpy here: good = invvar > 0 (finite) and
    no BAD_MASKBITS bit; arc_snr over every good pixel; footprint = arc >= 10% of the r peak."""
    good = [np.isfinite(iv) & (iv > 0) & ((maskbits & mb.BAD_MASKBITS) == 0) for iv in invvar]
    out = {"bad_pixel_frac": float(1.0 - np.mean(np.all(good, axis=0)))}
    if arc is None:
        return out
    for b, a in zip(bands, arc):
        out[f"arc_flux_{b}"] = float(a.sum())
    i = list(bands).index("r")
    a, iv, g = arc[i], invvar[i], good[i]
    out["arc_snr"] = float(a[g].sum() / math.sqrt((1.0 / iv[g]).sum()))
    fp = (a >= 0.1 * a.max()) & g
    out["arc_snr_footprint"] = float(a[fp].sum() / math.sqrt((1.0 / iv[fp]).sum()))
    out["arc_snr_peak"] = float((a[fp] * np.sqrt(iv[fp])).max())
    pos = np.clip(a, 0, None)
    out["arc_masked_frac"] = float(pos[~g].sum() / pos.sum())
    return out


def _arc_bound(rendered: np.ndarray) -> float:
    """pipeline/pixels.py's storage bound for an arc: min(2^-15 nmgy, 2^-12 x peak), plus float32."""
    peak = float(np.abs(rendered).max())
    return min(2.0 ** -15, 2.0 ** -12 * peak) + peak * 2.0 ** -23


def _odd_ctx():
    """bands r, g (r not first), a 32-pixel stamp (past the contract's 64 check: the render must
    follow the cutout's size), supersampling 2, beta 2.5: none of them a default."""
    cfg = RunConfig(variant="odd", experiment_id="odd_e", bands=("r", "g"), supersampling=2, moffat_beta=2.5)
    object.__setattr__(cfg, "stamp_size_pix", 32)
    return RunContext("run-odd", "1.0.odd", cfg)


def test_injection_row_from_a_non_default_config(map_brick, bank):
    ctx = _odd_ctx()
    t = make_task(map_brick, 0, cosmos_index=2, theta_e_arcsec=1.1)
    r = inject_task(t, map_brick, bank, ctx)
    assert r["cutout_ok"] is True and r["cutout_error"] is None, r["cutout_error"]
    assert list(r) == list(COLUMN_NAMES)
    assert (r["run_id"], r["pipeline_version"], r["variant"], r["experiment_id"]) == ("run-odd", "1.0.odd", "odd", "odd_e")
    # the PSF: the map's value at the centre pixel (float32) where positive, else the task's
    assert r["psfsize_r"] == float(np.float32(1.31)) and r["psfsize_g"] == float(np.float32(1.52))
    assert r["psfsize_z"] == PSF_FWHM["z"]
    assert (r["psf_fwhm_r"], r["psf_fwhm_g"], r["psf_fwhm_z"], r["moffat_beta"]) == (1.31, 1.52, None, 2.5)
    # the lens centre: manifest jitter + the LRG's offset from its centre pixel (x 70.3 - 70, y 80.6 - 81)
    assert r["lens_x_arcsec"] == pytest.approx(0.02 + 0.3 * S, abs=1e-9)
    assert r["lens_y_arcsec"] == pytest.approx(-0.03 - 0.4 * S, abs=1e-9)
    assert r["cosmos_hlr_arcsec"] == float(bank.hlr_arcsec[2]) and r["cosmos_hlr_in_stamp_arcsec"] == 0.33
    for k in ("lens_x_arcsec", "lens_y_arcsec", "cosmos_hlr_arcsec", "cosmos_hlr_in_stamp_arcsec", "magnification"):
        assert type(r[k]) is float, k
    # the arc: render_arc called here with the row's own parameters and hand fluxes (r = 20, g = 20.5)
    n = 32
    flux_r, flux_g = 10 ** ((22.5 - 20.0) / 2.5), 10 ** ((22.5 - 20.5) / 2.5)
    assert (r["src_mag_r"], r["src_mag_g"]) == (20.0, 20.5)
    lens = LensParams(1.1, 0.08, -0.05, 0.02, -0.01, 0.02 + 0.3 * S, -0.03 - 0.4 * S)
    out = render_arc(bank.images[2], bank.pixel_scale_arcsec, lens, SourcePlacement(0.15, 0.1, 0.7),
                     [flux_r, flux_g], MoffatPSF({"r": 1.31, "g": 1.52}, 2.5), n_pix=n, pixel_scale_arcsec=S,
                     supersampling=2)
    want = out.arcs.astype(np.float64)
    assert r["magnification"] == pytest.approx(out.magnification, rel=1e-9)
    arc = r["arc"].astype(np.float64).reshape(2, n, n)
    # stored arc: |stored - rendered| <= min(2^-15 nmgy, 2^-12 x peak) (pipeline/pixels.py's
    # docstring; here both bands share one grid: 2 x 32 x 32 is not a multiple of 64 x 64) + float32
    assert np.abs(arc - want).max() <= _arc_bound(want)
    img, iv, mask = _window(map_brick, ("r", "g"), n)
    stored_img = r["image"].astype(np.float64).reshape(2, n, n)
    assert np.abs(stored_img - (img + want)).max() <= 2.0 ** -15 + 2.0 ** -19 + 1e-6
    stored_iv = r["invvar"].astype(np.float64).reshape(2, n, n)
    assert np.all((stored_iv == 0) == (iv == 0)) and np.all(np.abs(stored_iv - iv) <= 2.0 ** -11 * iv)
    assert np.array_equal(r["maskbits"].reshape(n, n), mask) and r["maskbits"].dtype == np.int32
    assert r["image"].dtype == np.float32 and r["arc"].dtype == np.float32 and r["invvar"].dtype == np.float32
    hand = _hand_metrics(arc, stored_iv, mask, ("r", "g"))
    assert 0 < hand["bad_pixel_frac"] < 1 and 0 < hand["arc_masked_frac"] < 1
    for k, v in hand.items():
        assert r[k] == pytest.approx(v, rel=1e-12, abs=1e-15), k
    assert r["arc_flux_z"] is None


def test_injection_row_default_config_every_band(map_brick, bank):
    r = inject_task(make_task(map_brick, 0, cosmos_index=4), map_brick, bank, CTX)
    assert r["cutout_ok"] is True and r["cutout_error"] is None, r["cutout_error"]
    assert (r["psf_fwhm_g"], r["psf_fwhm_r"], r["psf_fwhm_z"], r["moffat_beta"]) == (1.52, 1.31, PSF_FWHM["z"], 3.5)
    lens = LensParams(1.3, 0.08, -0.05, 0.02, -0.01, 0.02 + 0.3 * S, -0.03 - 0.4 * S)
    mags = {"g": 20.5, "r": 20.0, "z": 19.7}
    out = render_arc(bank.images[4], bank.pixel_scale_arcsec, lens, SourcePlacement(0.15, 0.1, 0.7),
                     [10 ** ((22.5 - mags[b]) / 2.5) for b in "grz"],
                     MoffatPSF({"g": 1.52, "r": 1.31, "z": PSF_FWHM["z"]}, 3.5), supersampling=4)
    want = out.arcs.astype(np.float64)
    arc = r["arc"].astype(np.float64).reshape(3, 64, 64)
    for b in range(3):  # one grid per band
        assert np.abs(arc[b] - want[b]).max() <= _arc_bound(want[b])
    img, _, mask = _window(map_brick, "grz", 64)
    stored_img = r["image"].astype(np.float64).reshape(3, 64, 64)
    assert np.abs(stored_img - (img + want)).max() <= 2.0 ** -15 + 2.0 ** -19 + 1e-6
    hand = _hand_metrics(arc, r["invvar"].astype(np.float64).reshape(3, 64, 64), mask, "grz")
    for k, v in hand.items():
        assert r[k] == pytest.approx(v, rel=1e-12, abs=1e-15), k
    assert r["magnification"] == pytest.approx(out.magnification, rel=1e-9)


def test_a_bank_without_hlr_in_stamp_gives_null(brick):
    r = inject_task(make_task(brick, 0, cosmos_index=1), brick, make_bank(n=3), CTX)
    assert r["cutout_ok"] is True and r["cosmos_hlr_in_stamp_arcsec"] is None


def test_a_task_with_is_control_null_is_an_injection(brick, bank):
    t = make_task(brick, 0)
    t["is_control"] = None
    r = inject_task(t, brick, bank, CTX)
    assert r["cutout_ok"] is True and r["is_control"] is False and r["arc"] is not None


def test_control_row_is_the_window_with_hand_metrics(map_brick, bank):
    ctx = _odd_ctx()
    r = inject_task(make_task(map_brick, 0, control=True), map_brick, bank, ctx)
    assert r["cutout_ok"] is True and r["cutout_error"] is None and r["is_control"] is True
    n = 32
    img, iv, mask = _window(map_brick, ("r", "g"), n)
    stored = r["image"].astype(np.float64).reshape(2, n, n)
    assert np.abs(stored - img).max() <= 2.0 ** -15 and np.all(np.round(stored * 2**14) == stored * 2**14)
    stored_iv = r["invvar"].astype(np.float64).reshape(2, n, n)
    assert np.all(np.abs(stored_iv - iv) <= 2.0 ** -11 * iv)
    assert np.array_equal(r["maskbits"].reshape(n, n), mask)
    assert r["bad_pixel_frac"] == pytest.approx(_hand_metrics(None, stored_iv, mask, ("r", "g"))["bad_pixel_frac"],
                                                rel=1e-12)
    assert r["psfsize_r"] == float(np.float32(1.31)) and r["psfsize_z"] == PSF_FWHM["z"]
    for name in ("arc",) + DERIVED[:-1] + RENDERED:
        assert r[name] is None, name


def test_brick_tasks_one_row_each_in_order(brick, bank):
    tasks = (make_task(brick, i, control=(i == 2), task_id=f"b{i}") for i in (0, 3, 2, 1))
    rows = inject_brick_tasks(tasks, brick, bank, CTX)
    assert type(rows) is list
    assert [r["task_id"] for r in rows] == ["b0", "b3", "b2", "b1"]
    assert [r["cutout_ok"] for r in rows] == [True, False, True, True]
    assert [r["lrg_id"] for r in rows] == [100, 103, 102, 101]
    assert rows[1]["cutout_error"].startswith("cutout leaves brick 1500p020: needs x -22..41")
    assert inject_brick_tasks([], brick, bank, CTX) == []


def test_lrg_positions_used_by_the_hand_window():
    assert BRICK_LRGS[0][:2] == (70.3, 80.6)
