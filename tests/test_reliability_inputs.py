"""Reliability (issue #8), bad inputs that need no Spark: what the user sees at the command line
(exit 2, one line naming the file and the problem, nothing written) and the rows recorded for
LRGs whose stamp cannot be cut. The Spark-path versions are in test_reliability_steps.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.bank.store import write_bank
from dhs_cli.main import main
from pipeline.config import RunConfig, check_output_prefix
from pipeline.errors import InputError
from pipeline.injection.task import RunContext, inject_brick_tasks
from pipeline.manifest import MANIFEST_COLUMNS, build_manifest, write_manifest
from pipeline.survey.lrg_table import read_lrg_table, write_lrg_table
from tests.injection_fixtures import BRICK_SIZE_PIX, make_bank, make_brick, make_task

CTX = RunContext(run_id="run-reliability", pipeline_version="0.0.test", config=RunConfig())


def _lrg_table(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({
        "lrg_id": np.arange(1, n + 1, dtype=np.int64), "brickname": ["1500p020"] * n,
        "ra": 150.0 + rng.uniform(-0.5, 0.5, n), "dec": 2.0 + rng.uniform(-0.5, 0.5, n),
        "mag_r": rng.uniform(18, 20, n), "psfsize_g": np.full(n, 1.5), "psfsize_r": np.full(n, 1.3),
        "psfsize_z": np.full(n, 1.2), "psfdepth_r": np.full(n, 24.0),
    })


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory):
    """An LRG table, a 4-galaxy bank and a manifest on disk (no pixels needed for these tests)."""
    root = tmp_path_factory.mktemp("rel_inputs")
    lrg = _lrg_table()
    write_lrg_table(lrg, str(root / "lrg.parquet"))
    bank = make_bank(4)
    write_bank(root / "bank.h5", bank.images, {"ident": np.array(list("abcd")), "flux_nmgy": bank.flux_nmgy,
               "mag_f814w": np.full(4, 23.5),  # the physical source model (demo default) needs it
               "hlr_arcsec": bank.hlr_arcsec}, pixel_scale_arcsec=bank.pixel_scale_arcsec,
               hlr_filter_arcsec=(0.1, 1.0), created_by="test")
    cfg = RunConfig()
    df = build_manifest(lrg, cfg, 4, bank.hlr_arcsec)
    write_manifest(df, str(root / "manifest"), cfg, {})
    return root, df


def _dhs(argv, capsys):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.err


# ------------------------------------------------------------------ LRG outside every brick, at a corner


def test_lrg_outside_every_brick_is_a_failed_row_naming_it_and_the_job_goes_on():
    """inject_brick_tasks (what each Spark partition runs per brick): the LRG whose position is in
    no brick gets cutout_ok=false with the brick and its pixel position; its neighbours render."""
    brick, bank = make_brick(), make_bank(4)
    far = make_task(brick, 0) | {"task_id": "far-i0", "lrg_id": 900, "ra": 160.0, "dec": 12.0}
    tasks = [make_task(brick, 0), far, make_task(brick, 1, control=True)]
    rows = inject_brick_tasks(tasks, brick, bank, CTX)
    assert [r["task_id"] for r in rows] == [t["task_id"] for t in tasks]  # nothing lost, order kept
    assert [r["cutout_ok"] for r in rows] == [True, False, True]
    err = rows[1]["cutout_error"]
    assert "cutout leaves brick 1500p020" in err and "the brick has x 0..199, y 0..199" in err
    assert rows[1]["lrg_id"] == 900 and rows[1]["image"] is None and rows[1]["arc"] is None
    assert rows[1]["theta_e_arcsec"] == 1.3  # the parameters stay, to reproduce the failure


@pytest.mark.parametrize("corner,x,y,x_range,y_range", [
    ("lower-left", 3.2, 4.4, "x -29..34", "y -28..35"),
    ("upper-right", 197.6, 196.1, "x 166..229", "y 164..227"),
])
def test_lrg_at_a_brick_corner_is_a_failed_row_with_the_pixel_ranges(corner, x, y, x_range, y_range):
    """Policy (pipeline/injection/cutout.py): a stamp partly off the brick is never padded; the
    row records the brick, the pixel ranges it needed and the ones the brick has."""
    brick, bank = make_brick(), make_bank(4)
    ra, dec = brick.wcs.all_pix2world(np.array([x]), np.array([y]), 0)
    task = make_task(brick, 0) | {"task_id": f"corner-{corner}", "ra": float(ra[0]), "dec": float(dec[0])}
    ctrl = task | {"task_id": f"corner-{corner}-c", "is_control": True}
    for row in inject_brick_tasks([task, ctrl], brick, bank, CTX):
        assert row["cutout_ok"] is False and row["image"] is None and row["invvar"] is None
        assert f"needs {x_range}, {y_range} but the brick has x 0..{BRICK_SIZE_PIX - 1}, y 0..{BRICK_SIZE_PIX - 1}" \
            in row["cutout_error"], row["cutout_error"]
        assert f"(LRG at pixel x={x:.1f}, y={y:.1f})" in row["cutout_error"]


# ------------------------------------------------------------------ manifest defects through `dhs inject`


def _broken_manifest(root, df, defect):
    from pathlib import Path

    d = Path(root) / f"manifest_{defect}"
    write_manifest(df, str(d), RunConfig(), {})  # a good manifest.json beside a broken parquet
    path = d / "manifest.parquet"
    if defect == "duplicate_task_ids":
        bad = df.copy()
        bad.loc[5, "task_id"] = bad.loc[2, "task_id"]
        bad.to_parquet(path)
        expect = f"{path}: task_id: not unique: 1 task id(s) appear more than once, e.g. '{df.loc[2, 'task_id']}'"
    elif defect == "missing_column":
        df.drop(columns=["theta_e_arcsec"]).to_parquet(path)
        expect = f"{path}: theta_e_arcsec: manifest lacks column(s) ['theta_e_arcsec']"
    else:
        df.iloc[:0].to_parquet(path)
        expect = f"{path}: manifest has no tasks (0 rows)"
    return d, expect


@pytest.mark.parametrize("defect", ["duplicate_task_ids", "missing_column", "zero_rows"])
def test_dhs_inject_refuses_a_broken_manifest_before_any_output(small_inputs, tmp_path, capsys, defect):
    root, df = small_inputs
    mdir, expect = _broken_manifest(tmp_path, df, defect)
    out = tmp_path / "D"
    code, err = _dhs(["inject", "--manifest-uri", mdir, "--coadd-cache-prefix", tmp_path, "--cosmos-bank-h5", root / "bank.h5",
                      "--output-prefix", out], capsys)
    assert code == 2
    assert f"dhs inject: error: {expect}" in err, err
    assert not out.exists()


# ------------------------------------------------------------------ run config through the CLI


@pytest.mark.parametrize("yaml_text,expect", [
    ("theta_e_min_arcsec: 2.6\ntheta_e_max_arcsec: 2.5\n", "theta_e_min_arcsec: need 0 < min <= max, got 2.6 > 2.5"),
    ("bands: [g, r, i]\n", "bands: unknown band(s) ['i']; allowed: g,r,z"),
    ("bands: g,r,y\n", "bands: unknown band(s) ['y']; allowed: g,r,z"),
])
@pytest.mark.parametrize("command", ["manifest", "inject"])
def test_bad_run_config_stops_the_cli_with_exit_2_naming_file_and_key(small_inputs, tmp_path, capsys, yaml_text,
                                                                       expect, command):
    root, _ = small_inputs
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml_text)
    out = tmp_path / "out"
    if command == "manifest":
        argv = ["manifest", "--lrg", root / "lrg.parquet", "--cosmos-bank-h5", root / "bank.h5", "--run-config", cfg, "--out", out]
    else:
        argv = ["inject", "--manifest-uri", root / "manifest", "--coadd-cache-prefix", tmp_path, "--cosmos-bank-h5", root / "bank.h5",
                "--output-prefix", out, "--run-config", cfg]
    code, err = _dhs(argv, capsys)
    assert code == 2
    assert f"dhs {command}: error: {cfg}: {expect}" in err, err
    assert not out.exists()


def test_unknown_band_on_the_command_line(small_inputs, tmp_path, capsys):
    root, _ = small_inputs
    code, err = _dhs(["inject", "--manifest-uri", root / "manifest", "--coadd-cache-prefix", tmp_path, "--cosmos-bank-h5",
                      root / "bank.h5", "--output-prefix", tmp_path / "D", "--bands", "grz"], capsys)
    assert code == 2 and "dhs inject: error: --bands: unknown band(s) ['grz'] (write bands comma-separated" in err
    assert not (tmp_path / "D").exists()


# ------------------------------------------------------------------ one LRG-table check


def test_manifest_and_lrg_reader_refuse_a_bad_table_with_the_same_message(tmp_path):
    """pipeline.manifest uses the survey's validate_lrg_table: one contract, one message."""
    lrg = _lrg_table()
    lrg.loc[3, "mag_r"] = np.nan
    path = tmp_path / "lrg.parquet"
    lrg.to_parquet(path)
    with pytest.raises(InputError) as from_reader:
        read_lrg_table(str(path))
    with pytest.raises(InputError) as from_manifest:
        build_manifest(lrg, RunConfig(), 4, source=str(path))
    assert str(from_reader.value) == str(from_manifest.value) == f"{path}: mag_r: 1 non-finite value(s), e.g. at lrg_id 4"
    with pytest.raises(InputError, match="lrg_id: not unique: 1 duplicate id"):
        build_manifest(pd.concat([lrg.iloc[:4], lrg.iloc[:1]]), RunConfig(), 4)


