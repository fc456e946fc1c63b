"""pipeline.survey.maskbits against the Legacy Surveys' published MASKBITS table (issue 20).

Independent truth: the table below is typed from the Legacy Surveys' bitmask page, NOT derived
from the module's constants. Source: https://www.legacysurvey.org/dr10/bitmasks/ (the DR10 page
carries the same MASKBITS table as DR9's, https://www.legacysurvey.org/dr9/bitmasks/ , whose
copy we read: "These definitions apply to both the values in the coadd/*/*/*maskbits* files and
to MASKBITS columns in the Tractor and sweeps catalogs"; bits 14 and 15 are the i-band bits,
"always zero prior to DR10", which this grz pipeline does not use):

    Bit  Name       Description
    0    NPRIMARY   touches a pixel that is outside the BRICK_PRIMARY region of a brick
    1    BRIGHT     touches a pixel within [half of] the locus of a radius-magnitude relation ...
                    Tycho sources with MAG_VT < 13 and Gaia stars with G < 13
    2    SATUR_G    touches a pixel that was saturated in at least one g-band image
    3    SATUR_R    touches a pixel that was saturated in at least one r-band image
    4    SATUR_Z    touches a pixel that was saturated in at least one z-band image
    5    ALLMASK_G  touches a pixel that has any of the ALLMASK_G bits set
    6    ALLMASK_R  touches a pixel that has any of the ALLMASK_R bits set
    7    ALLMASK_Z  touches a pixel that has any of the ALLMASK_Z bits set
    8    WISEM1     touches a pixel in a WISEMASK_W1 bright star mask
    9    WISEM2     touches a pixel in a WISEMASK_W2 bright star mask
    10   BAILOUT    touches a pixel in a blob where we "bailed out" of source fitting
    11   MEDIUM     touches a pixel within the locus of a radius-magnitude relation ... Gaia
                    stars with G < 16
    12   GALAXY     touches a pixel in an SGA large galaxy
    13   CLUSTER    touches a pixel in a globular cluster
"""

import numpy as np
import pytest

from pipeline.survey import maskbits as mb

#: (bit number, name) exactly as published (see the module docstring)
PUBLISHED_DR10_MASKBITS = (
    (0, "NPRIMARY"), (1, "BRIGHT"), (2, "SATUR_G"), (3, "SATUR_R"), (4, "SATUR_Z"),
    (5, "ALLMASK_G"), (6, "ALLMASK_R"), (7, "ALLMASK_Z"), (8, "WISEM1"), (9, "WISEM2"),
    (10, "BAILOUT"), (11, "MEDIUM"), (12, "GALAXY"), (13, "CLUSTER"),
)

#: Bits whose pixels are bad for optical photometry (the module's stated policy: stars,
#: saturation, all-exposures-masked, bail-outs; NOT the WISE masks, SGA galaxies, globular
#: clusters or NPRIMARY, which flag real sky). Written by bit NUMBER, from the published table.
BAD_BY_NUMBER = {1, 2, 3, 4, 5, 6, 7, 10, 11}


@pytest.mark.parametrize("bit, name", PUBLISHED_DR10_MASKBITS)
def test_each_constant_is_the_published_bit(bit, name):
    assert getattr(mb, name) == 2**bit, f"{name} is bit {bit} in DR10 (value {2**bit})"
    assert mb.NAMES[2**bit] == name


def test_no_bit_beyond_the_published_table():
    assert set(mb.NAMES) == {2**b for b, _ in PUBLISHED_DR10_MASKBITS}
    assert mb.SATUR == {"g": 2**2, "r": 2**3, "z": 2**4}
    assert mb.ALLMASK == {"g": 2**5, "r": 2**6, "z": 2**7}


def test_bad_maskbits_by_published_bit_number():
    assert mb.BAD_MASKBITS == sum(2**b for b in BAD_BY_NUMBER)


@pytest.mark.parametrize("bit, name", PUBLISHED_DR10_MASKBITS)
def test_good_pixels_on_a_pixel_with_one_published_bit_set(bit, name):
    """A literal DR10 maskbits value (2**bit, as read from a coadd file) -> good or bad pixel."""
    maskbits = np.array([[0, 2**bit]], dtype=np.int32)
    invvar = np.ones((1, 2), dtype=np.float32)
    good = mb.good_pixels(invvar, maskbits)
    assert good[0, 0]
    assert good[0, 1] == (bit not in BAD_BY_NUMBER), f"bit {bit} ({name})"


def test_good_pixels_needs_positive_finite_invvar():
    maskbits = np.zeros((1, 4), dtype=np.int32)
    invvar = np.array([[1.0, 0.0, -1.0, np.nan]], dtype=np.float32)
    assert mb.good_pixels(invvar, maskbits).tolist() == [[True, False, False, False]]
