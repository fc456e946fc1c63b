"""pipeline.physics_checks by hand (issue 20, written against the mutation run's survivors): every
bound inclusive as documented, nan/inf refused, magnitudes through the AB zero point 22.5.

Hand values: an AB magnitude m is 10**((22.5 - m) / 2.5) nanomaggies, so m = 22.5 is 1 nmgy,
m = 20 is 10 nmgy, m = 25 is 0.1 nmgy.
"""

import numpy as np
import pytest

from pipeline import physics_checks as pc


def test_published_ranges():
    assert pc.MAGNIFICATION_RANGE == (1.0, 200.0)
    assert pc.ARC_FLUX_RATIO_RANGE == (0.80, 1.02)
    assert pc.RATIO_DECIMALS == 9


@pytest.mark.parametrize("mag, nmgy", [(22.5, 1.0), (20.0, 10.0), (25.0, 0.1), (17.5, 100.0)])
def test_source_flux_from_ab_magnitude(mag, nmgy):
    assert pc.source_flux_nmgy(mag) == pytest.approx(nmgy, rel=1e-12)


def test_arc_flux_ratio_by_hand():
    # source 20 mag = 10 nmgy, magnification 5 -> 50 nmgy expected; an arc of 45 nmgy is 0.9
    assert pc.arc_flux_ratio(45.0, 20.0, 5.0) == pytest.approx(0.9, rel=1e-12)
    r = pc.arc_flux_ratio(np.array([10.0, 20.0]), np.array([22.5, 22.5]), np.array([10.0, 10.0]))
    np.testing.assert_allclose(r, [1.0, 2.0], rtol=1e-12)
    assert np.isinf(pc.arc_flux_ratio(1.0, 22.5, 0.0))       # divide by zero: inf, no warning raised
    assert np.isnan(pc.arc_flux_ratio(0.0, 22.5, 0.0))


def test_rendered_flux_ratio_by_hand():
    assert pc.rendered_flux_ratio(10.0, 20.0) == pytest.approx(1.0, rel=1e-12)
    # the seed's flux-per-pixel bug at 0.03"/pixel: 0.03**2 = 0.0009 of the flux
    assert pc.rendered_flux_ratio(0.0009 * 0.1, 25.0) == pytest.approx(0.0009, rel=1e-12)


def test_rounded_ratio_on_the_1e9_grid():
    assert pc.rounded_ratio(0.1234567894) == pytest.approx(0.123456789, abs=1e-15)
    assert pc.rounded_ratio(0.1234567896) == pytest.approx(0.12345679, abs=1e-15)
    assert pc.rounded_ratio(1.02 + 4e-10) == 1.02          # within half a grid step: IS the bound
    assert pc.rounded_ratio(1.02 + 6e-10) > 1.02
    assert np.isnan(pc.rounded_ratio(np.nan)) and np.isinf(pc.rounded_ratio(np.inf))


@pytest.mark.parametrize("ratio, ok", [
    (0.80, True), (1.02, True), (1.0, True),
    (0.80 - 4e-10, True), (1.02 + 4e-10, True),            # rounding noise at a bound
    (0.80 - 2e-9, False), (1.02 + 2e-9, False),
    (0.79, False), (1.03, False), (np.nan, False), (np.inf, False), (-np.inf, False),
])
def test_flux_is_consistent_bounds_inclusive(ratio, ok):
    assert bool(pc.flux_is_consistent(ratio)) is ok


def test_flux_is_consistent_with_other_bounds_and_arrays():
    got = pc.flux_is_consistent(np.array([0.5, 0.6, 0.7]), bounds=(0.6, 0.65))
    assert got.tolist() == [False, True, False]


@pytest.mark.parametrize("mu, ok", [
    (1.0, True), (200.0, True), (3.7, True), (0.999, False), (200.001, False),
    (np.nan, False), (np.inf, False), (-5.0, False),
])
def test_magnification_is_physical_bounds_inclusive(mu, ok):
    assert bool(pc.magnification_is_physical(mu)) is ok


def test_magnification_other_bounds():
    assert pc.magnification_is_physical(np.array([1.5, 2.5, 3.5]), bounds=(2.0, 3.0)).tolist() == [False, True, False]


@pytest.mark.parametrize("hlr, ok", [
    (0.1, True), (1.0, True), (0.4, True), (0.0999, False), (1.0001, False),
    (13.3, False),  # 0.4" in 0.03" pixels (the x33 unit bug)
    (np.nan, False), (np.inf, False),
])
def test_hlr_in_bank_filter_bounds_inclusive(hlr, ok):
    assert bool(pc.hlr_in_bank_filter(hlr, (0.1, 1.0))) is ok


# --- written against the mutation run's survivors (docs/mutation_testing.md) ---------------------

def test_nulls_become_nan_and_fail_every_check():
    """Rows arrive with nulls (a control, a failed render): each function takes them as NaN (it
    converts with dtype=float) and refuses them, never raising."""
    assert np.isnan(pc.source_flux_nmgy([None])[0])
    assert np.isnan(pc.arc_flux_ratio([None], [20.0], [5.0])[0])
    assert np.isnan(pc.arc_flux_ratio([45.0], [20.0], [None])[0])
    assert np.isnan(pc.rendered_flux_ratio([None], [20.0])[0])
    assert np.isnan(pc.rounded_ratio([None])[0])
    assert pc.flux_is_consistent([None, 1.0]).tolist() == [False, True]
    assert pc.magnification_is_physical([None, 3.0]).tolist() == [False, True]
    assert pc.hlr_in_bank_filter([None, 0.4], (0.1, 1.0)).tolist() == [False, True]


def test_degenerate_rows_give_inf_or_nan_without_a_warning():
    """A zero magnification or a source of infinite magnitude (zero flux) is a bad row, not an
    error: the ratio is inf or nan, silently (the gate evaluates millions of rows)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isinf(pc.arc_flux_ratio(np.array([1.0]), np.array([22.5]), np.array([0.0]))[0])
        assert np.isnan(pc.arc_flux_ratio(np.array([0.0]), np.array([22.5]), np.array([0.0]))[0])
        assert np.isinf(pc.rendered_flux_ratio(np.array([1.0]), np.array([np.inf]))[0])
        assert np.isnan(pc.rendered_flux_ratio(np.array([0.0]), np.array([np.inf]))[0])
        assert np.isinf(pc.rounded_ratio(np.array([1e305]))[0])     # x 1e9 overflows to inf
        assert not pc.flux_is_consistent(np.array([1e305, np.nan]))[0]
