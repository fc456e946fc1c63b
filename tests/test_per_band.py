"""Every per-band quantity of an injection row checked for every band g, r, z (issue 20: only r
was pinned, so a g<->z swap of the PSFs passed).

Independent truth: the brick's psfsize map is set by hand to very different values per band
(g 2.0", r 1.3", z 0.8"); the row must carry each band's own value, and each band's rendered arc
must be as sharp as its own PSF makes it. The source has one shape in every band (only its flux
differs per band), so after normalising each band's arc to unit flux the only difference between
bands is the PSF: a narrower PSF gives a more concentrated arc (larger sum of squared unit-flux
pixels, smaller second moment about the lens).
"""

import numpy as np
import pytest

from pipeline.config import RunConfig
from pipeline.injection.task import RunContext, inject_task
from pipeline.units import mag_to_nmgy
from tests.injection_fixtures import make_bank, make_brick, make_task

CTX = RunContext(run_id="run-test", pipeline_version="0.0.test", config=RunConfig())
#: hand-set survey PSF FWHM per band, arcsec (far apart so no tolerance question arises)
HAND_PSF = {"g": 2.0, "r": 1.3, "z": 0.8}


@pytest.fixture(scope="module")
def row():
    brick = make_brick()
    for b, fwhm in HAND_PSF.items():
        brick.psfsize[b] = np.full_like(brick.psfsize[b], fwhm)
    r = inject_task(make_task(brick, 0), brick, make_bank(n=2), CTX)
    assert r["cutout_ok"], r["cutout_error"]
    return r


@pytest.mark.parametrize("band", "grz")
def test_psf_fwhm_and_psfsize_are_the_bands_own(row, band):
    assert row[f"psf_fwhm_{band}"] == pytest.approx(HAND_PSF[band], abs=1e-6)
    assert row[f"psfsize_{band}"] == pytest.approx(HAND_PSF[band], abs=1e-6)


def test_each_bands_arc_is_as_sharp_as_its_own_psf(row):
    arc = np.asarray(row["arc"], np.float64).reshape(3, 64, 64)
    unit = arc / arc.sum(axis=(1, 2), keepdims=True)
    concentration = {b: float((unit[i] ** 2).sum()) for i, b in enumerate("grz")}
    # z (0.8") sharpest, g (2.0") broadest; the ratios are large (>~1.3x each step), far beyond
    # any float difference between math libraries
    assert concentration["z"] > 1.2 * concentration["r"] > 1.2 * 1.2 * concentration["g"], concentration
    yy, xx = np.mgrid[0:64, 0:64]
    second = {}
    for i, b in enumerate("grz"):
        cx, cy = (unit[i] * xx).sum(), (unit[i] * yy).sum()
        second[b] = float((unit[i] * ((xx - cx) ** 2 + (yy - cy) ** 2)).sum())
    assert second["z"] < second["r"] < second["g"], second


@pytest.mark.parametrize("band", "grz")
def test_arc_flux_per_band_follows_the_bands_source_magnitude(row, band):
    """arc_flux_<band> / (source flux in <band>) is the same magnification in every band (the
    PSF conserves flux; a few % may fall off the 64x64 stamp for the 2" g PSF)."""
    ratio = row[f"arc_flux_{band}"] / (mag_to_nmgy(row[f"src_mag_{band}"]) * row["magnification"])
    assert 0.9 < ratio <= 1.0 + 1e-3, ratio
    stored = np.asarray(row["arc"], np.float64).reshape(3, 64, 64)["grz".index(band)].sum()
    assert row[f"arc_flux_{band}"] == pytest.approx(stored, rel=1e-6)
