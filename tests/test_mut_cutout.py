"""pipeline.injection.cutout against truth known without the module (issue 20, mutation testing).

The LRG always sits at the WCS reference point (CRVAL), so its 0-based brick pixel is CRPIX - 1
(the FITS definition; astropy returns it to within 1e-10 pixel): the centre pixel, window, sub-pixel
offset and edge cases follow by hand from the module docstring. Brick pixels carry their own
coordinates (value = band offset + 1000 y + x), so a copied window is checked against the formula,
not against a slice of the same arrays; every RowError message is compared in full."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.wcs import WCS

from pipeline.errors import RowError
from pipeline.injection.cutout import Cutout, cutout_at
from pipeline.survey.brick import BrickCoadds

RA, DEC = 150.0, 2.0
BAND_OFFSET = {"g": 100_000.0, "r": 200_000.0, "z": 300_000.0}


def _brick(x, y, nx=40, ny=30, bands=("g", "r", "z"), dtype=np.float32, psf=None, name="1500p020"):
    """A brick of nx x ny pixels whose LRG (RA, DEC) is at 0-based pixel (x, y)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [RA, DEC]
    w.wcs.crpix = [x + 1.0, y + 1.0]
    w.wcs.cd = np.array([[-0.262 / 3600.0, 0.0], [0.0, 0.262 / 3600.0]])
    yy, xx = np.mgrid[0:ny, 0:nx]
    image = {b: (BAND_OFFSET[b] + 1000.0 * yy + xx).astype(dtype) for b in bands}
    invvar = {b: (1.0 + (BAND_OFFSET[b] + 1000.0 * yy + xx) / 1e6).astype(dtype) for b in bands}
    maskbits = (7 * yy + 3 * xx).astype(np.int16)
    if psf is None:
        psf = {b: np.full((ny, nx), 1.0 + i / 10.0) for i, b in enumerate(bands)}
    return BrickCoadds(brickname=name, wcs=w, image=image, invvar=invvar, maskbits=maskbits, psfsize=psf)


def _window_truth(band, x0, y0, size):
    yy, xx = np.mgrid[y0:y0 + size, x0:x0 + size]
    return BAND_OFFSET[band] + 1000.0 * yy + xx


def _check_copy(cut, bands, x0, y0, size):
    assert cut.bands == tuple(bands)
    assert cut.image.shape == cut.invvar.shape == (len(bands), size, size)
    assert cut.image.dtype == np.float32 and cut.invvar.dtype == np.float32
    assert cut.maskbits.dtype == np.int32 and cut.maskbits.shape == (size, size)
    for i, b in enumerate(bands):
        truth = _window_truth(b, x0, y0, size)
        np.testing.assert_array_equal(cut.image[i], truth.astype(np.float32))
        np.testing.assert_array_equal(cut.invvar[i], (1.0 + truth / 1e6).astype(np.float32))
    yy, xx = np.mgrid[y0:y0 + size, x0:x0 + size]
    np.testing.assert_array_equal(cut.maskbits, 7 * yy + 3 * xx)


@pytest.mark.parametrize("x,y,xc,yc", [(20.3, 14.6, 20, 15), (20.500001, 14.499999, 21, 14), (19.49, 15.0, 19, 15),
                                       (20.0, 15.499, 20, 15)])
def test_centre_pixel_window_and_offset_by_hand(x, y, xc, yc):
    """(xc, yc) = floor(x + 0.5), floor(y + 0.5); dx in [-0.5, 0.5). (Positions exactly at .5 are
    not used: astropy's all_world2pix returns 14.49999999995 for CRPIX 15.5, projection round-off.)"""
    cut = cutout_at(_brick(x, y), RA, DEC, 8, ("g", "r", "z"))
    assert isinstance(cut, Cutout)
    assert (cut.xc, cut.yc, cut.x0, cut.y0) == (xc, yc, xc - 4, yc - 4)
    assert all(type(v) is int for v in (cut.xc, cut.yc, cut.x0, cut.y0))
    assert cut.dx_pix == pytest.approx(x - xc, abs=1e-9) and cut.dy_pix == pytest.approx(y - yc, abs=1e-9)
    assert -0.5 <= cut.dx_pix < 0.5 and -0.5 <= cut.dy_pix < 0.5
    _check_copy(cut, "grz", xc - 4, yc - 4, 8)


