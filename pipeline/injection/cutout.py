"""Cut a 64x64 stamp around an LRG out of a brick's coadds (contract.PIXEL_LAYOUT).

The LRG's WCS position is converted to 0-based brick pixel coordinates (x, y); the nearest pixel
(xc, yc) = (floor(x + 0.5), floor(y + 0.5)) becomes stamp pixel [32, 32], so the stamp covers
brick columns xc-32 .. xc+31 and rows yc-32 .. yc+31. The sub-pixel remainder (x - xc, y - yc),
within +-0.5 pixel, is kept so the lens can be centred on the LRG itself.

Pixel values are copied bit for bit (no resampling, no sky change): a control stamp *is* the survey.

Row errors (the stamp cannot be used; RowError, becomes cutout_ok=false):
- the 64x64 window leaves the brick (LRG within 32 pixels of an edge);
- any image pixel is NaN or infinite: DR10 writes 0 (with invvar 0) where there is no data, so a
  non-finite value is a corrupt file or a broken reader, in masked pixels as much as unmasked ones,
  and would poison every sum downstream;
- any invvar pixel is NaN, infinite or negative: invvar is 0 (no information) or positive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.errors import RowError
from pipeline.survey.brick import BrickCoadds


@dataclass
class Cutout:
    bands: tuple[str, ...]
    #: [nb, size, size] float32, nanomaggies per pixel, copied from the brick
    image: np.ndarray
    #: [nb, size, size] float32, 1/nanomaggies^2
    invvar: np.ndarray
    #: [size, size] int32 DR10 maskbits
    maskbits: np.ndarray
    #: brick pixel (0-based) of stamp pixel [0, 0]
    x0: int
    y0: int
    #: brick pixel (0-based) that holds the LRG; stamp pixel [size//2, size//2]
    xc: int
    yc: int
    #: LRG position minus the centre pixel, in pixels (+x, +y), each within [-0.5, 0.5)
    dx_pix: float
    dy_pix: float
    #: band -> PSF FWHM (arcsec) from the brick's psfsize map at (xc, yc); None if no map or the
    #: map has no positive finite value there
    psfsize: dict[str, float | None]


def cutout_at(brick: BrickCoadds, ra_deg: float, dec_deg: float, size_pix: int = 64,
              bands: tuple[str, ...] | None = None) -> Cutout:
    """The stamp centred on (ra, dec). Raises RowError with a reason naming the brick."""
    bands = tuple(bands or brick.bands)
    missing = [b for b in bands if b not in brick.image or b not in brick.invvar]
    if missing:
        raise RowError(f"brick {brick.brickname} has no image/invvar for band(s) {missing}")
    if not (math.isfinite(ra_deg) and math.isfinite(dec_deg)):
        raise RowError(f"LRG position is not finite: ra={ra_deg}, dec={dec_deg}")
    x, y = brick.wcs.all_world2pix(np.array([ra_deg]), np.array([dec_deg]), 0)
    x, y = float(x[0]), float(y[0])
    if not (math.isfinite(x) and math.isfinite(y)):
        raise RowError(f"(ra, dec) = ({ra_deg}, {dec_deg}) has no pixel position in brick {brick.brickname}")
    xc, yc = math.floor(x + 0.5), math.floor(y + 0.5)
    half = size_pix // 2
    x0, y0 = xc - half, yc - half
    ny, nx = brick.shape
    if x0 < 0 or y0 < 0 or x0 + size_pix > nx or y0 + size_pix > ny:
        raise RowError(
            f"cutout leaves brick {brick.brickname}: needs x {x0}..{x0 + size_pix - 1}, "
            f"y {y0}..{y0 + size_pix - 1} but the brick has x 0..{nx - 1}, y 0..{ny - 1} "
            f"(LRG at pixel x={x:.1f}, y={y:.1f})"
        )
    win = (slice(y0, y0 + size_pix), slice(x0, x0 + size_pix))
    image = np.stack([np.asarray(brick.image[b][win], dtype=np.float32) for b in bands])
    invvar = np.stack([np.asarray(brick.invvar[b][win], dtype=np.float32) for b in bands])
    maskbits = np.array(brick.maskbits[win], dtype=np.int32)

    for i, b in enumerate(bands):
        bad_img = ~np.isfinite(image[i])
        if bad_img.any():
            raise RowError(f"brick {brick.brickname} band {b}: {int(bad_img.sum())} non-finite image "
                           f"pixel(s) in the cutout (x {x0}..{x0 + size_pix - 1}, y {y0}..{y0 + size_pix - 1})")
        bad_iv = ~np.isfinite(invvar[i]) | (invvar[i] < 0)
        if bad_iv.any():
            raise RowError(f"brick {brick.brickname} band {b}: {int(bad_iv.sum())} NaN/infinite/negative "
                           f"invvar pixel(s) in the cutout (x {x0}..{x0 + size_pix - 1}, y {y0}..{y0 + size_pix - 1})")

    psfsize: dict[str, float | None] = {}
    for b in bands:
        value = None
        if b in brick.psfsize:
            v = float(brick.psfsize[b][yc, xc])
            value = v if math.isfinite(v) and v > 0 else None  # DR10 writes 0 without coverage
        psfsize[b] = value
    return Cutout(bands=bands, image=image, invvar=invvar, maskbits=maskbits, x0=x0, y0=y0, xc=xc, yc=yc,
                  dx_pix=x - xc, dy_pix=y - yc, psfsize=psfsize)
