"""Profile + GX suites: the clean dataset passes the demo suite; each defect fails the check that
names it; the strict suite fails the clean demo data on purpose."""

import pytest

from pipeline.config import load_run_config
from pipeline.dataset import open_dataset, read_rows
from pipeline.gate.inputs import hlr_filter_for, manifest_identity_for, read_manifest_counts
from pipeline.gate import suites
from pipeline.gate.profile import profile_and_contract
from pipeline.gate.thresholds import load_thresholds
from pipeline.gate.validate import add_identity_and_pixel_checks
from tests.gate_factories import SPLIT_ROWS, gate_cases  # noqa: F401 - fixture


_PROFILES: dict = {}


def _contract_and_profile(spark, case):
    """(row contract, profile) of a case's dataset by the gate's own fused scan, computed once per
    case (the variant only changes the suite, not the profile)."""
    key = str(case[0])
    if key not in _PROFILES:
        ds = open_dataset(str(case[0]))
        identity = manifest_identity_for(read_manifest_counts(str(case[1]))["json"])
        df = read_rows(spark, ds)
        contract, profile = profile_and_contract(df, run_config=load_run_config("demo"),
                                                 hlr_filter_arcsec=hlr_filter_for(ds.metadata, {}),
                                                 files_per_split=ds.files_per_split(), manifest_identity=identity)
        # the row checks outside the fused scan: manifest identity and agreement with the pixels
        add_identity_and_pixel_checks(spark, df, contract, profile, metadata=ds.metadata,
                                      manifest_uri=str(case[1]), identity_record=identity)
        _PROFILES[key] = contract, profile
    return _PROFILES[key]


def _profile(spark, case):
    return _contract_and_profile(spark, case)[1]


def _gate(spark, case, variant="demo", reference=None):
    profile = _profile(spark, case)
    manifest = read_manifest_counts(str(case[1]))
    th = load_thresholds(variant)
    frames = suites.metrics_frames(profile, manifest["tasks_per_split"], th, reference)
    results = suites.run_suites(*frames, th, with_drift=reference is not None)
    return profile, results, suites.failure_messages(results)


@pytest.fixture(scope="module")
def clean(spark, gate_cases):
    return _gate(spark, gate_cases("clean"))


_DEFECT_RESULTS: dict = {}


def _defect_gate(spark, gate_cases, case):
    """Demo-suite results of a defective case, once per case (faint_arcs is asserted twice)."""
    if case not in _DEFECT_RESULTS:
        _DEFECT_RESULTS[case] = _gate(spark, gate_cases(case))
    return _DEFECT_RESULTS[case]


def test_clean_dataset_passes_demo_suite(clean):
    profile, results, failures = clean
    assert failures == []
    assert {r["name"] for r in results} >= {"nothing_lost", "cutout_success_rate", "arc_snr_p50", "theta_e_flatness",
                                            "no_lrg_in_two_splits", "control_injection_parity_psfsize_r"}
    assert all(r["success"] for r in results)
    assert profile["splits"]["train"]["rows"] == SPLIT_ROWS["train"]


def test_profile_covers_all_rows_and_invariants(clean):
    profile = clean[0]
    assert profile["all"]["rows"] == sum(SPLIT_ROWS.values())
    s = profile["splits"]["val"]
    assert s["injections_ok"] == SPLIT_ROWS["val"] // 2
    assert s["arc_snr_p5"] <= s["arc_snr_p50"] <= s["arc_snr_p95"]
    assert s["magnification_out_of_range_frac"] == 0 and s["arc_flux_ratio_out_of_range_frac"] == 0


@pytest.mark.parametrize("case, check", [
    ("faint_arcs", "arc_flux_consistent"),
    ("faint_arcs", "arc_snr_p50"),
    ("control_60_40", "control_fraction"),
    ("theta_e_out_of_range", "theta_e_range_max"),
    ("cutout_rate_95", "cutout_success_rate"),
    ("rows_lost", "nothing_lost"),
    ("hlr_in_pixels", "hlr_in_bank_filter"),
    ("lrg_in_two_splits", "no_lrg_in_two_splits"),
    ("controls_share_lrgs", "controls_injections_disjoint"),
    ("psf_parity", "control_injection_parity_psfsize_r"),
])
def test_defect_fails_the_check_that_names_it(spark, gate_cases, case, check):
    _, results, failures = _defect_gate(spark, gate_cases, case)
    failed = {r["name"] for r in results if not r["success"]}
    assert check in failed, failures
    assert any(f.startswith(f"{check}:") and "expected" in f for f in failures)


