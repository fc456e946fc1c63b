"""pipeline.injection.metrics against truth computed here without the module (issue 20, mutation
testing): every SNR, flux and fraction is recomputed from the definitions in the module docstring
with plain Python (`math.fsum` over the pixels as Python floats, loops over [y, x]), on tiny
hand-made stamps, including float32 inputs (the module promises float64 sums), arcs fainter than
1 nmgy, arcs with no positive pixel, a non-default footprint fraction, non-square stamps and
band orders other than g, r, z."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from pipeline.injection.metrics import (FOOTPRINT_PEAK_FRACTION, ArcMetrics, arc_fluxes, arc_footprint,
                                        arc_metrics, bad_pixel_frac, pixel_quantities)

BRIGHT = 1 << 1   # DR10 bit 1: a bad bit (written out here, not read from the module)
WISEM1 = 1 << 8   # DR10 bit 8: not a bad bit


def _good(iv: float, mbits: int) -> bool:
    """Good pixel from the docstring: positive finite invvar, no bad maskbit (bits 1-7, 10, 11)."""
    bad_bits = (1 << 1) | (1 << 10) | (1 << 11) | sum(1 << b for b in range(2, 8))
    return math.isfinite(iv) and iv > 0 and (int(mbits) & bad_bits) == 0


def _truth(arc, invvar, maskbits, fraction=0.10):
    """Every ArcMetrics field by loops over the pixels as Python floats."""
    arc = [[float(v) for v in row] for row in np.asarray(arc)]
    iv = [[float(v) for v in row] for row in np.asarray(invvar)]
    ny, nx = len(arc), len(arc[0])
    pix = [(y, x) for y in range(ny) for x in range(nx)]
    good = {p for p in pix if _good(iv[p[0]][p[1]], maskbits[p[0]][p[1]])}
    peak = max(arc[y][x] for y, x in pix)
    fp = {(y, x) for y, x in pix if peak > 0 and arc[y][x] >= fraction * peak}
    m = sorted(fp & good)
    snr = (math.fsum(arc[y][x] for y, x in good) / math.sqrt(math.fsum(1 / iv[y][x] for y, x in good))
           if good else 0.0)
    snr_fp = (math.fsum(arc[y][x] for y, x in m) / math.sqrt(math.fsum(1 / iv[y][x] for y, x in m))
              if m else 0.0)
    snr_peak = max((arc[y][x] * math.sqrt(iv[y][x]) for y, x in m), default=0.0)
    total = math.fsum(max(arc[y][x], 0.0) for y, x in pix)
    masked = math.fsum(max(arc[y][x], 0.0) for y, x in pix if (y, x) not in good) / total if total > 0 else math.nan
    return snr, snr_fp, snr_peak, masked, len(m), fp


def _assert_metrics(got: ArcMetrics, truth, rel=1e-13):
    snr, snr_fp, snr_peak, masked, n, _ = truth
    assert isinstance(got, ArcMetrics)
    assert got.arc_snr == pytest.approx(snr, rel=rel, abs=0)
    assert got.arc_snr_footprint == pytest.approx(snr_fp, rel=rel, abs=0)
    assert got.arc_snr_peak == pytest.approx(snr_peak, rel=rel, abs=0)
    if math.isnan(masked):
        assert math.isnan(got.arc_masked_frac)
    else:
        assert got.arc_masked_frac == pytest.approx(masked, rel=rel, abs=0)
    assert got.footprint_pixels == n and type(got.footprint_pixels) is int
    for v in (got.arc_snr, got.arc_snr_footprint, got.arc_snr_peak, got.arc_masked_frac):
        assert type(v) is float


def _faint():
    """A 3 x 5 arc fainter than 1 nmgy (peak 0.5), two masked pixels, one negative pixel."""
    arc = np.array([[0.0, 0.04, 0.05, 0.30, -0.02],
                    [0.10, 0.50, 0.25, 0.049, 0.0],
                    [0.0, 0.20, 0.06, 0.0, 0.01]])
    invvar = np.array([[4.0, 4.0, 4.0, 9.0, 4.0],
                       [4.0, 16.0, 4.0, 4.0, 4.0],
                       [1.0, 4.0, 25.0, 4.0, 4.0]])
    maskbits = np.zeros((3, 5), dtype=np.int32)
    maskbits[0, 3] = BRIGHT      # a footprint pixel (0.30) masked
    maskbits[2, 4] = BRIGHT      # a faint pixel outside the footprint masked
    maskbits[1, 0] = WISEM1      # not bad
    return arc, invvar, maskbits


def test_faint_arc_below_one_nmgy_has_its_footprint_and_snrs():
    arc, invvar, maskbits = _faint()
    truth = _truth(arc, invvar, maskbits)
    # by hand: peak 0.5, threshold 0.05: 0.05, 0.30, 0.10, 0.50, 0.25, 0.20, 0.06 (0.049, 0.04 out)
    assert truth[5] == {(0, 2), (0, 3), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2)}
    expected = np.zeros((3, 5), dtype=bool)
    for y, x in truth[5]:
        expected[y, x] = True
    fp = arc_footprint(arc)
    assert fp.dtype == bool and fp.shape == (3, 5)
    np.testing.assert_array_equal(fp, expected)
    # footprint & good = 6 pixels (0.30 masked)
    assert truth[4] == 6
    assert truth[1] == pytest.approx((0.05 + 0.10 + 0.50 + 0.25 + 0.20 + 0.06)
                                     / math.sqrt(0.25 + 0.25 + 0.0625 + 0.25 + 0.25 + 0.04))
    assert truth[2] == pytest.approx(0.50 * 4)
    assert truth[3] == pytest.approx((0.30 + 0.01) / 1.559)   # positive flux 1.559, -0.02 not counted
    _assert_metrics(arc_metrics(arc, invvar, maskbits), truth)


@pytest.mark.parametrize("fraction", [0.5, 0.05, 0.7])
def test_a_footprint_fraction_other_than_ten_percent_is_used(fraction):
    arc, invvar, maskbits = _faint()
    truth = _truth(arc, invvar, maskbits, fraction)
    fp = arc_footprint(arc, fraction)
    assert {(int(y), int(x)) for y, x in zip(*np.nonzero(fp))} == truth[5]
    _assert_metrics(arc_metrics(arc, invvar, maskbits, fraction), truth)
    _assert_metrics(arc_metrics(arc, invvar, maskbits, peak_fraction=fraction), truth)
    if fraction == 0.5:  # by hand: >= 0.25: 0.50, 0.25 and the masked 0.30
        assert truth[5] == {(0, 3), (1, 1), (1, 2)} and truth[4] == 2


def test_the_default_fraction_is_ten_percent():
    assert FOOTPRINT_PEAK_FRACTION == 0.10
    arc, invvar, maskbits = _faint()
    np.testing.assert_array_equal(arc_footprint(arc), arc_footprint(arc, 0.10))
    _assert_metrics(arc_metrics(arc, invvar, maskbits), _truth(arc, invvar, maskbits, 0.10))


@pytest.mark.parametrize("fill", [0.0, -0.3])
def test_an_arc_without_a_positive_pixel_has_an_empty_footprint_and_no_warning(fill):
    arc = np.full((2, 3), fill)
    invvar = np.full((2, 3), 4.0)
    maskbits = np.zeros((2, 3), dtype=np.int32)
    maskbits[0, 0] = BRIGHT
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fp = arc_footprint(arc)
        assert fp.dtype == bool and fp.shape == (2, 3) and not fp.any()
        m = arc_metrics(arc, invvar, maskbits)
    assert m.footprint_pixels == 0
    assert (m.arc_snr_footprint, m.arc_snr_peak) == (0.0, 0.0)
    # the whole-stamp SNR: 5 good pixels of value `fill`, var 0.25 each
    assert m.arc_snr == pytest.approx(5 * fill / math.sqrt(5 * 0.25), abs=0)
    assert math.isnan(m.arc_masked_frac)   # no positive flux: no fraction


def test_every_footprint_pixel_masked_gives_zero_snrs_not_one():
    arc, invvar, maskbits = _faint()
    fp = _truth(arc, invvar, maskbits)[5]
    for y, x in fp:
        maskbits[y, x] = BRIGHT
    m = arc_metrics(arc, invvar, maskbits)
    assert (m.footprint_pixels, m.arc_snr_footprint, m.arc_snr_peak) == (0, 0.0, 0.0)
    _assert_metrics(m, _truth(arc, invvar, maskbits))


def test_no_good_pixel_gives_zero_snr_and_masked_fraction_one():
    arc, invvar, maskbits = _faint()
    m = arc_metrics(arc, np.full_like(invvar, np.inf), maskbits)
    assert (m.arc_snr, m.arc_snr_footprint, m.arc_snr_peak, m.arc_masked_frac, m.footprint_pixels) == \
        (0.0, 0.0, 0.0, 1.0, 0)


def test_positive_flux_at_most_one_nmgy_still_gives_a_masked_fraction():
    # positive flux 0.6 (< 1), 0.2 of it masked
    arc = np.array([[0.4, 0.2], [-0.1, 0.0]])
    invvar = np.ones((2, 2))
    maskbits = np.array([[0, BRIGHT], [BRIGHT, 0]], dtype=np.int32)
    m = arc_metrics(arc, invvar, maskbits)
    assert m.arc_masked_frac == pytest.approx(0.2 / 0.6, rel=1e-15)
    # exactly 1 nmgy of positive flux
    arc1 = np.array([[0.75, 0.25], [-0.1, 0.0]])
    assert arc_metrics(arc1, invvar, maskbits).arc_masked_frac == 0.25


def test_float32_pixels_are_summed_in_float64():
    """Float32 stamps (as stored): every sum and ratio equals the float64 one over the same float32
    values (float32 arithmetic would be off by ~1e-7)."""
    rng = np.random.default_rng(20)
    arc = rng.uniform(-0.05, 1.0, (6, 7)).astype(np.float32)
    arc[0, 0] = np.float32(2.0**24)   # float32 cannot add 1 to this
    arc[0, 1:4] = 1.0
    invvar = rng.uniform(0.5, 30.0, (6, 7)).astype(np.float32)
    maskbits = np.zeros((6, 7), dtype=np.int32)
    maskbits[3, 2] = maskbits[5, 6] = BRIGHT
    truth = _truth(arc, invvar, maskbits, 1e-8)   # footprint: every pixel >= 1e-8 x 2^24
    assert truth[4] > 20
    _assert_metrics(arc_metrics(arc, invvar, maskbits, 1e-8), truth)
    arc[0, 0] = 0.9
    _assert_metrics(arc_metrics(arc, invvar, maskbits), _truth(arc, invvar, maskbits))


def test_integer_and_list_inputs():
    arc = [[0, 2, 5], [1, 0, -1]]
    invvar = [[1, 4, 1], [1, 0, 1]]
    maskbits = np.array([[0, 0, 0], [0, 0, BRIGHT]], dtype=np.int32)
    _assert_metrics(arc_metrics(np.array(arc), np.array(invvar), maskbits), _truth(arc, invvar, maskbits))
    # by hand: good = 4 pixels (0, 2, 5, 1), var 1 + 0.25 + 1 + 1
    assert arc_metrics(arc, invvar, maskbits).arc_snr == pytest.approx(8 / math.sqrt(3.25), rel=1e-15)


def _bad_truth(invvar, maskbits):
    nb, ny, nx = len(invvar), len(invvar[0]), len(invvar[0][0])
    bad = sum(1 for y in range(ny) for x in range(nx)
              if not all(_good(float(invvar[b][y][x]), maskbits[y][x]) for b in range(nb)))
    return bad / (ny * nx)


def test_bad_pixel_frac_on_a_non_square_stamp_by_hand():
    invvar = np.ones((3, 2, 5))
    invvar[0, 0, 0] = 0.0        # g only
    invvar[1, 0, 0] = -1.0       # the same pixel in r
    invvar[1, 1, 3] = np.nan     # r only
    invvar[2, 0, 4] = np.inf     # z only
    maskbits = np.zeros((2, 5), dtype=np.int32)
    maskbits[1, 1] = BRIGHT
    maskbits[1, 2] = WISEM1      # not bad
    assert _bad_truth(invvar, maskbits) == 4 / 10
    got = bad_pixel_frac(invvar, maskbits)
    assert type(got) is float and got == pytest.approx(0.4, rel=1e-15)
    # lists are accepted; no bad pixel gives exactly 0, every pixel bad exactly 1
    assert bad_pixel_frac(np.ones((3, 2, 5)).tolist(), np.zeros((2, 5), np.int32)) == 0.0
    assert bad_pixel_frac(np.zeros((1, 2, 5)), np.zeros((2, 5), np.int32)) == 1.0


def test_arc_fluxes_sum_float32_stamps_in_float64():
    band = np.array([[2.0**24, 1.0], [1.0, 1.0]], dtype=np.float32)
    got = arc_fluxes(np.stack([band, -band, band / 4]))
    assert got == [2.0**24 + 3, -(2.0**24 + 3), 2.0**22 + 0.75]
    assert all(type(v) is float for v in got)
    assert arc_fluxes([[[0.5, 0.25]], [[1, 2]]]) == [0.75, 3.0]


def _stamp(bands):
    """arc / invvar planes in the order `bands`, each band with its own values."""
    planes = {"g": (np.full((3, 5), 0.3), np.full((3, 5), 2.0)),
              "r": _faint()[:2],
              "z": (np.linspace(0.0, 1.4, 15).reshape(3, 5), np.full((3, 5), 8.0))}
    arc = np.stack([planes[b][0] for b in bands]).astype(np.float32)
    invvar = np.stack([planes[b][1] for b in bands]).astype(np.float32)
    return arc, invvar


@pytest.mark.parametrize("bands", [("g", "r", "z"), ("z", "g", "r"), ("r", "z")])
def test_pixel_quantities_in_any_band_order_measure_r(bands):
    arc, invvar = _stamp(bands)
    maskbits = _faint()[2]
    q = pixel_quantities(arc, invvar, maskbits, bands)
    r = bands.index("r")
    snr, snr_fp, snr_peak, masked, _, _ = _truth(arc[r], invvar[r], maskbits)
    expected = {"bad_pixel_frac": _bad_truth(invvar, maskbits),
                **{f"arc_flux_{b}": math.fsum(float(v) for v in arc[i].ravel()) for i, b in enumerate(bands)},
                "arc_snr": snr, "arc_snr_footprint": snr_fp, "arc_snr_peak": snr_peak,
                "arc_masked_frac": masked}
    assert set(q) == set(expected)
    for k, v in expected.items():
        assert q[k] == pytest.approx(v, rel=1e-13, abs=0), k
    assert q["bad_pixel_frac"] == pytest.approx(2 / 15)


def test_pixel_quantities_without_r_has_fluxes_only_and_a_control_bad_pixel_frac_only():
    arc, invvar = _stamp(("g", "z"))
    maskbits = _faint()[2]
    q = pixel_quantities(arc.tolist(), invvar.tolist(), maskbits, ["g", "z"])
    assert q == pytest.approx({"bad_pixel_frac": 2 / 15, "arc_flux_g": 15 * float(np.float32(0.3)),
                               "arc_flux_z": math.fsum(float(v) for v in arc[1].ravel())}, rel=1e-13)
    assert set(q) == {"bad_pixel_frac", "arc_flux_g", "arc_flux_z"}
    control = pixel_quantities(None, invvar.tolist(), maskbits, ("g", "z"))
    assert control == {"bad_pixel_frac": pytest.approx(2 / 15, rel=1e-15)} and list(control) == ["bad_pixel_frac"]
