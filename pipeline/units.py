"""Photometric and geometric constants shared by the whole pipeline.

Every flux in the pipeline is in nanomaggies (AB zero point 22.5), every angle in arcsec
unless a name says otherwise (`*_rad`, `*_deg`, `*_pix`).
"""

import math

#: DR10 coadd pixel scale.
DR10_PIXSCALE_ARCSEC = 0.262
#: AB zero point of a flux in nanomaggies: m = 22.5 - 2.5 log10(flux_nmgy).
NMGY_ZEROPOINT_AB = 22.5
#: AB zero point of HST ACS F814W counts/s as used by the GalSim COSMOS catalogues.
HST_F814W_ZEROPOINT_AB = 25.94
#: 1 HST count/s in nanomaggies: 10**((22.5 - 25.94) / 2.5) = 0.0421.
HST_COUNTS_PER_S_TO_NMGY = 10.0 ** ((NMGY_ZEROPOINT_AB - HST_F814W_ZEROPOINT_AB) / 2.5)
#: COSMOS / GalSim real-galaxy pixel scale.
COSMOS_PIXSCALE_ARCSEC = 0.03

#: FWHM of a Gaussian = this factor times sigma.
GAUSSIAN_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def mag_to_nmgy(mag_ab: float) -> float:
    """AB magnitude to flux in nanomaggies."""
    return 10.0 ** ((NMGY_ZEROPOINT_AB - mag_ab) / 2.5)


def nmgy_to_mag(flux_nmgy: float) -> float:
    """Flux in nanomaggies to AB magnitude (nan for non-positive flux)."""
    if not flux_nmgy > 0:
        return float("nan")
    return NMGY_ZEROPOINT_AB - 2.5 * math.log10(flux_nmgy)
