"""The gate's Spark physics invariants agree with pipeline.physics_checks (numpy) row by row.

The gate evaluates the invariants as native Spark expressions (pipeline.gate.spark_physics) on
every row; the injection tests use the numpy functions. Both must flag exactly the same rows,
including nan, +-inf, NULL (nan for numpy), the exact bounds, values one ulp and 1e-8 past them,
zero denominators and the seed's 1/1111 flux bug. Values that go through 10**x are compared
within a stated tolerance, never bit for bit: Java's and numpy's pow (and numpy's on Intel and on
AMD) may differ in the last bit, and the flux check's verdict must not (physics_checks.RATIO_DECIMALS).
"""

import itertools

import numpy as np
import pytest

from pipeline import physics_checks as pc
from pipeline.gate import spark_physics as gp

NAN, INF = float("nan"), float("inf")
HLR_FILTER = (0.1, 1.0)


def _edge_values(lo, hi):
    return [lo, hi, np.nextafter(lo, -INF), np.nextafter(hi, INF), np.nextafter(lo, INF), np.nextafter(hi, -INF),
            0.5 * (lo + hi), 0.0, -0.0, -1.0, 1e300, -1e300, 5e-324, NAN, INF, -INF, None,
            lo * (1 - 1e-8), hi * (1 + 1e-8)]


def _spark_eval(spark, rows, schema, exprs):
    rows = [tuple(None if x is None else float(x) for x in r) for r in rows]
    df = spark.createDataFrame(rows, schema)
    out = df.select(*[e.alias(f"e{i}") for i, e in enumerate(exprs)]).collect()
    return [[r[f"e{i}"] for i in range(len(exprs))] for r in out]


def _np(v):
    return np.array([NAN if x is None else x for x in v], dtype=float)


def test_constants_are_the_numpy_modules():
    assert gp.MAGNIFICATION_RANGE is pc.MAGNIFICATION_RANGE
    assert gp.ARC_FLUX_RATIO_RANGE is pc.ARC_FLUX_RATIO_RANGE
    assert gp.NMGY_ZEROPOINT_AB == pc.NMGY_ZEROPOINT_AB


def test_magnification_and_hlr_agree_with_numpy(spark):
    from pyspark.sql import functions as F

    mus = _edge_values(*pc.MAGNIFICATION_RANGE) + [1.5, 6.0, 150.0, 250.0, 0.9, 1 / 1111]
    hlrs = _edge_values(*HLR_FILTER) + [0.15, 0.9, 0.9 * 33.3, 4.6]
    n = max(len(mus), len(hlrs))
    rows = [(mus[i % len(mus)], hlrs[i % len(hlrs)]) for i in range(n)]
    got = _spark_eval(spark, rows, "mu double, hlr double", [
        gp.spark_magnification_is_physical(F.col("mu")), gp.spark_hlr_in_bank_filter(F.col("hlr"), HLR_FILTER)])
    want_mu = pc.magnification_is_physical(_np([r[0] for r in rows]))
    want_hlr = pc.hlr_in_bank_filter(_np([r[1] for r in rows]), HLR_FILTER)
    for (g_mu, g_hlr), w_mu, w_hlr, r in zip(got, want_mu, want_hlr, rows):
        assert g_mu is bool(w_mu), r
        assert g_hlr is bool(w_hlr), r
    # the seed's lensed sizes and pixel radii are outside the filter, the bounds inside
    assert [g[1] for g in got[:2]] == [True, True]


