"""DR10 `maskbits` bit meanings (legacysurvey.org/dr10/bitmasks) and which bits make a pixel bad.

The arc SNR and `bad_pixel_frac` ignore pixels with any BAD_MASKBITS bit set or invvar <= 0.
"""

import numpy as np

NPRIMARY = 1 << 0   # outside the brick's unique (primary) area
BRIGHT = 1 << 1     # within the mask of a bright (Tycho-2 / Gaia G < 13) star
SATUR_G = 1 << 2    # saturated in g
SATUR_R = 1 << 3
SATUR_Z = 1 << 4
ALLMASK_G = 1 << 5  # every exposure masked in g
ALLMASK_R = 1 << 6
ALLMASK_Z = 1 << 7
WISEM1 = 1 << 8     # WISE W1 bright-star mask
WISEM2 = 1 << 9
BAILOUT = 1 << 10   # no fit attempted in this blob
MEDIUM = 1 << 11    # within the mask of a medium-bright (Gaia G < 16) star
GALAXY = 1 << 12    # within an SGA large galaxy
CLUSTER = 1 << 13   # within a globular cluster

NAMES = {
    NPRIMARY: "NPRIMARY", BRIGHT: "BRIGHT", SATUR_G: "SATUR_G", SATUR_R: "SATUR_R",
    SATUR_Z: "SATUR_Z", ALLMASK_G: "ALLMASK_G", ALLMASK_R: "ALLMASK_R", ALLMASK_Z: "ALLMASK_Z",
    WISEM1: "WISEM1", WISEM2: "WISEM2", BAILOUT: "BAILOUT", MEDIUM: "MEDIUM",
    GALAXY: "GALAXY", CLUSTER: "CLUSTER",
}

SATUR = {"g": SATUR_G, "r": SATUR_R, "z": SATUR_Z}
ALLMASK = {"g": ALLMASK_G, "r": ALLMASK_R, "z": ALLMASK_Z}

#: Bits that make an optical pixel unusable for photometry. WISE bits, GALAXY and CLUSTER flag
#: real sky, not bad pixels, so they are not in here.
BAD_MASKBITS = BRIGHT | SATUR_G | SATUR_R | SATUR_Z | ALLMASK_G | ALLMASK_R | ALLMASK_Z | BAILOUT | MEDIUM


def good_pixels(invvar: np.ndarray, maskbits: np.ndarray) -> np.ndarray:
    """Boolean map of usable pixels: positive finite invvar and no bad maskbit."""
    return np.isfinite(invvar) & (invvar > 0) & ((maskbits & BAD_MASKBITS) == 0)
