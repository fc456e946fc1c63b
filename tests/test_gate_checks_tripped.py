"""Every gate check is failed by some defect in a test (issue 20), and the drift checks each by
a defect that moves exactly its metric.

- Coverage: every check of every suite file (demo, production, strict) is named by a defect in
  tests/test_gate_suites.py ONLY_THESE (where `test_each_defect_fails_only_its_own_checks`
  asserts that the defect fails exactly those checks, each in a message naming it), or below in
  FAILED_ELSEWHERE with the test that fails it.
- Drift: the reference is the clean dataset of the same size (`clean_small`), so a metric drifts
  only where the defect moved it; each defect fails exactly the drift checks of the metrics it
  moves, and the clean data none.
- Suite variants: one defective dataset through demo, production and strict alike.
"""

import pytest
import yaml

from pipeline.gate.thresholds import load_thresholds
from tests.gate_factories import gate_cases  # noqa: F401 - fixture
from tests.test_gate_suites import ONLY_THESE, _gate

#: checks failed by tests other than the ONLY_THESE table, and where
FAILED_ELSEWHERE = {
    # KNOWN GAP (issue 20 report): the P5 band starts at 0 (a fully masked arc has SNR 0), so the
    # faint-arc defect cannot fail it; only arcs far too bright would (its max). No defect yet.
    "arc_snr_p5": "not failed by any test yet",
    "shortcut_probe": "tests/test_shortcut_probe.py (issue 16)",
    "cosmos_unique_sources": "tests/test_gate_suites.py::test_strict_suite_fails_the_clean_demo_data",
}


def _suite_checks(variant):
    return {c.name for c in load_thresholds(variant).checks}


@pytest.mark.parametrize("variant", ["demo", "production", "strict"])
def test_every_suite_check_is_failed_by_a_defect(variant):
    named = set().union(*ONLY_THESE.values())
    missing = {c for c in _suite_checks(variant) if c not in named and c not in FAILED_ELSEWHERE}
    assert not missing, f"{variant}: no test fails {sorted(missing)}"


#: defect -> the drift checks it must fail against the clean reference of the same size (demo
#: suite tolerances: cutout_ok_rate 1%, control_frac 5%, arc_snr quantiles 10-15%, gt1 5%,
#: theta_e_mean 5%, psfsize_r_mean 5%, cosmos_hlr_mean 10%, magnification_p50 10%)
DRIFT = {
    "clean_small": set(),
    "cutout_rate_95": {"drift_cutout_ok_rate"},                       # 100% -> 95% ok
    "control_60_40": {"drift_control_frac"},                          # 50% -> 60% controls
    "faint_arcs": {"drift_arc_snr_p25", "drift_arc_snr_p50", "drift_arc_snr_p75", "drift_arc_snr_gt1_frac"},
    "theta_e_not_flat": {"drift_theta_e_mean"},                       # mean 1.5" -> 1.0"
    "seeing_worse": {"drift_psfsize_r_mean"},                         # +20%
    "hlr_in_pixels": {"drift_cosmos_hlr_mean"},                       # x33
    "magnification_scaled_up": {"drift_magnification_p50"},           # +30%
}


@pytest.fixture(scope="module")
def reference(spark, gate_cases):
    return _gate(spark, gate_cases("clean_small"))[0]


#: drift checks a defect may fail besides its own, and why: a defect that removes injections
#: (turned into controls, failed renders) leaves ~30 per split, whose arc_snr quartiles move to
#: neighbouring order statistics (10-40% apart on a lognormal SNR distribution)
MAY_ALSO = {
    "control_60_40": {"drift_arc_snr_p25", "drift_arc_snr_p50", "drift_arc_snr_p75"},
    "cutout_rate_95": {"drift_arc_snr_p25", "drift_arc_snr_p50", "drift_arc_snr_p75"},
}


@pytest.mark.parametrize("case", sorted(DRIFT))
def test_drift_check_fails_on_the_metric_the_defect_moves(spark, gate_cases, reference, case):
    _, results, failures = _gate(spark, gate_cases(case), reference=reference)
    failed = {r["name"] for r in results if not r["success"] and r["name"].startswith("drift_")}
    assert DRIFT[case] <= failed <= DRIFT[case] | MAY_ALSO.get(case, set()), failures
    for check in DRIFT[case]:
        assert any(f.startswith(f"{check}:") for f in failures), (check, failures)


def test_every_drift_metric_has_a_defect():
    for variant in ("demo", "production", "strict"):
        metrics = set(load_thresholds(variant).drift)
        covered = {name[len("drift_"):] for names in DRIFT.values() for name in names}
        assert metrics <= covered, (variant, metrics - covered)


@pytest.mark.parametrize("variant", ["demo", "production", "strict"])
def test_each_suite_variant_fails_an_unphysical_magnification(spark, gate_cases, variant):
    _, results, failures = _gate(spark, gate_cases("magnification_unphysical"), variant=variant)
    failed = {r["name"] for r in results if not r["success"]}
    assert "magnification_physical" in failed, failures
    assert any(f.startswith("magnification_physical:") for f in failures)
    # the suite file really has the check, with max 0 (no unphysical row allowed)
    doc = yaml.safe_load(open(load_thresholds(variant).source))
    assert any(c["name"] == "magnification_physical" and c.get("max") == 0 for c in doc["checks"])