def test_arc_flux_ratio_and_consistency_agree_with_numpy(spark):
    from pyspark.sql import functions as F

    lo, hi = pc.ARC_FLUX_RATIO_RANGE
    # src_mag 22.5 gives a source flux of exactly 1 nmgy, so with mu = 1 the ratio is arc_flux
    # exactly: the bounds and one ulp past them are reached bit for bit
    exact = [(a, 22.5, 1.0) for a in _edge_values(lo, hi)]
    mags = [18.0, 22.5, 25.0, -400.0, 400.0, NAN, INF, -INF, None]
    mus = [1.0, 6.0, 0.0, -0.0, 200.0, NAN, INF, None]
    fluxes = []
    for m, mu in itertools.product(mags, mus):
        with np.errstate(over="ignore", invalid="ignore"):
            f = float(pc.source_flux_nmgy(NAN if m is None else m)) * (NAN if mu is None else mu)
        for a in (f * 0.97, f, f * 1.02, f / 1111, f * 1.5, 0.0, NAN, INF, None):  # 1/1111: the seed's bug
            fluxes.append((a, m, mu))
    rows = exact + fluxes
    got = _spark_eval(spark, rows, "arc double, mag double, mu double", [
        gp.spark_arc_flux_ratio(F.col("arc"), F.col("mag"), F.col("mu")),
        gp.spark_flux_is_consistent(gp.spark_arc_flux_ratio(F.col("arc"), F.col("mag"), F.col("mu"))),
        gp.spark_source_flux_nmgy(F.col("mag"))])
    a, m, mu = (_np([r[i] for r in rows]) for i in range(3))
    with np.errstate(over="ignore", invalid="ignore"):  # 10**400 and inf * 0 on purpose
        want_ratio = pc.arc_flux_ratio(a, m, mu)
        want_ok = pc.flux_is_consistent(want_ratio)
        want_flux = pc.source_flux_nmgy(m)
    for (g_ratio, g_ok, g_flux), w_ratio, w_ok, w_flux, r in zip(got, want_ratio, want_ok, want_flux, rows):
        assert g_ok is bool(w_ok), (r, g_ratio, w_ratio)
        if np.isfinite(w_ratio):
            # same operations in the same order; Java's Math.pow and numpy's pow may differ by an
            # ulp (10**168.8 does), which can move a flag only for a ratio within an ulp of a bound
            assert g_ratio == pytest.approx(w_ratio, rel=4e-16, abs=0), r
        else:  # numpy's +-inf / nan from a zero denominator is NULL (or the same non-finite) in Spark
            assert g_ratio is None or not np.isfinite(g_ratio), r
        if r[1] is not None:
            assert g_flux == pytest.approx(w_flux, rel=4e-16, abs=0, nan_ok=True), r
    # the exact bounds pass; one ulp outside is ON the bound after rounding (so a last-bit difference
    # in 10**x cannot flip a verdict); 1e-8 outside fails; the 1/1111 bug fails
    assert [g[1] for g in got[:4]] == [True, True, True, True]
    assert [g[1] for g in got[len(_edge_values(lo, hi)) - 2:len(_edge_values(lo, hi))]] == [False, False]


def test_flux_verdict_does_not_hinge_on_the_last_bit_of_pow(spark):
    """The Intel failure (issue 14): arc 0.102 nmgy, src_mag 25, mu 1 gives a ratio of 1.02 in one
    libm and 1.0200000000000002 in another. Whatever pow returns, to within a few ulps, the
    verdict is the same in numpy and in Spark."""
    from pyspark.sql import functions as F

    lo, hi = pc.ARC_FLUX_RATIO_RANGE
    rows, want = [], []
    for bound, sign in ((hi, 1.0), (lo, -1.0)):
        for k in range(-4, 5):  # the bound and up to 4 ulps either side, as a perturbed pow would give
            r = bound
            for _ in range(abs(k)):
                r = np.nextafter(r, INF if k > 0 else -INF)
            rows.append((r, 22.5, 1.0))  # source flux exactly 1 nmgy: ratio = arc flux
            want.append(True)
        rows.append((bound * (1 + sign * 2e-9), 22.5, 1.0))  # clearly outside
        want.append(False)
    got = _spark_eval(spark, rows, "arc double, mag double, mu double", [
        gp.spark_flux_is_consistent(gp.spark_arc_flux_ratio(F.col("arc"), F.col("mag"), F.col("mu")))])
    numpy_ok = pc.flux_is_consistent(pc.arc_flux_ratio(_np([r[0] for r in rows]), 22.5, 1.0))
    assert [g[0] for g in got] == want, rows
    assert [bool(x) for x in numpy_ok] == want
    # and the reported case itself, with either pow result
    assert pc.flux_is_consistent(1.02) and pc.flux_is_consistent(1.0200000000000002)


@pytest.mark.parametrize("ansi", ["false", "true"])
def test_zero_denominator_is_not_an_error(spark, ansi):
    from pyspark.sql import functions as F

    old = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", ansi)
    try:
        got = _spark_eval(spark, [(1.0, 22.5, 0.0), (0.0, 22.5, 0.0)], "arc double, mag double, mu double", [
            gp.spark_flux_is_consistent(gp.spark_arc_flux_ratio(F.col("arc"), F.col("mag"), F.col("mu")))])
    finally:
        spark.conf.set("spark.sql.ansi.enabled", old)
    assert got == [[False], [False]]