#: Every check a defect may fail, through both layers of the gate (row contract and suites).
#: Where a defect fails more than one check, each is a direct consequence of that one defect.
ONLY_THESE = {
    "clean": set(),
    # 1/1111 of the flux: the flux invariant, and every arc_snr statistic whose band excludes ~0
    "faint_arcs": {"arc_flux_consistent", "arc_snr_p25", "arc_snr_p50", "arc_snr_p75", "arc_snr_p95",
                   "arc_snr_gt1_fraction", "arc_snr_gt10_fraction", "arc_snr_footprint_p50"},
    # an injection turned into a control is no longer the manifest's task: its role differs
    "control_60_40": {"control_fraction", "row_contract/matches_manifest"},
    # seen by both layers: on the row (contract) and in each split's max (suite). One injection in
    # eight at 3.2" adds ~1/8 to the last theta_E bin: KS ~0.1 against a critical ~0.3 at 40
    # injections per split, so theta_e_flatness rightly stays quiet.
    "theta_e_out_of_range": {"row_contract/theta_e_in_config_range", "theta_e_range_max"},
    "cutout_rate_95": {"cutout_success_rate"},
    "rows_lost": {"nothing_lost", "nothing_lost_total", "row_contract/matches_manifest"},
    "hlr_in_pixels": {"hlr_in_bank_filter"},
    # an LRG moved to another task: that task's identity differs from the manifest's
    "lrg_in_two_splits": {"no_lrg_in_two_splits", "row_contract/matches_manifest"},
    "controls_share_lrgs": {"controls_injections_disjoint", "row_contract/matches_manifest"},
    "psf_parity": {"control_injection_parity_psfsize_r"},
    "nan_pixels": {"row_contract/pixels_finite:image"},
    "duplicate_task_ids": {"row_contract/unique_task_id", "row_contract/matches_manifest"},
    # issue 14: every row agrees with its own pixels; the rows are exactly the manifest's tasks
    "arc_snr_contradicts_pixels": {"row_contract/pixels_agree:arc_snr"},
    "psf_from_wrong_band": {"row_contract/pixels_agree:psf_fwhm_g", "row_contract/pixels_agree:psf_fwhm_z"},
    "arc_bands_swapped": {"row_contract/pixels_agree:arc_flux_g", "row_contract/pixels_agree:arc_flux_z"},
    "foreign_task": {"row_contract/matches_manifest"},
    # issue 20: every gate check failed by a defect of its own
    "magnification_unphysical": {"magnification_physical"},
    "theta_e_below_range": {"row_contract/theta_e_in_config_range", "theta_e_range_min"},
    "theta_e_not_flat": {"theta_e_flatness"},
    "psfsize_out_of_range": {"psfsize_r_range_min", "psfsize_r_range_max"},
    "cosmos_reused": {"cosmos_max_reuse"},
    "psf_parity_g": {"control_injection_parity_psfsize_g"},
    "psf_parity_z": {"control_injection_parity_psfsize_z"},
    "depth_parity": {"control_injection_parity_psfdepth_r"},
    "lens_mag_parity": {"control_injection_parity_lens_mag_r"},
    # in range, consistent, no parity shift: only drift sees them (tests/test_gate_checks_tripped.py)
    "magnification_scaled_up": set(),
    "seeing_worse": set(),
    "clean_small": set(),
}


@pytest.mark.parametrize("case", sorted(ONLY_THESE))
def test_each_defect_fails_only_its_own_checks(spark, gate_cases, case):
    """The whole gate (row contract + demo suite) on each dataset: the clean one passes, a defective
    one fails exactly the checks named for its defect, each in a message that names the check."""
    contract, _ = _contract_and_profile(spark, gate_cases(case))
    _, results, suite_failures = _defect_gate(spark, gate_cases, case)
    failed = {r["name"] for r in results if not r["success"]}
    failed |= {f"row_contract/{k}" for k, v in contract.checks.items() if v["failed_rows"] or v.get("problem")}
    assert failed == ONLY_THESE[case], contract.failures() + suite_failures
    messages = contract.failures() + suite_failures
    for check in ONLY_THESE[case]:
        assert any(m.startswith(f"{check}:") for m in messages), (check, messages)


def test_strict_suite_fails_the_clean_demo_data(spark, gate_cases):
    _, results, failures = _gate(spark, gate_cases("clean"), variant="strict")
    assert {r["name"] for r in results if not r["success"]} == {"arc_snr_p50", "cosmos_unique_sources"}


def test_drift_against_reference(spark, gate_cases, clean):
    reference = clean[0]
    _, results, _ = _gate(spark, gate_cases("clean"), reference=reference)
    assert all(r["success"] for r in results if r["name"].startswith("drift_"))
    _, results, failures = _gate(spark, gate_cases("faint_arcs"), reference=reference)
    assert "drift_arc_snr_p50" in {r["name"] for r in results if not r["success"]}, failures


def test_all_suites_load_and_name_their_checks_uniquely():
    for variant in ("demo", "production", "strict"):
        th = load_thresholds(variant)
        assert len({c.name for c in th.checks}) == len(th.checks)
