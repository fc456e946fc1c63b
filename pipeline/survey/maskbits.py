"""DR10 `maskbits` bit meanings (legacysurvey.org/dr10/bitmasks) and which bits make a pixel bad.

The arc SNR and `bad_pixel_frac` ignore pixels with any BAD_MASKBITS bit set or invvar <= 0.
"""

import numpy as np

from pipeline.bands import BAND_TABLE

#: per band (pipeline.bands: each band's DR10 bits): saturated in that band / every exposure masked
SATUR = {b.name: b.satur_bit for b in BAND_TABLE}
ALLMASK = {b.name: b.allmask_bit for b in BAND_TABLE}

NPRIMARY = 1 << 0   # outside the brick's unique (primary) area
BRIGHT = 1 << 1     # within the mask of a bright (Tycho-2 / Gaia G < 13) star
SATUR_G = SATUR["g"]  # 1 << 2, saturated in g
SATUR_R = SATUR["r"]  # 1 << 3
SATUR_Z = SATUR["z"]  # 1 << 4
ALLMASK_G = ALLMASK["g"]  # 1 << 5, every exposure masked in g
ALLMASK_R = ALLMASK["r"]  # 1 << 6
ALLMASK_Z = ALLMASK["z"]  # 1 << 7
WISEM1 = 1 << 8     # WISE W1 bright-star mask
WISEM2 = 1 << 9
BAILOUT = 1 << 10   # no fit attempted in this blob
MEDIUM = 1 << 11    # within the mask of a medium-bright (Gaia G < 16) star
GALAXY = 1 << 12    # within an SGA large galaxy
CLUSTER = 1 << 13   # within a globular cluster

NAMES = {
    NPRIMARY: "NPRIMARY", BRIGHT: "BRIGHT",
    **{bit: f"SATUR_{b.upper()}" for b, bit in SATUR.items()},
    **{bit: f"ALLMASK_{b.upper()}" for b, bit in ALLMASK.items()},
    WISEM1: "WISEM1", WISEM2: "WISEM2", BAILOUT: "BAILOUT", MEDIUM: "MEDIUM",
    GALAXY: "GALAXY", CLUSTER: "CLUSTER",
}

#: Bits that make an optical pixel unusable for photometry: BRIGHT, BAILOUT, MEDIUM and every
#: band's SATUR / ALLMASK. WISE bits, GALAXY and CLUSTER flag real sky, not bad pixels, so they
#: are not in here.
BAD_MASKBITS = BRIGHT | BAILOUT | MEDIUM
for _bit in (*SATUR.values(), *ALLMASK.values()):
    BAD_MASKBITS |= _bit
del _bit


def good_pixels(invvar: np.ndarray, maskbits: np.ndarray) -> np.ndarray:
    """Boolean map of usable pixels: positive finite invvar and no bad maskbit."""
    return np.isfinite(invvar) & (invvar > 0) & ((maskbits & BAD_MASKBITS) == 0)
