"""Physics invariants that catch unit bugs, shared by the injection tests and the gate.

The seed shipped arcs 1,111x too faint (flux per pixel fed to lenstronomy INTERPOL, which wants
surface brightness: 1/0.03**2 = 1,111). Those rows still had plausible-looking columns; what gives
them away is that the arc's flux does not equal the source's flux times the magnification. These
functions are vectorised over rows (numpy arrays or scalars) so the gate can run them on every row.
"""

from __future__ import annotations

import numpy as np

from pipeline.units import NMGY_ZEROPOINT_AB

#: Physical range of the total magnification of a strongly lensed extended source by an SIE.
#: Below 1 means flux was lost (a unit bug), above ~200 is a numerical blow-up.
MAGNIFICATION_RANGE = (1.0, 200.0)
#: arc flux / (source flux x magnification): the PSF conserves flux, but a large arc near the stamp
#: edge loses some of its PSF wings, so the ratio may dip a little below 1; it can never exceed 1
#: by more than rounding.
ARC_FLUX_RATIO_RANGE = (0.80, 1.02)


def source_flux_nmgy(src_mag):
    """Unlensed source flux from its AB magnitude."""
    return 10.0 ** ((NMGY_ZEROPOINT_AB - np.asarray(src_mag, dtype=float)) / 2.5)


def arc_flux_ratio(arc_flux_nmgy, src_mag, magnification):
    """arc flux in the stamp / (unlensed source flux x magnification); 1 for a correct render."""
    expected = source_flux_nmgy(src_mag) * np.asarray(magnification, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(arc_flux_nmgy, dtype=float) / expected


def rendered_flux_ratio(rendered_flux_nmgy, src_mag):
    """Rendered (unlensed, no PSF) flux / source flux from its magnitude; 1 for a correct render,
    0.0009 for the seed's flux-per-pixel bug at 0.03"/pixel."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(rendered_flux_nmgy, dtype=float) / source_flux_nmgy(src_mag)


#: Flux ratios are compared with their bounds after rounding to this many decimals. Why: the ratio
#: goes through 10**x, whose last bit differs between libm builds and CPUs (Intel and AMD, numpy and
#: the JVM): a row whose ratio is the bound itself would pass on one machine and fail on another.
#: Rounded (by correctly rounded operations only: x * 1e9, rint, / 1e9, identical in numpy and
#: Spark), a ratio within ~1e-10 of a bound IS the bound; the verdict can only differ where the
#: ratio lies within an ulp of a rounding midpoint (5e-10 away from a bound), far from where
#: rounding errors put boundary rows.
RATIO_DECIMALS = 9
_RATIO_SCALE = 10.0 ** RATIO_DECIMALS


def rounded_ratio(ratio):
    """The ratio on the 1e-9 grid the bounds are compared on (nan and inf stay non-finite)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.rint(np.asarray(ratio, dtype=float) * _RATIO_SCALE) / _RATIO_SCALE


def flux_is_consistent(ratio, bounds=ARC_FLUX_RATIO_RANGE):
    """True where a flux ratio, rounded to RATIO_DECIMALS, is inside `bounds` (nan and inf are
    inconsistent)."""
    ratio = rounded_ratio(ratio)
    return np.isfinite(ratio) & (ratio >= bounds[0]) & (ratio <= bounds[1])


def magnification_is_physical(magnification, bounds=MAGNIFICATION_RANGE):
    mu = np.asarray(magnification, dtype=float)
    return np.isfinite(mu) & (mu >= bounds[0]) & (mu <= bounds[1])


def hlr_in_bank_filter(hlr_arcsec, hlr_filter_arcsec):
    """Intrinsic source half-light radii must lie inside the bank's filter. Radii in pixels
    (x33 at 0.03"/pixel) or lensed sizes (the seed's 0.9-4.6") fail this."""
    hlr = np.asarray(hlr_arcsec, dtype=float)
    lo, hi = hlr_filter_arcsec
    return np.isfinite(hlr) & (hlr >= lo) & (hlr <= hi)
