"""A defect case for EVERY row rule of pipeline.gate.row_contract.row_predicates (issue 20: 14 of
21 never fired in any test).

One Spark pass for all of them: the clean dataset with one row per rule broken in the way the rule
exists to catch (a different row for each rule). The contract must then fail each rule on exactly
one row, that rule's row, in a message naming the rule; no other rule may fire. Truth is the
rule's own statement (module docstring of row_contract and the contract), not its implementation:
e.g. an injection with a missing lens parameter, a control labelled SIE, a Dec of 95 degrees.
"""

import pytest

from pipeline.config import load_run_config
from pipeline.dataset import open_dataset, read_rows
from pipeline.gate.row_contract import REQUIRED_COLUMNS, check_row_contract, row_predicates
from tests.gate_factories import gate_cases  # noqa: F401 - fixture

# clean dataset (tests/gate_factories.py): in each split, even row numbers are controls, odd
# ones injections; every row ok.
_CONTROLS = [f"train-{i:05d}" for i in range(0, 240, 2)]
_INJECTIONS = [f"train-{i:05d}" for i in range(1, 240, 2)]


def _cases():
    """check name -> (role, {column: Spark expression of the broken value})."""
    from pyspark.sql import functions as F

    def null(c):
        return {c: F.lit(None)}

    cases = {
        "injection_has_all_params": ("inj", null("shear_gamma1")),
        "control_has_no_injection_params": ("ctrl", {"magnification": F.lit(3.0)}),
        "lens_model_matches_label": ("ctrl", {"lens_model": F.lit("SIE")}),
        "cutout_error_iff_failed": ("ctrl", {"cutout_error": F.lit("RowError: spurious")}),
        "region_split_known": ("ctrl", {"region_split": F.lit("holdout")}),
        "pixels_present_when_ok": ("ctrl", null("invvar")),
        "pixel_length:image": ("ctrl", {"image": F.slice("image", 1, 100)}),
        "pixel_length:invvar": ("ctrl", {"invvar": F.slice("invvar", 1, 100)}),
        "pixel_length:arc": ("inj", {"arc": F.slice("arc", 1, 100)}),
        "pixel_length:maskbits": ("ctrl", {"maskbits": F.slice("maskbits", 1, 100)}),
        "pixels_finite:image": ("ctrl", {"image": F.array_append(F.slice("image", 1, 12287), F.lit(float("nan")).cast("float"))}),
        "pixels_finite:invvar": ("ctrl", {"invvar": F.array_append(F.slice("invvar", 1, 12287), F.lit(float("inf")).cast("float"))}),
        "pixels_finite:arc": ("inj", {"arc": F.array_append(F.slice("arc", 1, 12287), F.lit(float("-inf")).cast("float"))}),
        "invvar_nonnegative": ("ctrl", {"invvar": F.array_append(F.slice("invvar", 1, 12287), F.lit(-1.0).cast("float"))}),
        "theta_e_in_config_range": ("inj", {"theta_e_arcsec": F.lit(2.6)}),        # demo range 0.5-2.5"
        "src_dmag_in_config_range": ("inj", {"src_dmag": F.lit(15.5)}),            # demo range -5..15
        "moffat_beta_matches_config": ("inj", {"moffat_beta": F.lit(2.5)}),        # demo: 3.5
        "psfsize_positive": ("ctrl", {"psfsize_g": F.lit(0.0)}),
        "fractions_in_0_1": ("ctrl", {"bad_pixel_frac": F.lit(1.5)}),
        "lens_ellipticity_below_1": ("inj", {"lens_e1": F.lit(0.8), "lens_e2": F.lit(0.6)}),  # |e| = 1
        "cosmos_index_nonnegative": ("inj", {"cosmos_index": F.lit(-1).cast("long")}),
        "sky_position_valid": ("ctrl", {"dec": F.lit(95.0)}),
        "arc_snr_finite": ("inj", {"arc_snr": F.lit(float("nan"))}),
        "pixels_agree:psf_fwhm_g": ("inj", {"psf_fwhm_g": F.col("psfsize_g") + F.lit(0.05)}),
        "pixels_agree:psf_fwhm_r": ("inj", {"psf_fwhm_r": F.col("psfsize_r") - F.lit(0.05)}),
        "pixels_agree:psf_fwhm_z": ("inj", {"psf_fwhm_z": F.col("psfsize_z") * F.lit(1.1)}),
    }
    # every never-null contract column (task_id last: the rows are matched by it)
    for c in REQUIRED_COLUMNS:
        if c != "task_id":
            cases[f"not_null:{c}"] = ("ctrl", null(c))
    cases["not_null:task_id"] = ("ctrl", null("task_id"))
    return cases


