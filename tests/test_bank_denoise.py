"""Denoised clean sources (issue 16, docs/physics.md "Clean sources") against independent truth:
the demo's synthetic galaxies, whose noiseless model and noise are known exactly
(pipeline.bank.synth), lensed and PSF-convolved like an injection.

Measured (2026-12-01) on the ten galaxies fainter than F814W 23 among synth_galaxy(rng(0..39)),
behind a theta_E = 1" SIE with the source near the caustic centre, DR10 PSF 1.0" (Moffat 3.5),
rms over the arc footprint of (render of the bank stamp - render of the noiseless galaxy) in units
of a deep DR10 r-band sky sigma (0.005 nmgy per pixel):

  noisy clean stamp (no denoising)                median 11.6%, 7.9-25.9%
  denoised (Sersic + starlet 3/4 sigma support)   median  9.6%, 6.2-31.2%

The issue's target (5%) is NOT met; the reason (the noise that survives lensing and the PSF sits on
scales where the galaxy itself is significant) is in docs/physics.md. The bounds below are what
the denoising achieves, with a margin, so that switching it off (the planted bug) fails them.
"""

import numpy as np
import pytest

from pipeline.bank.measure import clean_galaxy, clean_galaxy_denoised, half_light_radius_in_stamp_arcsec
from pipeline.bank.synth import synth_galaxy
from pipeline.errors import InputError
from pipeline.injection.metrics import arc_footprint
from pipeline.injection.psf import MoffatPSF
from pipeline.injection.render import LensParams, SourcePlacement, convolve_bands_subgrid, lensed_source_image
from pipeline.units import HST_COUNTS_PER_S_TO_NMGY as K

DR10_R_SKY_SIGMA = 0.005  # nmgy per pixel, a deep DR10 r-band coadd
#: the synthetic galaxies fainter than F814W 23 among synth_galaxy(rng(i)), i < 40 (all of them)
FAINT = (4, 5, 9, 10, 13, 14, 17, 21, 28, 31)


def _arc(stamp):
    lensed, _ = lensed_source_image(stamp / 0.03**2, 0.03, LensParams(1.0, 0.05, 0, 0, 0, 0, 0),
                                    SourcePlacement(0.05, 0.02, 0.3), subgrid=2)
    return convolve_bands_subgrid(lensed, 2, [1.0], MoffatPSF({"r": 1.0}, 3.5))[0]


@pytest.fixture(scope="module")
def faint_galaxies():
    rows = []
    for i in FAINT:
        g = synth_galaxy(np.random.default_rng(i))
        assert g["mag"] > 23.0
        img = (g["image"] - g["noise_mean"]) * K
        noisy, mask = clean_galaxy(img)
        denoised, mask_d = clean_galaxy_denoised(img)
        assert np.array_equal(mask, mask_d)  # same segmentation: only the noise inside differs
        truth = g["clean"] * K * mask  # the noiseless galaxy on the same pixels
        arc_t = _arc(truth)
        fp = arc_footprint(arc_t)
        out = {"truth": truth, "arc_truth": arc_t, "fp": fp}
        for name, stamp in (("noisy", noisy), ("denoised", denoised)):
            a = _arc(stamp)
            d = (a - arc_t)[fp]
            out[name] = {
                "rms": float(np.sqrt((d**2).mean())) / DR10_R_SKY_SIGMA,
                "l1": float(np.abs(a - arc_t).sum() / np.abs(arc_t).sum()),
                "flux": float(stamp.sum() / truth.sum() - 1.0),
                "hlr": float(half_light_radius_in_stamp_arcsec(stamp, 0.03) / half_light_radius_in_stamp_arcsec(truth, 0.03) - 1.0),
                "stamp": stamp,
            }
        rows.append(out)
    return rows


def test_denoised_residual_hst_noise_after_lensing_is_bounded(faint_galaxies):
    """The lensed residual HST noise of the faintest sources, against the noiseless truth: median
    over the ten galaxies <= 10.5% of the DR10 sky sigma (measured 9.6%; without the denoising
    11.6%: planted, it fails), worst galaxy <= 35% (measured 31.2%). Target 5%: not met."""
    den = np.array([r["denoised"]["rms"] for r in faint_galaxies])
    noisy = np.array([r["noisy"]["rms"] for r in faint_galaxies])
    print(f"lensed residual HST noise, % of DR10 r sky sigma: denoised median {np.median(den):.1%} "
          f"max {den.max():.1%}; noisy median {np.median(noisy):.1%} max {noisy.max():.1%}")
    assert np.median(den) <= 0.105
    assert den.max() <= 0.35
    # a brightened source (x 10^(0.4 dm), 1 mag) would be far above the bound
    assert np.median(den) * 10**0.4 > 0.105


def test_denoising_keeps_the_galaxy(faint_galaxies):
    """What the denoising does to the galaxy, against the noiseless truth: the lensed arc no
    farther from the truth's (median L1 no worse than the noisy stamp's: measured 2.14% vs 2.79%,
    worst 7.46%), total flux within 6% of the truth (measured |change| <= 5.3%; the noisy stamp:
    up to 6.2%, which fails it) and the in-stamp half-light radius within 5% (measured <= 4.6%).
    Planted: a denoiser that erases structure (the Sersic model alone) fails the L1 check
    (median 7.5%) and the noise bound (28%)."""
    l1_den = np.array([r["denoised"]["l1"] for r in faint_galaxies])
    l1_noisy = np.array([r["noisy"]["l1"] for r in faint_galaxies])
    flux = np.array([r["denoised"]["flux"] for r in faint_galaxies])
    hlr = np.array([r["denoised"]["hlr"] for r in faint_galaxies])
    print(f"L1 vs truth: denoised median {np.median(l1_den):.2%} max {l1_den.max():.2%}, noisy median "
          f"{np.median(l1_noisy):.2%}; flux change {np.abs(flux).max():.2%} max; hlr change {np.abs(hlr).max():.2%} max")
    assert np.median(l1_den) <= np.median(l1_noisy)
    assert l1_den.max() <= 0.09
    assert np.all(np.abs(flux) <= 0.06)
    assert np.all(np.abs(hlr) <= 0.05)


def test_denoised_stamp_is_zero_outside_the_segmentation(faint_galaxies):
    for r in faint_galaxies:
        assert np.all(r["denoised"]["stamp"][r["truth"] == 0] == 0)


def test_starlet_planes_add_up_to_the_image():
    from pipeline.bank.denoise import starlet

    img = np.random.default_rng(3).normal(size=(40, 40))
    w = starlet(img, 4)
    assert w.shape == (5, 40, 40)
    np.testing.assert_allclose(w.sum(axis=0), img, atol=1e-12)


def test_pure_noise_is_removed():
    """Gaussian white noise alone: the finest scale at 4 sigma and the others at 3 keep almost
    nothing, so what survives is far below the input noise (truth: zero signal)."""
    from pipeline.bank.denoise import significant_structure

    noise = np.random.default_rng(5).normal(0.0, 1.0, (96, 96))
    out = significant_structure(noise, np.ones(noise.shape, bool))
    assert float(np.std(out)) < 0.2


def test_a_stamp_without_sky_is_refused_by_name():
    yy, xx = np.indices((24, 24))
    galaxy = np.exp(-np.hypot(yy - 11.5, xx - 11.5) / 30.0) + np.random.default_rng(1).normal(0, 0.01, (24, 24))
    with pytest.raises(InputError, match="image.*sky pixels"):
        clean_galaxy_denoised(galaxy)
