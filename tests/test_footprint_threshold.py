"""The arc footprint's boundary (issue 20): pixels at EXACTLY 10% of the peak are in the footprint
(metrics docstring: "at least FOOTPRINT_PEAK_FRACTION (10%) of its own maximum"); pixels just
below are not. A hand-made 5x5 arc with values chosen so that 10% of the peak is exact in binary
floating point (0.1 * 10.0 == 1.0 in IEEE double; 10.0 and 1.0 are exact in float32 too), and
every SNR computed by hand from the definitions in pipeline/injection/metrics.py.
"""

import math

import numpy as np
import pytest

from pipeline.injection.metrics import FOOTPRINT_PEAK_FRACTION, arc_footprint, arc_metrics, pixel_quantities


def _hand_arc(dtype):
    arc = np.zeros((5, 5), dtype=dtype)
    arc[2, 2] = 10.0          # the peak
    arc[2, 1] = 1.0           # exactly 10% of the peak: IN
    arc[1, 2] = 1.0           # exactly 10% of the peak: IN
    arc[3, 3] = 0.999         # just below: OUT
    arc[0, 0] = -0.5          # a negative (HST noise) pixel: OUT of the footprint
    return arc


def test_threshold_is_exact_in_floating_point():
    assert FOOTPRINT_PEAK_FRACTION == 0.10
    assert 0.1 * 10.0 == 1.0 and float(np.float32(0.1 * 10.0)) == 1.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pixels_at_exactly_ten_percent_of_the_peak_are_in_the_footprint(dtype):
    fp = arc_footprint(_hand_arc(dtype))
    assert sorted(zip(*np.nonzero(fp))) == [(1, 2), (2, 1), (2, 2)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_snrs_by_hand(dtype):
    arc = _hand_arc(dtype)
    invvar = np.full((5, 5), 4.0, dtype=np.float32)   # sigma = 0.5 nmgy per pixel
    maskbits = np.zeros((5, 5), dtype=np.int32)
    m = arc_metrics(arc, invvar, maskbits)
    # footprint = 3 pixels (10 + 1 + 1 = 12 nmgy), noise sqrt(3 * 0.25)
    assert m.footprint_pixels == 3
    assert m.arc_snr_footprint == pytest.approx(12.0 / math.sqrt(0.75), rel=1e-12)
    # whole stamp: sum of all 25 pixels (negative one included) over sqrt(25 * 0.25)
    total = 10.0 + 1.0 + 1.0 + float(dtype(0.999)) - 0.5
    assert m.arc_snr == pytest.approx(total / 2.5, rel=1e-12)
    assert m.arc_snr_peak == pytest.approx(10.0 * 2.0, rel=1e-12)
    assert m.arc_masked_frac == 0.0


def test_masked_footprint_pixel_leaves_footprint_and_counts_as_masked():
    """One of the 10%-pixels masked (MEDIUM star, DR10 bit 11): footprint 2 pixels; masked fraction
    = 1 / positive flux (10 + 1 + 1 + 0.999)."""
    arc = _hand_arc(np.float64)
    invvar = np.full((5, 5), 4.0)
    maskbits = np.zeros((5, 5), dtype=np.int32)
    maskbits[2, 1] = 2**11
    m = arc_metrics(arc, invvar, maskbits)
    assert m.footprint_pixels == 2
    assert m.arc_snr_footprint == pytest.approx(11.0 / math.sqrt(0.5), rel=1e-12)
    assert m.arc_masked_frac == pytest.approx(1.0 / 12.999, rel=1e-12)


def test_pixel_quantities_on_a_three_band_stamp_uses_r_for_the_footprint():
    """bands g, r, z: the r plane is the hand-made arc; g and z are flat so a wrong plane gives
    other numbers."""
    r = _hand_arc(np.float32)
    arc = np.stack([np.full((5, 5), 0.3, np.float32), r, np.full((5, 5), 0.7, np.float32)])
    invvar = np.full((3, 5, 5), 4.0, np.float32)
    q = pixel_quantities(arc, invvar, np.zeros((5, 5), np.int32), ("g", "r", "z"))
    assert q["arc_snr_footprint"] == pytest.approx(12.0 / math.sqrt(0.75), rel=1e-7)
    assert q["arc_flux_g"] == pytest.approx(25 * 0.3, rel=1e-6)
    assert q["arc_flux_z"] == pytest.approx(25 * 0.7, rel=1e-6)
    assert q["arc_flux_r"] == pytest.approx(10 + 1 + 1 + 0.999 - 0.5, rel=1e-6)
    assert q["bad_pixel_frac"] == 0.0
