"""Row contract: the clean dataset passes; each row-level defect fails with the check's name."""

import pytest

from pipeline.config import load_run_config
from pipeline.dataset import open_dataset, read_rows
from pipeline.gate.row_contract import check_row_contract
from tests.gate_factories import DEFECT_SPLIT_ROWS, gate_cases  # noqa: F401 - fixture


def _contract(spark, case):
    ds = open_dataset(str(case[0]))
    return check_row_contract(read_rows(spark, ds), load_run_config("demo"))


def test_clean_dataset_passes_row_contract(spark, gate_cases):
    result = _contract(spark, gate_cases("clean"))
    assert result.passed, result.failures()
    assert result.rows == 600
    assert result.checks["unique_task_id"]["failed_rows"] == 0


# defective datasets have DEFECT_SPLIT_ROWS rows: 100 injections, every 8th out of range -> 13
@pytest.mark.parametrize("defect, check, n_rows", [
    ("nan_pixels", "pixels_finite:image", 3),
    ("duplicate_task_ids", "unique_task_id", 4),
    ("theta_e_out_of_range", "theta_e_in_config_range", -(-sum(DEFECT_SPLIT_ROWS.values()) // 2 // 8)),
])
def test_defect_fails_its_row_check(spark, gate_cases, defect, check, n_rows):
    result = _contract(spark, gate_cases(defect))
    assert not result.passed
    failed = {k for k, v in result.checks.items() if v["failed_rows"]}
    assert failed == {check}, result.failures()
    assert result.checks[check]["failed_rows"] == n_rows
    assert result.checks[check]["examples"]
    assert any(f.startswith(f"row_contract/{check}:") for f in result.failures())


def test_control_with_lens_parameters_and_short_pixels_fail(spark, gate_cases):
    from pyspark.sql import functions as F

    ds = open_dataset(str(gate_cases("clean")[0]))
    df = read_rows(spark, ds)
    first_control = F.col("task_id") == "train-00000"
    df = (df.withColumn("theta_e_arcsec", F.when(first_control, F.lit(1.0)).otherwise(F.col("theta_e_arcsec")))
            .withColumn("maskbits", F.when(first_control, F.slice("maskbits", 1, 10)).otherwise(F.col("maskbits"))))
    result = check_row_contract(df, load_run_config("demo"))
    failed = {k for k, v in result.checks.items() if v["failed_rows"]}
    assert failed == {"control_has_no_injection_params", "pixel_length:maskbits"}
    assert result.checks["control_has_no_injection_params"]["examples"] == ["train-00000"]


def test_schema_error_names_the_column(spark, gate_cases):
    ds = open_dataset(str(gate_cases("clean")[0]))
    from pyspark.sql import functions as F

    df = read_rows(spark, ds).withColumn("lrg_id", F.col("lrg_id").cast("string"))
    result = check_row_contract(df.drop("brickname"), load_run_config("demo"))
    assert not result.passed
    text = " ".join(result.schema_errors)
    assert "brickname" in text and "lrg_id" in text


@pytest.mark.parametrize("column, value, check", [
    ("image", float("nan"), "pixels_finite:image"),
    ("arc", float("inf"), "pixels_finite:arc"),
    ("image", float("-inf"), "pixels_finite:image"),
    ("invvar", float("inf"), "pixels_finite:invvar"),
    ("invvar", -1.0, "invvar_nonnegative"),
])
def test_one_bad_pixel_fails_its_check(spark, gate_cases, column, value, check):
    """One pixel of one row, in the middle of the array: found by the array_max/array_min rules."""
    from pyspark.sql import functions as F

    ds = open_dataset(str(gate_cases("clean")[0]))
    df = read_rows(spark, ds)
    row = F.col("task_id") == "val-00003"
    c = F.col(column)
    bad = F.concat(F.slice(c, 1, 5000), F.array(F.lit(value).cast("float")), F.slice(c, 5002, 20000))
    df = df.withColumn(column, F.when(row, bad).otherwise(c))
    result = check_row_contract(df, load_run_config("demo"))
    failed = {k: v for k, v in result.checks.items() if v["failed_rows"]}
    assert set(failed) == {check}, result.failures()
    assert failed[check] == {"failed_rows": 1, "examples": ["val-00003"]}