# ------------------------------------------------------------------ output roots


def test_output_prefix_check_matches_whole_path_components(tmp_path):
    roots = [str(tmp_path / "runs"), "s3://darkhaloscope/phase4c"]
    assert check_output_prefix(str(tmp_path / "runs" / "D"), roots=roots) == str(tmp_path / "runs" / "D")
    assert check_output_prefix("s3a://darkhaloscope/phase4c/v5/", roots=roots) == "s3://darkhaloscope/phase4c/v5"
    for outside in (str(tmp_path / "runs-old"), str(tmp_path / "runs" / ".." / "elsewhere"),
                    "s3://darkhaloscope/phase4c-old/D", "s3://otherbucket/phase4c/D", "/tmp"):
        with pytest.raises(InputError, match="outside the allowed output roots"):
            check_output_prefix(outside, source="--output", roots=roots)
    assert check_output_prefix("/anywhere", roots=[]) == "/anywhere"  # no roots configured: no limit


@pytest.mark.parametrize("argv,flag", [
    (["manifest", "--lrg", "{root}/lrg.parquet", "--cosmos-bank-h5", "{root}/bank.h5", "--out", "{out}"], "--out"),
    (["inject", "--manifest-uri", "{root}/manifest", "--coadd-cache-prefix", "{root}", "--cosmos-bank-h5", "{root}/bank.h5",
      "--output-prefix", "{out}"], "--output-prefix"),
    (["compact", "--output-prefix", "{out}"], "--output-prefix"),
    (["survey", "synth", "--out", "{out}", "--n-bricks", "1"], "--out"),
    (["bank", "synth", "--out", "{out}", "--n", "3"], "--out"),
    (["validate", "{out}", "--manifest-uri", "{root}/manifest"], "DATASET"),
    (["promote", "{out}", "--validation", "{root}/v"], "DATASET"),
])
def test_commands_that_write_refuse_outputs_outside_the_allowed_roots(small_inputs, tmp_path, capsys, monkeypatch,
                                                                      argv, flag):
    root, _ = small_inputs
    allowed = tmp_path / "allowed"
    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", f"{allowed},s3://darkhaloscope/")
    out = tmp_path / "allowed" / ".." / "stray"
    code, err = _dhs([a.format(root=root, out=out) for a in argv], capsys)
    assert code == 2
    assert f"error: {flag}: '{out}' is outside the allowed output roots ['{allowed}', 's3://darkhaloscope/']" in err, err
    assert not (tmp_path / "stray").exists()


