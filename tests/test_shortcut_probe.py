"""The shortcut probe: at chance on label-free features, failing (and naming the feature) on a
planted shortcut."""

import json

import numpy as np
import pandas as pd

from pipeline.gate.shortcut_probe import probe
from tests.gate_factories import clean_validation, gate_cases  # noqa: F401 - fixtures


def _frame(n=2000, seed=0, shortcut=0.0):
    rng = np.random.default_rng(seed)
    y = rng.uniform(size=n) < 0.5
    f = pd.DataFrame({
        "psfsize_g": rng.uniform(1.1, 1.8, n), "psfsize_r": rng.uniform(1.0, 1.6, n),
        "psfsize_z": rng.uniform(0.9, 1.5, n), "psfdepth_r": rng.uniform(23.3, 24.3, n),
        "lens_mag_r": rng.uniform(17, 20.5, n), "ra": rng.uniform(150, 151, n), "dec": rng.uniform(1, 2, n),
        "bad_pixel_frac": rng.uniform(0, 0.02, n), "invvar_mean_r": rng.normal(2e4, 2e3, n),
    })
    # the planted shortcut: controls from better-seeing places
    f.loc[~y, "psfsize_r"] -= shortcut
    return f, (~y).astype(int)


def test_label_free_features_stay_at_chance():
    f, y = _frame()
    r = probe(f, y)
    assert r["rows"] == 2000
    assert abs(r["auc"] - 0.5) < 0.04, r  # 3.4 sigma of the no-signal AUC (0.0129 at 1000/class)


def test_planted_shortcut_fails_and_is_named():
    f, y = _frame(shortcut=0.08)
    r = probe(f, y)
    assert r["auc"] > 0.55, r
    assert r["top_features"][0][0] == "psfsize_r"


def test_a_split_without_both_classes_is_not_scored():
    f, y = _frame(n=50)
    assert probe(f, np.zeros(50, int))["auc"] is None


def test_deterministic():
    f, y = _frame(shortcut=0.05)
    assert probe(f, y) == probe(f, y)


def test_gate_probe_passes_the_clean_dataset_and_fails_a_planted_shortcut(spark, gate_cases, clean_validation,
                                                                          tmp_path):
    """Through validate_dataset: the clean factory dataset's probe stays at chance in every split;
    injections placed on the worse-seeing half of the sky (gate_factories.psf_parity) fail the
    `shortcut_probe` check, and the failure names psfsize_r."""
    from pipeline.gate.validate import validate_dataset

    result, out = clean_validation
    prof = json.loads((out / "profile.json").read_text())
    prof = prof.get("profile", prof)
    aucs = [s["shortcut_probe_auc"] for s in prof["splits"].values()]
    assert len(aucs) == 3 and all(a is not None and a <= 0.55 for a in aucs), aucs
    assert not any(f.startswith("shortcut_probe") for f in result.failures)

    d, m = gate_cases("psf_parity")
    bad = validate_dataset(str(d), manifest_uri=str(m), variant="demo", out_dir=str(tmp_path / "v"), spark=spark,
                           build_docs=False, build_report=False)
    assert any(f.startswith("shortcut_probe:") for f in bad.failures), bad.failures
    named = [f for f in bad.failures if f.startswith("shortcut_probe_features:")]
    assert named and all("psfsize_r" in f for f in named), named
