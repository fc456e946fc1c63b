"""Optical colours of the lensed sources: the physical source model's reference distribution.

A COSMOS galaxy is imaged in one band (HST F814W); its DECam g, r, z magnitudes come from its own
F814W magnitude and the colours of a star-forming galaxy template at its redshift:

    r = F814W + (r - F814W)(SED, z),  g = r + (g - r)(SED, z) + e_gr,  z_mag = r - (r - z)(SED, z) - e_rz

with e ~ Normal(0, colour scatter), clipped at +-3 sigma. Templates: the Coleman, Wu & Weedman
(1980, ApJS 43, 393) irregular (Im) and Scd spectra, the star-forming types that dominate the
faint blue population lensed by galaxy-scale lenses, redshifted through the DECam g, r, z and
ACS F814W passbands with Lyman-series IGM absorption (Madau 1995, ApJ 441, 18). The table
below is the one computed from those templates in ../shared/research/source-model.md; its
ranges agree with lens simulators that take per-band magnitudes from photometry (Rojas et al.
2022: g - r 0.17-0.58 for sources at z 2-4). Templates have no emission lines, hence the 0.2
mag scatter the note recommends. Tabulated for z = 1-3 (the redshifts of lensed sources in
galaxy-galaxy lenses): a galaxy's redshift is its catalogue zphot clipped to that range (the
colours of a z < 1 galaxy are taken at z = 1: an approximation stated in docs/physics.md), or
drawn uniformly in it when the catalogue has none. Linear interpolation in z.
"""

from __future__ import annotations

import numpy as np

#: redshift grid of the table
Z_GRID = np.array([1.0, 1.5, 2.0, 2.5, 3.0])
#: SED name -> (g - r, r - z, r - F814W) on Z_GRID (research/source-model.md)
TEMPLATE_COLOURS = {
    "Im": (np.array([0.21, 0.15, 0.26, 0.31, 0.39]), np.array([0.89, 0.56, 0.19, 0.19, 0.29]),
           np.array([0.63, 0.23, 0.10, 0.14, 0.23])),
    "Scd": (np.array([0.58, 0.21, 0.23, 0.21, 0.32]), np.array([1.28, 0.99, 0.51, 0.27, 0.27]),
            np.array([0.87, 0.55, 0.23, 0.15, 0.20])),
}
#: SED names in the order a uniform draw picks them (equal weights)
SEDS = ("Im", "Scd")


def template_colours(sed: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(g - r, r - z, r - F814W) of each (SED name, redshift), linearly interpolated in z
    (z outside Z_GRID takes the end value)."""
    sed = np.asarray(sed)
    z = np.asarray(z, dtype=float)
    gr, rz, dr = (np.full(z.shape, np.nan) for _ in range(3))
    for name, (t_gr, t_rz, t_dr) in TEMPLATE_COLOURS.items():
        m = sed == name
        gr[m] = np.interp(z[m], Z_GRID, t_gr)
        rz[m] = np.interp(z[m], Z_GRID, t_rz)
        dr[m] = np.interp(z[m], Z_GRID, t_dr)
    if np.isnan(gr).any():
        bad = sorted(set(sed[np.isnan(gr)].tolist()))
        raise ValueError(f"unknown SED(s) {bad}; known: {list(TEMPLATE_COLOURS)}")
    return gr, rz, dr
