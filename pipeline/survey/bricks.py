"""DR10 brick geometry: brick names, the brick TAN WCS, and which 64x64 cutouts fit in a brick.

DR10 coadds are 3600 x 3600 pixels at 0.262"/pixel on a TAN projection about the brick centre,
CRPIX at the array centre, north up and east left: CD1_1 = -0.262/3600 (+x towards decreasing
RA), CD2_2 = +0.262/3600 (+y towards increasing Dec).
"""

from __future__ import annotations

import math

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from pipeline.units import DR10_PIXSCALE_ARCSEC

DR10_BRICK_SIZE_PIX = 3600


def brickname_for(ra_deg: float, dec_deg: float) -> str:
    """DR10 brick name of a brick centred at (ra, dec): RA in units of 0.1 deg as 4 digits,
    'p' (Dec >= 0) or 'm', |Dec| in 0.1 deg as 3 digits, both truncated: (150.125, 2.25) ->
    '1501p022'. Rounding to 1e-6 first keeps 150.1 (stored as 150.0999...) at '1501'."""
    ra = float(ra_deg) % 360.0
    dec = float(dec_deg)
    if not -90.0 <= dec <= 90.0 or not math.isfinite(ra):
        raise ValueError(f"not a sky position: ra={ra_deg}, dec={dec_deg}")
    ra10 = int(math.floor(round(ra * 10.0, 6)))
    dec10 = int(math.floor(round(abs(dec) * 10.0, 6)))
    return f"{ra10:04d}{'p' if dec >= 0 else 'm'}{dec10:03d}"


def brick_header(
    ra_deg: float,
    dec_deg: float,
    width_pix: int,
    height_pix: int | None = None,
    pixscale_arcsec: float = DR10_PIXSCALE_ARCSEC,
) -> fits.Header:
    """FITS WCS keywords of a brick centred at (ra, dec), written as DR10 writes them (CD matrix).

    CRPIX is the array centre in FITS 1-based pixels: (W + 1) / 2, e.g. 1800.5 for 3600."""
    height_pix = width_pix if height_pix is None else height_pix
    scale_deg = pixscale_arcsec / 3600.0
    hdr = fits.Header()
    hdr["CTYPE1"] = ("RA---TAN", "TAN (gnomonic) projection")
    hdr["CTYPE2"] = ("DEC--TAN", "TAN (gnomonic) projection")
    hdr["CRVAL1"] = (float(ra_deg), "RA of reference point (deg)")
    hdr["CRVAL2"] = (float(dec_deg), "Dec of reference point (deg)")
    hdr["CRPIX1"] = ((width_pix + 1) / 2.0, "reference pixel x (1-based)")
    hdr["CRPIX2"] = ((height_pix + 1) / 2.0, "reference pixel y (1-based)")
    hdr["CD1_1"] = (-scale_deg, "deg per pixel; -x is east")
    hdr["CD1_2"] = (0.0, "")
    hdr["CD2_1"] = (0.0, "")
    hdr["CD2_2"] = (scale_deg, "deg per pixel; +y is north")
    hdr["RADESYS"] = "ICRS"
    hdr["IMAGEW"] = (int(width_pix), "image width (pixels)")
    hdr["IMAGEH"] = (int(height_pix), "image height (pixels)")
    return hdr


def brick_wcs(
    ra_deg: float,
    dec_deg: float,
    width_pix: int,
    height_pix: int | None = None,
    pixscale_arcsec: float = DR10_PIXSCALE_ARCSEC,
) -> WCS:
    """astropy WCS of a brick centred at (ra, dec); see `brick_header`."""
    height_pix = width_pix if height_pix is None else height_pix
    wcs = WCS(brick_header(ra_deg, dec_deg, width_pix, height_pix, pixscale_arcsec))
    wcs.pixel_shape = (int(width_pix), int(height_pix))
    return wcs


def nearest_pixel(coord_pix) -> np.ndarray:
    """Index of the pixel whose centre is nearest (0-based coordinates, centres at integers).
    Halves round up, never to even, so neighbouring positions cannot swap pixels."""
    return np.floor(np.asarray(coord_pix, dtype=float) + 0.5).astype(np.int64)


def cutout_inside(x_pix, y_pix, shape_yx: tuple[int, int], size_pix: int = 64) -> np.ndarray:
    """True where a size x size cutout centred on the nearest pixel to (x, y) lies wholly in a
    brick of shape (ny, nx). The centre pixel is the cutout's pixel (size/2, size/2), as in
    the data contract, so the cutout spans [xc - size/2, xc + size/2 - 1]."""
    ny, nx = shape_yx
    half = size_pix // 2
    xc, yc = nearest_pixel(x_pix), nearest_pixel(y_pix)
    return (xc - half >= 0) & (yc - half >= 0) & (xc + size_pix - half <= nx) & (yc + size_pix - half <= ny)
