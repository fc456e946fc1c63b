"""Reliability (issue #8) through the real Spark step (spark-submit-free `python -m emr_steps.inject`
on local[2], the tiny 3-brick survey of tests/steps_fixtures.py):

* LRGs outside every brick and at a brick corner become cutout_ok=false rows with a reason
  naming the LRG's brick and pixels; every other row is exactly the baseline run's; the job
  completes (exit 0, _dhs_dataset.json written, one row per task);
* a broken manifest or run config stops the step entry with exit 2 before any output;
* the step's log and metadata carry no credentials, even with AWS keys in its environment.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest

from pipeline.dataset import read_metadata
from tests.steps_fixtures import PYTHON, REPO, read_summary, step_env
from tests.test_no_secrets import PATTERNS

pytest_plugins = ["tests.steps_fixtures"]  # `tiny` and `baseline`, shared with test_steps_*.py

pytestmark = pytest.mark.spark

#: Fake credentials put in the step's environment (built at run time so that the repository scan
#: of test_no_secrets.py does not see a key-shaped string in this file).
FAKE_KEY_ID = "AKIA" + "DHSRELIABILITY01"
FAKE_SECRET = "dhsFakeSecret/" + "x" * 26


def _run_step(args, *, env_extra=None, timeout=400):
    import subprocess

    env = step_env() | (env_extra or {})
    return subprocess.run([PYTHON, "-m", "emr_steps.inject", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _copy_manifest(tiny, dest, df):
    dest.mkdir(parents=True)
    shutil.copy(tiny.manifest / "manifest.json", dest / "manifest.json")  # counts per split unchanged
    df.to_parquet(dest / "manifest.parquet", index=False)
    return dest


@pytest.fixture(scope="module")
def off_brick_run(tiny, tmp_path_factory):
    """The tiny manifest with three LRGs moved: one 10 deg away from every brick, one onto a brick
    that is not in the coadd cache, one at a brick's lower-left corner; run with AWS keys in env."""
    from pipeline.survey.coadds import load_brick

    base = tmp_path_factory.mktemp("rel_offbrick")
    df = pd.read_parquet(tiny.manifest / "manifest.parquet")
    b0 = tiny.bricks[0]
    in_b0 = df.index[df["brickname"] == b0]
    far, corner = in_b0[0], in_b0[1]
    nowhere = df.index[df["brickname"] == tiny.bricks[1]][0]
    wcs = load_brick(str(tiny.coadd_prefix), b0).wcs
    ra, dec = wcs.all_pix2world(np.array([2.3]), np.array([3.4]), 0)
    df.loc[far, ["ra", "dec"]] = [df.loc[far, "ra"] + 10.0, df.loc[far, "dec"] + 10.0]
    df.loc[corner, ["ra", "dec"]] = [float(ra[0]), float(dec[0])]
    df.loc[nowhere, "brickname"] = "3599p899"
    moved = {"far": df.loc[far, "task_id"], "corner": df.loc[corner, "task_id"], "nowhere": df.loc[nowhere, "task_id"]}
    manifest = _copy_manifest(tiny, base / "manifest", df)
    out = base / "D"
    proc = _run_step(["--manifest-uri", manifest, "--coadd-cache-prefix", tiny.coadd_prefix, "--cosmos-bank-h5", tiny.bank,
                      "--output-prefix", out, "--num-partitions", 2],
                     env_extra={"AWS_ACCESS_KEY_ID": FAKE_KEY_ID, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET})
    return {"proc": proc, "out": out, "moved": moved, "b0": b0, "manifest": df}


def test_lrgs_outside_every_brick_and_at_a_corner_are_recorded_and_the_job_goes_on(tiny, baseline, off_brick_run):
    proc, out, moved = off_brick_run["proc"], off_brick_run["out"], off_brick_run["moved"]
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = read_summary(proc.stdout)
    assert summary["rows"] == tiny.n_tasks
    assert read_metadata(str(out / "phase4c"))["rows"] == tiny.n_tasks  # marked complete
    rows = {r["task_id"]: r for r in pads.dataset(str(out / "phase4c"), format="parquet", partitioning="hive")
            .to_table().to_pylist()}
    assert sorted(rows) == sorted(off_brick_run["manifest"]["task_id"])  # one row per task, none lost

    b0 = off_brick_run["b0"]
    far, corner, nowhere = (rows[moved[k]] for k in ("far", "corner", "nowhere"))
    for r in (far, corner, nowhere):
        assert r["cutout_ok"] is False and r["image"] is None and r["arc"] is None and r["invvar"] is None
    assert re.search(rf"cutout leaves brick {b0}: needs x -?\d+\.\.-?\d+, y -?\d+\.\.-?\d+ but the brick has "
                     rf"x 0\.\.255, y 0\.\.255 \(LRG at pixel", far["cutout_error"]), far["cutout_error"]
    assert (f"cutout leaves brick {b0}: needs x -30..33, y -29..34 but the brick has x 0..255, y 0..255 "
            f"(LRG at pixel x=2.3, y=3.4)") == corner["cutout_error"]
    assert nowhere["cutout_error"].startswith("brick 3599p899 could not be loaded: ")
    assert "legacysurvey-3599p899-image-g.fits.fz: no such file" in nowhere["cutout_error"]

    # every other row is the baseline's, pixel for pixel
    base = {r["task_id"]: r for r in pads.dataset(str(baseline["data"]), format="parquet", partitioning="hive")
            .to_table(columns=["task_id", "cutout_ok", "cutout_error", "image", "arc"]).to_pylist()}
    for task_id, r in rows.items():
        if task_id in moved.values():
            continue
        b = base[task_id]
        assert (r["cutout_ok"], r["cutout_error"], r["image"], r["arc"]) == \
            (b["cutout_ok"], b["cutout_error"], b["image"], b["arc"]), task_id