def test_odd_size_and_the_default_size_and_bands():
    cut = cutout_at(_brick(20.0, 15.0), RA, DEC, 7)
    assert (cut.x0, cut.y0) == (17, 12)   # half = 7 // 2 = 3
    _check_copy(cut, "grz", 17, 12, 7)
    big = _brick(70.2, 80.0, nx=140, ny=150)
    cut = cutout_at(big, RA, DEC)
    assert (cut.xc, cut.yc, cut.x0, cut.y0) == (70, 80, 38, 48)
    _check_copy(cut, "grz", 38, 48, 64)


def test_the_bands_asked_for_in_their_order():
    cut = cutout_at(_brick(20.0, 15.0), RA, DEC, 6, ("z", "g"))
    _check_copy(cut, ("z", "g"), 17, 12, 6)
    assert list(cut.psfsize) == ["z", "g"] and cut.psfsize == {"z": 1.2, "g": 1.0}
    cut = cutout_at(_brick(20.0, 15.0), RA, DEC, 6, ["r"])
    _check_copy(cut, ("r",), 17, 12, 6)


def test_float64_and_int16_brick_arrays_come_out_float32_and_int32_copies():
    brick = _brick(20.0, 15.0, dtype=np.float64)
    cut = cutout_at(brick, RA, DEC, 6)
    _check_copy(cut, "grz", 17, 12, 6)
    cut.image[:] = 0
    cut.invvar[:] = 0
    cut.maskbits[:] = 0
    assert brick.image["r"][15, 20] == 215_020.0 and brick.maskbits[15, 20] == 7 * 15 + 3 * 20


@pytest.mark.parametrize("size", [8, 7])
def test_a_window_touching_each_edge_is_cut_one_past_it_is_refused(size):
    nx, ny, half = 40, 30, size // 2
    lo, hi_x, hi_y = half, nx - size + half, ny - size + half     # centre pixels of the extreme windows
    for x, y, x0, y0 in [(lo, lo, 0, 0), (hi_x, hi_y, nx - size, ny - size)]:
        _check_copy(cutout_at(_brick(x, y, nx, ny), RA, DEC, size), "grz", x0, y0, size)
    for x, y in [(lo - 1, 15), (20, lo - 1), (hi_x + 1, 15), (20, hi_y + 1)]:
        x0, y0 = x - half, y - half
        with pytest.raises(RowError) as e:
            cutout_at(_brick(x, y, nx, ny), RA, DEC, size)
        assert str(e.value) == (
            f"cutout leaves brick 1500p020: needs x {x0}..{x0 + size - 1}, y {y0}..{y0 + size - 1} "
            f"but the brick has x 0..39, y 0..29 (LRG at pixel x={x}.0, y={y}.0)")


def test_missing_band_and_non_finite_positions_are_refused_with_their_message():
    brick = _brick(20.0, 15.0)
    del brick.invvar["r"]
    with pytest.raises(RowError) as e:
        cutout_at(brick, RA, DEC, 6)
    assert str(e.value) == "brick 1500p020 has no image/invvar for band(s) ['r']"
    brick = _brick(20.0, 15.0)
    del brick.image["z"]
    brick.image["i"] = brick.image["g"]
    with pytest.raises(RowError) as e:
        cutout_at(brick, RA, DEC, 6, ("g", "z"))
    assert str(e.value) == "brick 1500p020 has no image/invvar for band(s) ['z']"
    brick = _brick(20.0, 15.0)
    for ra, dec in [(math.nan, DEC), (RA, math.inf), (math.nan, math.nan)]:
        with pytest.raises(RowError) as e:
            cutout_at(brick, ra, dec, 6)
        assert str(e.value) == f"LRG position is not finite: ra={ra}, dec={dec}"
    # the antipode of a TAN projection has no pixel position
    with pytest.raises(RowError) as e:
        cutout_at(brick, RA + 180.0, -DEC, 6)
    assert str(e.value) == f"(ra, dec) = ({RA + 180.0}, {-DEC}) has no pixel position in brick 1500p020"


