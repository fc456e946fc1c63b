"""The seed review's data questions answered from a dataset (pipeline/gate/seed_questions.py and the
report section that shows them).

Truth is computed independently with numpy from the columns the dataset was written from
(tests/gate_factories.py), or by hand for the small synthetic inputs below.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.gate.seed_questions import answer_seed_questions, footprint_touches_edge
from tests.gate_factories import SPLIT_ROWS, _cached_clean, clean_validation, gate_cases  # noqa: F401

N = 64


def _gauss(x0, y0, sigma, peak=1.0):
    yy, xx = np.mgrid[0:N, 0:N]
    return peak * np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2) / sigma**2)


def test_footprint_touches_edge_by_hand():
    assert not footprint_touches_edge(_gauss(32, 32, 2.0))
    assert footprint_touches_edge(_gauss(1, 32, 2.0))  # pixel column 0 holds > 10% of the peak
    assert footprint_touches_edge(_gauss(32, 62, 2.0))
    # a wing at 5% of the peak reaching the edge is outside the 10% footprint
    arc = _gauss(32, 32, 2.0)
    arc[:, 0] = 0.05
    assert not footprint_touches_edge(arc)
    arc[10, 0] = 0.11
    assert footprint_touches_edge(arc)
    assert not footprint_touches_edge(np.zeros((N, N)))


def _profile(hist2d_counts, splits=None):
    """A minimal profile: one split, a theta_E/PSF x arc_snr 2-D histogram of 15 x 25 bins."""
    s = {"rows": 10, "injections_ok": int(np.sum(hist2d_counts)), "arc_snr_gt1_frac": 0.8, "arc_snr_gt10_frac": 0.1,
         "arc_snr_mean": 5.0, "arc_snr_p50": 4.0, "control_frac": 0.5, "control_frac_configured": 0.5,
         "theta_e_max": 2.5, "cosmos_hlr_min": 0.2, "cosmos_hlr_max": 0.9, "hlr_out_of_filter_frac": 0.0,
         "parity_psfsize_r_ks_ratio": 0.3}
    return {"splits": splits or {"train": s},
            "all": {"rows": 10, "lrg_in_multiple_splits": 0, "lrg_control_and_injection": 0},
            "histograms": {"train": {"arc_snr_vs_theta_over_psf": {
                "control": [0] * 375, "injection": list(np.ravel(hist2d_counts)),
                "x": [0.0, 3.0, 15, False], "y": [-2.0, 3.0, 25, True]}}},
            "method": {"hlr_filter_arcsec": [0.1, 1.0]}}


def _q(answers, qid):
    return next(q for q in answers["questions"] if q["id"] == qid)


def test_q4_resolved_fraction_by_hand():
    """x bins are 0.2 wide: bins 0-4 are theta_E/FWHM < 1, bins 5+ are > 1. 3 lenses unresolved
    (bins 1, 2, 4), 5 resolved (bins 5, 7, 7, 12, 14): 62.5%."""
    grid = np.zeros((15, 25), int)
    for xb, yb in [(1, 10), (2, 10), (4, 12), (5, 14), (7, 14), (7, 16), (12, 20), (14, 20)]:
        grid[xb, yb] += 1
    a = answer_seed_questions(_profile(grid))
    q4 = _q(a, "Q4")
    assert q4["values"]["resolved_pct"] == 62.5
    assert "62.5%" in q4["answer"]
    bins = {b["theta_over_fwhm"]: b["pct"] for b in q4["values"]["bins"]}
    # 0-0.6: bins 0-2 -> 2 lenses; 0.6-1.0: bins 3-4 -> 1; 1.0-1.4: bins 5-6 -> 1; 1.4-2.0: 7-9 -> 2; 2.0+: 2
    assert bins == {"0.0-0.6": 25.0, "0.6-1.0": 12.5, "1.0-1.4": 12.5, "1.4-2.0": 25.0, "2.0+": 25.0}


def test_q2_q6_from_sample_by_hand():
    """10 arcs, 4 with arc_snr < 1: 3 of them have > half their flux masked -> mostly masked."""
    sample = pd.DataFrame({
        "arc_snr": [0.2, 0.5, 0.9, 0.7, 3, 4, 5, 6, 12, 30],
        "arc_masked_frac": [0.9, 0.6, 0.8, 0.0, 0, 0, 0.1, 0, 0, 0],
        "src_dmag": [2.0, 2.5, 3.0, 3.5, 1, 1, 1.5, 2, 1, 1],
        "theta_e_arcsec": [1.0] * 10,
        "footprint_touches_edge": [False] * 9 + [True],
    })
    a = answer_seed_questions(_profile(np.ones((15, 25))), sample)
    q2 = _q(a, "Q2")
    assert q2["values"]["sample_lt1"] == 4
    assert q2["values"]["lt1_mostly_masked_pct"] == 75.0
    assert q2["values"]["lt1_median_masked_frac"] == pytest.approx(0.7)
    assert q2["values"]["arc_snr_lt1_pct"] == {"train": 20.0}  # 1 - profile's gt1 0.8
    assert "mainly masked" in q2["answer"]
    q6 = _q(a, "Q6")
    assert q6["values"]["mean_masked_pct"] == pytest.approx(24.0)  # 2.4 / 10
    assert q6["values"]["over_half_masked_pct"] == 30.0
    assert q6["values"]["any_masked_pct"] == 40.0
    q9 = _q(a, "Q9")
    assert q9["values"]["edge_pct"] == 10.0 and q9["values"]["stamp_half_width_arcsec"] == pytest.approx(8.384)
    q1 = _q(a, "Q1")  # theta_E 1.0 and dmag within 2 +- 0.5: rows 0, 1, 6, 7 -> arc_snr 0.2, 0.5, 5, 6
    assert q1["values"]["theta_e_1_dmag_2"] == {"n": 4, "median_arc_snr": 2.75}


def test_q19_red_flags():
    grid = np.ones((15, 25))
    ok = answer_seed_questions(_profile(grid), results=[{"name": "arc_snr_p50", "success": True}], failures=[])
    assert _q(ok, "Q19")["answer"].startswith("NO red flag") and "no drift check" in _q(ok, "Q19")["answer"]
    bad = answer_seed_questions(
        _profile(grid),
        results=[{"name": "arc_snr_p50", "success": False}, {"name": "drift_arc_snr_p50", "success": False}],
        failures=["arc_snr_p50: train=0.004 (expected 2-7)"])
    q19 = _q(bad, "Q19")
    assert q19["answer"].startswith("YES") and "arc_snr_p50: train=0.004" in q19["answer"]
    assert q19["values"]["drift_failed"] == ["drift_arc_snr_p50"] and q19["values"]["passed"] is False


# --- on a dataset gated by the real validation (Spark), against numpy on the source columns -----



@pytest.fixture(scope="module")
def clean_answers(clean_validation):
    result, out = clean_validation
    path = out / "report" / "seed_questions.json"
    assert path.is_file(), "the report writes seed_questions.json beside index.html"
    return json.loads(path.read_text()), (out / "report" / "index.html").read_text()


@pytest.mark.spark
def test_seed_answers_on_clean_dataset_match_numpy(clean_answers):
    answers, page = clean_answers
    c = _cached_clean(SPLIT_ROWS)
    inj = ~c["is_control"].astype(bool)
    split = c["region_split"]
    snr = np.where(inj, c["arc_snr"], np.nan).astype(float)
    # Q10: rows per split
    q10 = _q(answers, "Q10")["values"]
    assert {s: q10[s]["rows"] for s in SPLIT_ROWS} == SPLIT_ROWS and q10["total_rows"] == sum(SPLIT_ROWS.values())
    # Q2: share of arc_snr < 1 per split (exact counts in the profile)
    for s in SPLIT_ROWS:
        m = inj & (split == s)
        assert _q(answers, "Q2")["values"]["arc_snr_lt1_pct"][s] == pytest.approx(100 * np.mean(snr[m] < 1), abs=0.05)
    # Q4: theta_E / PSF FWHM(r) > 1 over all injections (bin edge 1.0 is exact in the profile)
    ratio = c["theta_e_arcsec"][inj].astype(float) / c["psf_fwhm_r"][inj].astype(float)
    assert _q(answers, "Q4")["values"]["resolved_pct"] == pytest.approx(100 * np.mean(ratio > 1), abs=0.05)
    # Q6: mean masked fraction over the sample (all 300 injections: fewer than SEED_SAMPLE_ROWS)
    assert answers["sample_rows"] == int(inj.sum())
    masked = c["arc_masked_frac"][inj].astype(float)
    assert _q(answers, "Q6")["values"]["mean_masked_pct"] == pytest.approx(100 * masked.mean(), abs=0.005)
    # Q9: the Spark footprint-at-edge column against the numpy function on the same arcs
    arcs = [np.asarray(a, float).reshape(3, N, N)[1] for a, i in zip(c["arc"], inj) if i]
    edge = np.mean([footprint_touches_edge(a) for a in arcs])
    assert _q(answers, "Q9")["values"]["edge_pct"] == pytest.approx(100 * edge, abs=0.005)
    # Q3: intrinsic hlr range
    hlr = c["cosmos_hlr_arcsec"][inj].astype(float)
    q3 = _q(answers, "Q3")["values"]
    assert min(v["min"] for v in q3.values()) == pytest.approx(hlr.min(), abs=1e-3)
    assert max(v["max"] for v in q3.values()) == pytest.approx(hlr.max(), abs=1e-3)
    # Q19: the clean dataset passes the demo suite
    assert _q(answers, "Q19")["answer"].startswith("NO red flag")
    # every answered question is on the page
    assert "Seed review questions" in page
    for qid in ("Q1", "Q2", "Q3", "Q4", "Q6", "Q8", "Q9", "Q10", "Q16", "Q19"):
        assert f"<b>{qid}</b>" in page


@pytest.mark.spark
def test_spark_edge_flag_equals_numpy_on_hand_made_arcs(spark):
    """The report's Spark expression and the numpy definition agree on arcs made to sit on either
    side of the 10%-of-peak threshold at each edge of the r band (g and z hold decoys)."""
    from pipeline.gate.report import spark_footprint_touches_edge

    r_arcs = [_gauss(32, 32, 2.0), _gauss(1, 32, 2.0), _gauss(32, 62, 2.0), _gauss(62, 5, 1.5),
              np.zeros((N, N)), _gauss(32, 32, 2.0)]
    r_arcs[-1][:, 0] = 0.05
    near = _gauss(32, 32, 2.0)
    near[63, 40] = 0.11
    r_arcs.append(near)
    decoy = _gauss(0, 0, 3.0)  # bright at the corner: must not count, it is not the r band
    rows = [(i, np.stack([decoy, r, decoy]).astype(np.float32).ravel().tolist()) for i, r in enumerate(r_arcs)]
    df = spark.createDataFrame(rows, "i int, arc array<float>")
    got = {r["i"]: r["edge"] for r in df.select("i", spark_footprint_touches_edge(df["arc"]).alias("edge")).collect()}
    want = {i: footprint_touches_edge(r.astype(np.float32)) for i, r in enumerate(r_arcs)}
    assert got == want
    assert [want[i] for i in range(len(r_arcs))] == [False, True, True, True, False, False, True]
