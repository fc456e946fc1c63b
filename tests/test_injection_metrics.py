"""arc_snr (seed definition), arc_snr_footprint & co. computed by hand on tiny stamps."""

import math

import numpy as np
import pytest

from pipeline.injection.metrics import arc_footprint, arc_metrics, bad_pixel_frac
from pipeline.survey import maskbits as mb


def _tiny():
    arc = np.array([[0.0, 0.05, 0.0, 0.0],
                    [0.2, 1.0, 0.5, 0.0],
                    [0.0, 0.3, 0.09, 0.0],
                    [0.0, 0.0, 0.0, 0.0]])
    invvar = np.full((4, 4), 4.0)  # var 0.25
    invvar[1, 2] = 16.0            # var 0.0625
    maskbits = np.zeros((4, 4), dtype=np.int32)
    maskbits[2, 1] = mb.BRIGHT     # the 0.3 pixel is masked
    maskbits[0, 0] = mb.WISEM1     # not a bad bit
    return arc, invvar, maskbits


def test_footprint_is_pixels_at_least_10pct_of_peak():
    arc, _, _ = _tiny()
    expected = np.zeros((4, 4), dtype=bool)
    expected[1, 0] = expected[1, 1] = expected[1, 2] = expected[2, 1] = True  # >= 0.1; 0.09 and 0.05 are out
    np.testing.assert_array_equal(arc_footprint(arc), expected)


def test_arc_snr_by_hand():
    arc, invvar, maskbits = _tiny()
    m = arc_metrics(arc, invvar, maskbits)
    # seed (section 6.1): every good pixel of the stamp: 15 good pixels (only (2,1) is masked),
    # 14 of var .25 and (1,2) of var .0625; arc sum without the masked 0.3
    assert m.arc_snr == pytest.approx((0.05 + 0.2 + 1.0 + 0.5 + 0.09) / math.sqrt(14 * 0.25 + 0.0625))
    # footprint & good: (1,0)=0.2 var .25, (1,1)=1.0 var .25, (1,2)=0.5 var .0625; (2,1) masked
    assert m.arc_snr_footprint == pytest.approx((0.2 + 1.0 + 0.5) / math.sqrt(0.25 + 0.25 + 0.0625))
    assert m.arc_snr_peak == pytest.approx(max(0.2 * 2, 1.0 * 2, 0.5 * 4))
    assert m.arc_masked_frac == pytest.approx(0.3 / arc.sum())
    assert m.footprint_pixels == 3


def test_zero_invvar_pixel_is_excluded_and_all_masked_gives_zero():
    arc, invvar, maskbits = _tiny()
    invvar[1, 1] = 0.0
    m = arc_metrics(arc, invvar, maskbits)
    assert m.arc_snr == pytest.approx((0.05 + 0.2 + 0.5 + 0.09) / math.sqrt(13 * 0.25 + 0.0625))
    assert m.arc_snr_footprint == pytest.approx((0.2 + 0.5) / math.sqrt(0.25 + 0.0625))
    assert m.arc_masked_frac == pytest.approx((1.0 + 0.3) / arc.sum())
    m0 = arc_metrics(arc, np.zeros_like(invvar), maskbits)
    assert (m0.arc_snr, m0.arc_snr_footprint, m0.arc_snr_peak, m0.arc_masked_frac) == (0.0, 0.0, 0.0, 1.0)


def test_seed_snr_counts_noise_far_from_the_arc():
    # the same arc in a stamp 4x wider has 16x the good pixels: the seed's whole-stamp SNR falls
    # by 4 (sqrt of the variance sum), the footprint SNR does not move
    arc, invvar, maskbits = _tiny()
    big_arc = np.zeros((16, 16))
    big_arc[:4, :4] = arc
    big_iv = np.full((16, 16), 4.0)
    big_iv[:4, :4] = invvar
    big_mb = np.zeros((16, 16), dtype=np.int32)
    big_mb[:4, :4] = maskbits
    small, big = arc_metrics(arc, invvar, maskbits), arc_metrics(big_arc, big_iv, big_mb)
    assert big.arc_snr_footprint == pytest.approx(small.arc_snr_footprint)
    assert big.arc_snr == pytest.approx(1.84 / math.sqrt(254 * 0.25 + 0.0625))


def test_bad_pixel_frac_counts_a_pixel_bad_in_any_band():
    invvar = np.ones((3, 4, 4))
    invvar[0, 0, 0] = 0.0          # bad in g only
    invvar[2, 3, 3] = np.nan       # bad in z only
    maskbits = np.zeros((4, 4), dtype=np.int32)
    maskbits[1, 1] = mb.SATUR_R
    maskbits[2, 2] = mb.GALAXY     # real sky, not bad
    assert bad_pixel_frac(invvar, maskbits) == pytest.approx(3 / 16)


def test_masked_fraction_uses_the_positive_arc_and_stays_in_0_1():
    # noise lensed from the bank stamp leaves slightly negative arc pixels; on a masked pixel a
    # plain flux ratio would go negative (seen on the demo survey before the fix)
    arc = np.zeros((4, 4))
    arc[1, 1], arc[1, 2], arc[3, 3] = 1.0, 0.5, -0.2
    invvar = np.ones((4, 4))
    maskbits = np.zeros((4, 4), dtype=np.int32)
    maskbits[3, 3] = mb.BRIGHT
    m = arc_metrics(arc, invvar, maskbits)
    assert m.arc_masked_frac == 0.0
    maskbits[1, 2] = mb.BRIGHT
    assert arc_metrics(arc, invvar, maskbits).arc_masked_frac == pytest.approx(0.5 / 1.5)
