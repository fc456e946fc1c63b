"""inject_task: one contract row per task, controls untouched, deterministic, failures as rows."""

import numpy as np
import pyarrow as pa
import pytest

from pipeline import physics_checks
from pipeline.config import RunConfig
from pipeline.contract import COLUMN_NAMES, INJECTION_ONLY, arrow_schema
from pipeline.injection import task as task_mod
from pipeline.injection.psf import MoffatPSF
from pipeline.injection.render import LensParams, SourcePlacement, render_arc
from pipeline.injection.task import RunContext, failed_record, inject_brick_tasks, inject_task
from pipeline.units import DR10_PIXSCALE_ARCSEC
from tests.injection_fixtures import make_bank, make_brick, make_task

CTX = RunContext(run_id="run-test", pipeline_version="0.0.test", config=RunConfig())


@pytest.fixture(scope="module")
def brick():
    return make_brick()


@pytest.fixture(scope="module")
def bank():
    return make_bank(n=6)


def _stamp(record, name, shape=(3, 64, 64)):
    return np.asarray(record[name]).reshape(shape)


def test_rows_have_exactly_the_contract_columns_and_fit_the_arrow_schema(brick, bank):
    rows = [inject_task(make_task(brick, 0), brick, bank, CTX),
            inject_task(make_task(brick, 1, control=True), brick, bank, CTX),
            inject_task(make_task(brick, 3), brick, bank, CTX),  # fails: leaves the brick
            failed_record(make_task(brick, 2), "brick could not be loaded", CTX)]
    for r in rows:
        assert tuple(r) == COLUMN_NAMES
    table = pa.Table.from_pylist(rows, schema=arrow_schema())
    assert table.num_rows == 4
    assert table.column("cutout_ok").to_pylist() == [True, True, False, False]


def test_injection_row_fields(brick, bank):
    r = inject_task(make_task(brick, 0), brick, bank, CTX)
    assert r["cutout_ok"] and r["cutout_error"] is None
    assert all(r[c] is not None for c in INJECTION_ONLY), [c for c in INJECTION_ONLY if r[c] is None]
    assert r["image"].dtype == np.float32 and r["arc"].dtype == np.float32 and r["maskbits"].dtype == np.int32
    assert r["image"].shape == (3 * 64 * 64,) and r["maskbits"].shape == (64 * 64,)
    assert r["psf_fwhm_r"] == 1.25 and r["moffat_beta"] == 3.5
    assert r["cosmos_hlr_arcsec"] == pytest.approx(bank.hlr_arcsec[0])
    # the lens sits on the LRG: manifest jitter + the LRG's sub-pixel offset (x = 70.3, y = 80.6)
    assert r["lens_x_arcsec"] == pytest.approx(0.02 + 0.3 * DR10_PIXSCALE_ARCSEC, abs=1e-6)
    assert r["lens_y_arcsec"] == pytest.approx(-0.03 - 0.4 * DR10_PIXSCALE_ARCSEC, abs=1e-6)
    # image = cutout + arc stored on the 2^-14 nmgy grid, the arc on the 2^-18 grid: within
    # 2^-15 + 2^-19 (< one image step) of the raw cutout plus the stored arc
    win = (slice(49, 113), slice(38, 102))
    raw = np.stack([brick.image[b][win] for b in "grz"]).ravel().astype(np.float64)
    step = 2.0 ** -14
    assert np.abs(r["image"] - (raw + r["arc"])).max() <= step
    assert np.all(np.round(r["image"].astype(np.float64) / step) * step == r["image"])
    ctrl = inject_task(make_task(brick, 0, control=True), brick, bank, CTX)
    np.testing.assert_array_equal(r["invvar"], ctrl["invvar"])