@pytest.fixture(scope="module")
def broken(spark, gate_cases):
    """(contract result, {check: task_id of its row}) for the clean dataset's train split with every
    rule broken once."""
    from pyspark.sql import functions as F

    ds = open_dataset(str(gate_cases("clean")[0]))
    df = read_rows(spark, ds).filter("region_split = 'train'")  # 240 rows suffice
    cases = _cases()
    pools = {"ctrl": iter(_CONTROLS), "inj": iter(_INJECTIONS)}
    row_of = {check: next(pools[role]) for check, (role, _) in cases.items()}
    # one expression per column: nested when()s over the rows that break it; task_id changed last
    by_column: dict = {}
    for check, (_, changes) in cases.items():
        for column, expr in changes.items():
            by_column.setdefault(column, []).append((row_of[check], expr))
    for column in sorted(by_column, key=lambda c: c == "task_id"):
        expr = F.col(column)
        for task_id, new in by_column[column]:
            expr = F.when(F.col("task_id") == task_id, new.cast(df.schema[column].dataType)).otherwise(expr)
        df = df.withColumn(column, expr)
    # cached: the contract fetches example task_ids once per failed rule (~50 small jobs)
    df = df.cache()
    result = check_row_contract(df, load_run_config("demo"), n_examples=3)
    yield result, row_of
    df.unpersist()


def test_every_row_rule_has_a_case(spark):
    """The cases cover every rule row_predicates defines on a dataset with every contract column."""
    from pipeline.contract import COLUMN_NAMES

    rules = set(row_predicates(load_run_config("demo"), list(COLUMN_NAMES)))
    assert rules == set(_CASE_NAMES), (rules - set(_CASE_NAMES), set(_CASE_NAMES) - rules)


def _case_names():
    names = ["injection_has_all_params", "control_has_no_injection_params", "lens_model_matches_label",
             "cutout_error_iff_failed", "region_split_known", "pixels_present_when_ok",
             *[f"pixel_length:{c}" for c in ("image", "invvar", "arc", "maskbits")],
             *[f"pixels_finite:{c}" for c in ("image", "invvar", "arc")], "invvar_nonnegative",
             "theta_e_in_config_range", "src_dmag_in_config_range", "moffat_beta_matches_config", "psfsize_positive",
             "fractions_in_0_1", "lens_ellipticity_below_1", "cosmos_index_nonnegative", "sky_position_valid",
             "arc_snr_finite", *[f"pixels_agree:psf_fwhm_{b}" for b in "grz"]]
    return names + [f"not_null:{c}" for c in REQUIRED_COLUMNS]


_CASE_NAMES = _case_names()


@pytest.mark.parametrize("check", _CASE_NAMES)
def test_each_rule_fails_on_its_row_only(broken, check):
    result, row_of = broken
    assert not result.passed
    r = result.checks[check]
    expected_example = None if check == "not_null:task_id" else row_of[check]
    assert r["failed_rows"] == 1, (check, r, result.failures())
    assert r["examples"] == [expected_example], (check, r)
    assert any(m.startswith(f"row_contract/{check}: 1 of ") for m in result.failures())


def test_no_other_rule_fires(broken):
    result, _ = broken
    fired = {k for k, v in result.checks.items() if v["failed_rows"]}
    assert fired == set(_CASE_NAMES), fired ^ set(_CASE_NAMES)