def test_manifest_inside_the_allowed_root_is_written(small_inputs, tmp_path, capsys, monkeypatch):
    root, df = small_inputs
    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", str(tmp_path))
    code, _ = _dhs(["manifest", "--lrg", root / "lrg.parquet", "--cosmos-bank-h5", root / "bank.h5", "--out", tmp_path / "m"],
                   capsys)
    assert code == 0
    written = pd.read_parquet(tmp_path / "m" / "manifest.parquet")
    assert list(written.columns) == list(MANIFEST_COLUMNS) and len(written) == len(df)


# ------------------------------------------------------------------ bad pixels, bad bank


@pytest.mark.parametrize("band,plane,value,what", [
    ("g", "invvar", -1.0, "NaN/infinite/negative invvar"),
    ("r", "invvar", np.nan, "NaN/infinite/negative invvar"),
    ("z", "image", np.nan, "non-finite image"),
])
def test_nan_or_negative_invvar_in_the_stamp_is_a_failed_row_naming_band_and_pixels(band, plane, value, what):
    """The coadd reader keeps such pixels (they may lie outside every stamp); the stamp that
    holds one is recorded failed, never rendered on garbage. The next task still renders."""
    brick, bank = make_brick(), make_bank(4)
    getattr(brick, plane)[band][80, 70] = value  # inside the stamp of LRG 0 (x 38..101, y 49..112)
    rows = inject_brick_tasks([make_task(brick, 0), make_task(brick, 1)], brick, bank, CTX)
    assert rows[0]["cutout_ok"] is False and rows[0]["image"] is None
    assert rows[0]["cutout_error"] == f"brick 1500p020 band {band}: 1 {what} pixel(s) in the cutout (x 38..101, y 49..112)"
    assert rows[1]["cutout_ok"] is True


@pytest.mark.parametrize("kind,expect", [
    ("text", "not an HDF5 COSMOS bank"),
    ("no_attributes", "bank is missing attribute hlr_filter_arcsec"),
    ("no_catalog", "bank needs /images and /catalog/hlr_arcsec"),
])
def test_dhs_manifest_refuses_a_bank_of_the_wrong_format(small_inputs, tmp_path, capsys, kind, expect):
    import h5py

    root, _ = small_inputs
    bank = tmp_path / "bank.h5"
    if kind == "text":
        bank.write_text("not hdf5")
    else:
        with h5py.File(bank, "w") as fh:
            fh.create_dataset("images", data=np.zeros((2, 4, 4), np.float32))
            if kind == "no_attributes":
                fh.create_dataset("catalog/hlr_arcsec", data=np.array([0.3, 0.4]))
    code, err = _dhs(["manifest", "--lrg", root / "lrg.parquet", "--cosmos-bank-h5", bank, "--out", tmp_path / "m"], capsys)
    assert code == 2 and f"dhs manifest: error: {bank}: {expect}" in err, err
    assert not (tmp_path / "m").exists()