@pytest.mark.parametrize("band", ["g", "r", "z"])
def test_bad_pixels_inside_the_window_are_counted_outside_ignored(band):
    brick = _brick(20.0, 15.0)
    brick.image[band][0, 0] = np.nan          # outside the 6 x 6 window (x 17..22, y 12..17)
    brick.invvar[band][29, 39] = -1.0
    brick.invvar[band][12, 17] = 0.0          # no information: allowed
    brick.invvar[band][17, 22] = 0.5          # below 1: allowed
    cut = cutout_at(brick, RA, DEC, 6)
    assert cut.invvar["grz".index(band)][0, 0] == 0.0
    brick.image[band][12, 17] = np.inf
    brick.image[band][17, 22] = -np.inf
    brick.image[band][13, 18] = np.nan
    with pytest.raises(RowError) as e:
        cutout_at(brick, RA, DEC, 6)
    assert str(e.value) == (f"brick 1500p020 band {band}: 3 non-finite image pixel(s) in the cutout "
                            "(x 17..22, y 12..17)")
    brick = _brick(20.0, 15.0)
    brick.invvar[band][12, 17] = -1e-30
    brick.invvar[band][13, 17] = np.nan
    with pytest.raises(RowError) as e:
        cutout_at(brick, RA, DEC, 6)
    assert str(e.value) == (f"brick 1500p020 band {band}: 2 NaN/infinite/negative invvar pixel(s) in the "
                            "cutout (x 17..22, y 12..17)")
    brick.invvar[band][13, 17] = np.inf
    brick.invvar[band][12, 17] = 1.0
    with pytest.raises(RowError, match=f"band {band}: 1 NaN/infinite/negative invvar"):
        cutout_at(brick, RA, DEC, 6)


def test_psfsize_at_the_centre_pixel_or_none():
    ny, nx = 30, 40
    yy, xx = np.mgrid[0:ny, 0:nx]
    maps = {"g": 0.01 * yy + 0.001 * xx + 0.5, "r": np.zeros((ny, nx)), "z": np.full((ny, nx), 0.8)}
    cut = cutout_at(_brick(20.3, 15.2, psf=maps), RA, DEC, 6)
    assert cut.psfsize == {"g": 0.01 * 15 + 0.001 * 20 + 0.5, "r": None, "z": 0.8}
    assert type(cut.psfsize["g"]) is float
    for bad in (np.nan, np.inf, -1.2, 0.0):
        maps["z"][15, 20] = bad
        assert cutout_at(_brick(20.3, 15.2, psf=maps), RA, DEC, 6).psfsize["z"] is None
    maps["z"][15, 20] = 2.5
    del maps["r"]
    cut = cutout_at(_brick(20.3, 15.2, psf=maps), RA, DEC, 6)
    assert cut.psfsize == {"g": pytest.approx(0.67), "r": None, "z": 2.5}


class _OneAxisWCS:
    """A WCS stand-in whose world-to-pixel gives a finite value on one axis only (a real TAN WCS
    gives NaN on both axes together, so only a stand-in reaches the 'either axis' case)."""

    def __init__(self, x, y):
        self.xy = (x, y)

    def all_world2pix(self, ra, dec, origin):
        assert origin == 0 and list(ra) == [RA] and list(dec) == [DEC]
        return np.array([self.xy[0]]), np.array([self.xy[1]])


@pytest.mark.parametrize("x,y", [(20.0, math.nan), (math.nan, 15.0), (math.inf, 15.0), (20.0, -math.inf)])
def test_a_pixel_position_non_finite_on_one_axis_is_refused(x, y):
    brick = _brick(20.0, 15.0)
    brick.wcs = _OneAxisWCS(x, y)
    with pytest.raises(RowError) as e:
        cutout_at(brick, RA, DEC, 6)
    assert str(e.value) == f"(ra, dec) = ({RA}, {DEC}) has no pixel position in brick 1500p020"
    brick.wcs = _OneAxisWCS(20.0, 15.0)
    _check_copy(cutout_at(brick, RA, DEC, 6), "grz", 17, 12, 6)