def test_control_is_the_cutout_within_the_storage_bound(brick, bank):
    """A control is the brick cutout: image within 2^-15 nmgy (on the 2^-14 grid), invvar within
    2^-11 relative (zeros kept), maskbits bit for bit (pipeline.pixels)."""
    r = inject_task(make_task(brick, 0, control=True), brick, bank, CTX)
    assert r["cutout_ok"] and r["is_control"] and r["lens_model"] == "CONTROL"
    assert all(r[c] is None for c in INJECTION_ONLY)
    win = (slice(49, 113), slice(38, 102))  # LRG 0 at (70.3, 80.6) -> centre pixel (70, 81)
    for i, b in enumerate("grz"):
        raw, stored = brick.image[b][win].astype(np.float64), _stamp(r, "image")[i].astype(np.float64)
        assert np.abs(stored - raw).max() <= 2.0 ** -15
        assert np.all(np.round(stored * 2**14) == stored * 2**14)
        iv_raw, iv = brick.invvar[b][win].astype(np.float64), _stamp(r, "invvar")[i].astype(np.float64)
        assert np.all((iv == 0) == (iv_raw == 0))
        assert np.all(np.abs(iv - iv_raw) <= 2.0 ** -11 * iv_raw)
    assert _stamp(r, "maskbits", (64, 64)).tobytes() == brick.maskbits[win].astype(np.int32).tobytes()


def test_same_task_gives_bit_identical_record(brick, bank):
    t = make_task(brick, 2, cosmos_index=4, theta_e_arcsec=1.9)
    a = inject_task(t, brick, bank, CTX)
    inject_task(make_task(brick, 1, cosmos_index=2), brick, bank, CTX)  # something else in between
    b = inject_task(dict(t), brick, bank, CTX)
    for k in COLUMN_NAMES:
        if isinstance(a[k], np.ndarray):
            assert a[k].tobytes() == b[k].tobytes(), k
        else:
            assert a[k] == b[k], k


def test_cutout_leaving_the_brick_is_a_failed_row_not_an_exception(brick, bank):
    r = inject_task(make_task(brick, 3), brick, bank, CTX)
    assert r["cutout_ok"] is False
    assert "leaves brick 1500p020" in r["cutout_error"]
    assert r["image"] is None and r["arc"] is None and r["magnification"] is None
    assert r["theta_e_arcsec"] == 1.3  # the task's parameters stay, to reproduce the failure


def test_unexpected_exception_in_rendering_becomes_a_failed_row(brick, bank, monkeypatch):
    def boom(*args, **kwargs):
        raise ValueError("synthetic failure")

    monkeypatch.setattr(task_mod, "render_arc", boom)
    r = inject_task(make_task(brick, 0), brick, bank, CTX)
    assert r["cutout_ok"] is False and "ValueError" in r["cutout_error"] and "synthetic failure" in r["cutout_error"]


def test_bad_cosmos_index_and_missing_parameters_are_failed_rows(brick, bank):
    r = inject_task(make_task(brick, 0, cosmos_index=99), brick, bank, CTX)
    assert r["cutout_ok"] is False and "out of range" in r["cutout_error"]
    t = make_task(brick, 0)
    t["theta_e_arcsec"] = float("nan")
    r = inject_task(t, brick, bank, CTX)
    assert r["cutout_ok"] is False and "theta_e_arcsec" in r["cutout_error"]


def test_failed_record_for_an_unloadable_brick(brick):
    t = make_task(brick, 1)
    r = failed_record(t, "cannot read legacysurvey-1500p020-image-r.fits.fz", CTX)
    assert r["cutout_ok"] is False and r["task_id"] == t["task_id"] and r["run_id"] == "run-test"
    assert r["variant"] == CTX.config.variant and r["image"] is None


@pytest.mark.parametrize("lrg,theta_e,sx,sy,idx", [(0, 0.6, 0.1, 0.0, 1), (1, 1.4, -0.3, 0.4, 2),
                                                   (2, 2.4, 0.8, -0.9, 5), (0, 1.0, 0.0, 0.05, 3)])
def test_arc_flux_consistent_with_source_flux_times_magnification(brick, bank, lrg, theta_e, sx, sy, idx):
    r = inject_task(make_task(brick, lrg, theta_e_arcsec=theta_e, src_x_arcsec=sx, src_y_arcsec=sy,
                              cosmos_index=idx), brick, bank, CTX)
    assert r["cutout_ok"], r["cutout_error"]
    assert physics_checks.magnification_is_physical(r["magnification"])
    for b in "grz":
        ratio = physics_checks.arc_flux_ratio(r[f"arc_flux_{b}"], r[f"src_mag_{b}"], r["magnification"])
        assert physics_checks.flux_is_consistent(ratio), (b, ratio)
    assert r["arc_snr"] > 1 and r["arc_snr_peak"] > 0 and 0 <= r["arc_masked_frac"] <= 1


