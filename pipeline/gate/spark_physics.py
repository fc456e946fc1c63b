"""The physics invariants of `pipeline.physics_checks` as native Spark column expressions.

They mirror the numpy functions operation by operation (same constants, same order of
floating-point operations); tests/test_gate_physics_spark.py proves they agree (nan, inf, null,
bounds, the seed's 1/1111 bug). No Python UDF runs on the rows. Spark semantics handled
explicitly:
- NaN compares greater than every number in Spark SQL (numpy: every comparison with nan is
  false), so finiteness is tested first, as numpy's np.isfinite does;
- x / 0 is NULL in Spark (an error under ANSI mode; numpy: +-inf or nan, which fail
  np.isfinite): the division is guarded and its NULL fails the check;
- a NULL input is nan for the numpy functions (pandas na_value=nan): it fails the check.
"""

from __future__ import annotations

from pyspark.sql import functions as F

from pipeline.physics_checks import (
    ARC_FLUX_RATIO_RANGE,
    MAGNIFICATION_RANGE,
    NMGY_ZEROPOINT_AB,
    RATIO_DECIMALS,
)

_INF = float("inf")


def _finite(x):
    return x.isNotNull() & ~F.isnan(x) & (x != F.lit(_INF)) & (x != F.lit(-_INF))


def _within(x, lo, hi):
    """np.isfinite(x) & (x >= lo) & (x <= hi) with NULL as nan; never NULL."""
    x = x.cast("double")
    return F.coalesce(_finite(x) & (x >= F.lit(float(lo))) & (x <= F.lit(float(hi))), F.lit(False))


def spark_source_flux_nmgy(src_mag):
    """physics_checks.source_flux_nmgy: 10 ** ((NMGY_ZEROPOINT_AB - src_mag) / 2.5)."""
    return F.pow(F.lit(10.0), (F.lit(float(NMGY_ZEROPOINT_AB)) - src_mag.cast("double")) / F.lit(2.5))


def spark_arc_flux_ratio(arc_flux_nmgy, src_mag, magnification):
    """physics_checks.arc_flux_ratio: arc flux / (source flux x magnification); NULL where numpy
    gives +-inf or nan from a zero denominator."""
    expected = spark_source_flux_nmgy(src_mag) * magnification.cast("double")
    return F.when(expected != F.lit(0.0), arc_flux_nmgy.cast("double") / expected)


def spark_flux_is_consistent(ratio, bounds=ARC_FLUX_RATIO_RANGE):
    """physics_checks.flux_is_consistent: the ratio rounded to RATIO_DECIMALS by the same correctly
    rounded operations (x * 1e9, rint, / 1e9), so a boundary row gets one verdict on every CPU."""
    scale = F.lit(10.0 ** RATIO_DECIMALS)
    return _within(F.rint(ratio.cast("double") * scale) / scale, *bounds)


def spark_magnification_is_physical(magnification, bounds=MAGNIFICATION_RANGE):
    """physics_checks.magnification_is_physical."""
    return _within(magnification, *bounds)


def spark_hlr_in_bank_filter(hlr_arcsec, hlr_filter_arcsec):
    """physics_checks.hlr_in_bank_filter."""
    lo, hi = hlr_filter_arcsec
    return _within(hlr_arcsec, lo, hi)


def physics_ok(hlr_filter_arcsec) -> dict:
    """invariant -> Spark Column, true where the row satisfies it (on the contract's columns)."""
    col = F.col
    return {
        "magnification": spark_magnification_is_physical(col("magnification")),
        "arc_flux": spark_flux_is_consistent(
            spark_arc_flux_ratio(col("arc_flux_r"), col("src_mag_r"), col("magnification"))),
        "hlr": spark_hlr_in_bank_filter(col("cosmos_hlr_arcsec"), hlr_filter_arcsec),
    }
