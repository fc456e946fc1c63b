"""The Spark inject step's rows equal the in-process `inject_task` rows for the same tasks (issue 20),
within the stored quantization (pipeline/pixels.py): image one 2^-14 nmgy step, arc one step of
its per-band grid (11 bits below the band's peak), invvar 10 significant bits, maskbits exact;
scalars derived from pixels to 1e-4 relative; every other column exactly.

The Spark rows are the session's `baseline` spark-submit of the step (tests/steps_fixtures.py,
shared with test_steps_inject.py); the in-process rows are rendered here from the same manifest
tasks, the brick files read by pipeline.survey.coadds.load_brick, and the same bank.
"""

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from pipeline.contract import INJECTION_ONLY, PIXEL_COLUMNS, SCALAR_COLUMNS
from pipeline.dataset import read_metadata

pytest_plugins = ["tests.steps_fixtures"]
pytestmark = pytest.mark.spark

#: columns that name the run, not the row's content
RUN_COLUMNS = {"run_id", "pipeline_version"}
#: computed from the stored pixels (pipeline.injection.metrics.pixel_quantities)
PIXEL_DERIVED = {"arc_snr", "arc_snr_footprint", "arc_snr_peak", "arc_masked_frac", "bad_pixel_frac",
                 "arc_flux_g", "arc_flux_r", "arc_flux_z"}


@pytest.fixture(scope="module")
def pairs(tiny, baseline):
    from pipeline.bank.store import open_bank
    from pipeline.config import RunConfig
    from pipeline.injection.task import RunContext, inject_task
    from pipeline.survey.coadds import load_brick

    spark_rows = {r["task_id"]: r for r in pads.dataset(str(baseline["data"]), format="parquet",
                                                        partitioning="hive").to_table().to_pylist()}
    meta = read_metadata(str(baseline["data"]))
    cfg = RunConfig(**meta["run_config"])
    tasks = pq.read_table(tiny.manifest / "manifest.parquet").to_pylist()
    # three ok injections and one control, over at least two bricks
    inj = [t for t in tasks if not t["is_control"] and spark_rows[t["task_id"]]["cutout_ok"]]
    ctrl = [t for t in tasks if t["is_control"] and spark_rows[t["task_id"]]["cutout_ok"]]
    chosen = [inj[0], inj[len(inj) // 2], inj[-1], ctrl[0]]
    assert len({t["brickname"] for t in chosen}) >= 2
    bank = open_bank(str(tiny.bank))
    ctx = RunContext(run_id="in-process", pipeline_version="in-process", config=cfg)
    bricks = {}
    out = []
    for t in chosen:
        if t["brickname"] not in bricks:
            bricks[t["brickname"]] = load_brick(str(tiny.coadd_prefix), t["brickname"], tuple(cfg.bands))
        out.append((spark_rows[t["task_id"]], inject_task(t, bricks[t["brickname"]], bank, ctx)))
    return out


def test_same_tasks_chosen(pairs):
    assert [s["task_id"] for s, _ in pairs] == [p["task_id"] for _, p in pairs]
    assert [s["is_control"] for s, _ in pairs] == [False, False, False, True]
    assert all(p["cutout_ok"] for _, p in pairs), [p["cutout_error"] for _, p in pairs]


def test_scalar_columns_agree(pairs):
    for s, p in pairs:
        for c in SCALAR_COLUMNS:
            if c in RUN_COLUMNS:
                continue
            a, b = s[c], p[c]
            if a is None or b is None:
                assert a is None and b is None, (s["task_id"], c, a, b)
            elif isinstance(a, float) or isinstance(b, float):
                rel = 1e-4 if c in PIXEL_DERIVED else 1e-9
                assert float(a) == pytest.approx(float(b), rel=rel, abs=1e-12), (s["task_id"], c, a, b)
            else:
                assert a == b, (s["task_id"], c, a, b)
        if s["is_control"]:
            assert all(s[c] is None for c in INJECTION_ONLY)


def test_pixels_agree_within_the_stored_quantization(pairs):
    for s, p in pairs:
        n_bands = 3
        img_s, img_p = (np.asarray(r["image"], np.float64).reshape(n_bands, 64, 64) for r in (s, p))
        assert np.abs(img_s - img_p).max() <= 2.0 ** -14, s["task_id"]
        iv_s, iv_p = (np.asarray(r["invvar"], np.float64) for r in (s, p))
        assert np.all((iv_s == 0) == (iv_p == 0))
        assert np.all(np.abs(iv_s - iv_p) <= 2.0 ** -10 * np.abs(iv_p)), s["task_id"]
        np.testing.assert_array_equal(np.asarray(s["maskbits"]), np.asarray(p["maskbits"]))
        if s["is_control"]:
            assert s["arc"] is None and p["arc"] is None
            continue
        arc_s, arc_p = (np.asarray(r["arc"], np.float64).reshape(n_bands, 64, 64) for r in (s, p))
        for b in range(n_bands):
            step = np.abs(arc_p[b]).max() * 2.0 ** -10  # one step of an 11-bit grid below the peak
            assert np.abs(arc_s[b] - arc_p[b]).max() <= step, (s["task_id"], b)
        assert np.abs(arc_p).max() > 0  # a real arc was compared
    assert set(PIXEL_COLUMNS) == {"image", "invvar", "arc", "maskbits"}
