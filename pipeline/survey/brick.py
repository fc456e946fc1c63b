"""In-memory DR10 brick coadds: what the reader returns and the cutout code consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.wcs import WCS


@dataclass
class BrickCoadds:
    """One brick's coadds, as read from `legacysurvey-<brick>-{image,invvar}-<band>.fits.fz`
    and `-maskbits.fits.fz`. Arrays are [y, x] in FITS pixel order."""

    brickname: str
    wcs: WCS
    #: band -> image in nanomaggies per pixel (float32)
    image: dict[str, np.ndarray]
    #: band -> inverse variance in 1/nanomaggies^2 (float32); 0 where masked
    invvar: dict[str, np.ndarray]
    #: DR10 maskbits (int32)
    maskbits: np.ndarray
    #: band -> PSF FWHM map in arcsec, when `-psfsize-<band>` files exist
    psfsize: dict[str, np.ndarray] = field(default_factory=dict)
    #: the files each array came from, for error messages
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.maskbits.shape

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.image)