def test_row_parameters_alone_re_render_the_arc(brick, bank):
    """Every parameter needed to re-render the arc from the bank is on the row."""
    r = inject_task(make_task(brick, 1, cosmos_index=2), brick, bank, CTX)
    lens = LensParams(r["theta_e_arcsec"], r["lens_e1"], r["lens_e2"], r["shear_gamma1"], r["shear_gamma2"],
                      r["lens_x_arcsec"], r["lens_y_arcsec"])
    src = SourcePlacement(r["src_x_arcsec"], r["src_y_arcsec"], r["src_phi_rad"])
    flux = [10 ** ((22.5 - r[f"src_mag_{b}"]) / 2.5) for b in "grz"]
    again = render_arc(bank.images[r["cosmos_index"]], bank.pixel_scale_arcsec, lens, src, flux,
                       MoffatPSF.from_row(r, "grz"))
    # the row's arc is stored on the 2^-18 nmgy grid (pipeline.pixels): within half a step
    from pipeline.pixels import step_of_stored_arc

    stored = r["arc"].reshape(3, -1)
    for band_again, band_stored in zip(again.arcs.reshape(3, -1), stored):  # within half the band's stored step
        np.testing.assert_allclose(band_again, band_stored, rtol=1e-5, atol=step_of_stored_arc(band_stored) / 2)


def test_masked_arc_pixels_lower_snr_and_set_masked_frac(bank):
    from pipeline.survey import maskbits as mb

    brick = make_brick()
    clean = inject_task(make_task(brick, 0), brick, bank, CTX)
    brick.maskbits[70:90, 60:80] |= mb.SATUR_R  # covers the LRG's centre and part of the arc
    masked = inject_task(make_task(brick, 0), brick, bank, CTX)
    assert masked["arc_masked_frac"] > 0.05 and clean["arc_masked_frac"] == 0.0
    assert masked["arc_snr"] < clean["arc_snr"]
    assert masked["bad_pixel_frac"] == pytest.approx(400 / 4096)


def test_inject_brick_tasks_keeps_order_and_count(brick, bank):
    tasks = [make_task(brick, i, control=(i == 1), task_id=f"t{i}") for i in range(4)]
    rows = inject_brick_tasks(tasks, brick, bank, CTX)
    assert [r["task_id"] for r in rows] == ["t0", "t1", "t2", "t3"]
    assert [r["cutout_ok"] for r in rows] == [True, True, True, False]


def test_psf_falls_back_to_the_task_when_the_brick_has_no_psfsize_map(bank):
    brick = make_brick(psfsize_maps=False)
    t = make_task(brick, 0)
    t["psfsize_r"] = 1.337
    r = inject_task(t, brick, bank, CTX)
    assert r["psf_fwhm_r"] == 1.34 and r["psfsize_r"] == 1.337


def test_gallery_from_contract_rows_on_disk(tmp_path, brick, bank):
    import pyarrow.parquet as pq

    from pipeline.gallery import read_rows, render_gallery

    rows = [inject_task(make_task(brick, i, control=(i == 1), task_id=f"g{i}"), brick, bank, CTX) for i in range(4)]
    part = tmp_path / "phase4c" / "region_split=train"
    part.mkdir(parents=True)
    # pyarrow's Parquet writer refuses null fixed-size-list entries (the controls' arc), so the
    # pixel columns go to disk as variable-size lists, as the Spark step writes them
    schema = pa.schema([pa.field(f.name, pa.list_(f.type.value_type), metadata=f.metadata)
                        if pa.types.is_fixed_size_list(f.type) else f for f in arrow_schema()])
    table = pa.Table.from_pylist(rows, schema=schema).drop(["region_split"])
    pq.write_table(table, part / "part-0.parquet")
    back = read_rows(str(tmp_path / "phase4c"), n=3)
    assert [r["task_id"] for r in back] == ["g0", "g2", "g1"]  # injections first, then a control
    out = render_gallery(back, str(tmp_path / "g.png"), ncols=2)
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.endswith("g.png")