def test_step_log_and_metadata_hold_no_credentials(off_brick_run):
    """The step ran with AWS keys in its environment: neither its log nor what it wrote shows them."""
    proc, out = off_brick_run["proc"], off_brick_run["out"]
    assert proc.returncode == 0
    assert PATTERNS["AWS access key id"].search(FAKE_KEY_ID)  # the scan below would see a leaked key
    texts = {"stdout": proc.stdout, "stderr": proc.stderr}
    assert len(proc.stderr) > 100  # the log is really there (Spark + our INFO lines)
    for path in out.rglob("*"):
        if path.is_file() and path.suffix != ".parquet" and not path.name.endswith(".crc"):
            texts[str(path)] = path.read_text(errors="ignore")
    assert any(name.endswith("_dhs_dataset.json") for name in texts)
    for name, text in texts.items():
        assert FAKE_KEY_ID not in text and FAKE_SECRET not in text, name
        for what, pattern in PATTERNS.items():
            assert not pattern.search(text), f"{name}: {what}"


def _broken(tiny, dest, defect):
    df = pd.read_parquet(tiny.manifest / "manifest.parquet")
    if defect == "duplicate_task_ids":
        df.loc[3, "task_id"] = df.loc[1, "task_id"]
    elif defect == "missing_column":
        df = df.drop(columns=["theta_e_arcsec"])
    else:
        df = df.iloc[:0]
    return _copy_manifest(tiny, dest, df)


@pytest.mark.parametrize("defect,expect", [
    ("duplicate_task_ids", "manifest.parquet: task_id: {n} tasks but {m} distinct non-null task ids"),
    ("missing_column", "manifest.parquet: theta_e_arcsec: manifest lacks column(s) ['theta_e_arcsec']"),
    ("zero_rows", "manifest.parquet: manifest has no tasks"),
])
def test_step_entry_refuses_a_broken_manifest_before_any_output(tiny, tmp_path, defect, expect):
    manifest = _broken(tiny, tmp_path / "manifest", defect)
    out = tmp_path / "D"
    proc = _run_step(["--manifest-uri", manifest, "--coadd-cache-prefix", tiny.coadd_prefix, "--cosmos-bank-h5", tiny.bank,
                      "--output-prefix", out])
    expect = expect.format(n=tiny.n_tasks, m=tiny.n_tasks - 1)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"emr_steps.inject: error: {manifest}/{expect}" in proc.stderr, proc.stderr[-3000:]
    assert not out.exists()


@pytest.mark.parametrize("yaml_text,expect", [
    ("theta_e_min_arcsec: 2.6\ntheta_e_max_arcsec: 2.5\n", "theta_e_min_arcsec: need 0 < min <= max, got 2.6 > 2.5"),
    ("bands: [g, r, i]\n", "bands: unknown band(s) ['i']; allowed: g,r,z"),
])
def test_step_entry_refuses_a_bad_run_config_before_any_output(tiny, tmp_path, yaml_text, expect):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml_text)
    out = tmp_path / "D"
    proc = _run_step(["--manifest-uri", tiny.manifest, "--coadd-cache-prefix", tiny.coadd_prefix, "--cosmos-bank-h5",
                      tiny.bank, "--output-prefix", out, "--run-config", cfg])
    assert proc.returncode == 2 and f"emr_steps.inject: error: {cfg}: {expect}" in proc.stderr, proc.stderr[-3000:]
    assert not out.exists()


def test_corrupt_file_and_missing_band_give_failed_rows_naming_the_file(tiny, tmp_path):
    """The executor body (in process): one brick with a truncated .fits.fz, one without its z-band
    invvar. Their tasks are recorded failed with the file and the problem; the third brick renders."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from emr_steps.inject import inject_partition
    from pipeline import __version__
    from pipeline.config import load_run_config

    prefix = tmp_path / "coadd"
    shutil.copytree(tiny.coadd_prefix, prefix)
    b_trunc, b_noband, b_ok = tiny.bricks[:3]
    trunc = prefix / b_trunc / f"legacysurvey-{b_trunc}-image-r.fits.fz"
    raw = trunc.read_bytes()
    trunc.write_bytes(raw[: len(raw) // 2])  # a copy cut short
    gone = prefix / b_noband / f"legacysurvey-{b_noband}-invvar-z.fits.fz"
    gone.unlink()
    settings = {"run_config": load_run_config("demo").to_dict(), "run_id": "4c-reliability",
                "pipeline_version": __version__, "bank_uri": str(tiny.bank), "coadd_prefix": str(prefix)}
    tasks = pq.read_table(tiny.manifest / "manifest.parquet").sort_by([("brickname", "ascending"),
                                                                         ("task_id", "ascending")])
    rows = pa.Table.from_batches(list(inject_partition(tasks.to_batches(max_chunksize=5), settings=settings))).to_pylist()
    assert sorted(r["task_id"] for r in rows) == sorted(tasks.column("task_id").to_pylist())
    by_brick = {b: [r for r in rows if r["brickname"] == b] for b in tiny.bricks}
    assert all(by_brick[b] for b in (b_trunc, b_noband, b_ok))
    for r in by_brick[b_trunc]:
        assert r["cutout_ok"] is False and r["image"] is None
        assert r["cutout_error"].startswith(f"brick {b_trunc} could not be loaded: {trunc}: corrupt or truncated FITS")
    for r in by_brick[b_noband]:
        assert r["cutout_ok"] is False and r["cutout_error"] == f"brick {b_noband} could not be loaded: {gone}: no such file"
    assert any(r["cutout_ok"] for r in by_brick[b_ok])
