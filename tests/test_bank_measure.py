"""Half-light radius measurement against analytic Sersic profiles (independent truth)."""

import numpy as np
import pytest
from scipy.special import gammainc, gammaincinv
from scipy.optimize import brentq

from pipeline.bank.measure import half_light_radius_arcsec, measure_galaxy
from pipeline.errors import InputError

PIX = 0.03


def render_sersic(n, hlr_arcsec, size, *, centre=None, oversample=7, core=9, core_oversample=41):
    """Circular Sersic, flux per pixel, each pixel integrated by supersampling (much finer over
    the central pixels, where the n=4 cusp lives)."""
    b = gammaincinv(2 * n, 0.5)
    hlr_pix = hlr_arcsec / PIX
    cy = cx = (size - 1) / 2.0 if centre is None else centre

    def pixels(ys, xs, osf):
        off = (np.arange(osf) + 0.5) / osf - 0.5
        y = (ys[:, None] + off).ravel() - cy
        x = (xs[:, None] + off).ravel() - cx
        r = np.hypot(y[:, None], x[None, :])
        v = np.exp(-b * ((r / hlr_pix) ** (1.0 / n) - 1.0))
        return v.reshape(len(ys), osf, len(xs), osf).mean(axis=(1, 3))

    img = np.zeros((size, size))
    for y0 in range(0, size, 64):
        ys = np.arange(y0, min(size, y0 + 64))
        img[ys] = pixels(ys, np.arange(size), oversample)
    lo = int(round(cy)) - core // 2
    sl = np.arange(lo, lo + core)
    img[np.ix_(sl, sl)] = pixels(sl, sl, core_oversample)
    return img


@pytest.mark.parametrize("n,hlr_arcsec", [(1, 0.15), (1, 0.3), (1, 0.5), (4, 0.1), (4, 0.15)])
def test_sersic_half_light_radius_within_3_percent(n, hlr_arcsec):
    img = render_sersic(n, hlr_arcsec, 301)
    measured = half_light_radius_arcsec(img, PIX)
    assert measured == pytest.approx(hlr_arcsec, rel=0.03)


def test_truncated_de_vaucouleurs_matches_analytic_truncated_radius():
    # A stamp cuts a de Vaucouleurs galaxy's wings: the measurement then finds the half-light
    # radius of the light *inside the largest circle*, which is analytic for a round Sersic.
    n, hlr_arcsec, size = 4, 0.5, 201
    img = render_sersic(n, hlr_arcsec, size)
    b = gammaincinv(2 * n, 0.5)
    r_max_over_re = (size / 2.0) * PIX / hlr_arcsec
    frac_in_circle = gammainc(2 * n, b * r_max_over_re ** (1.0 / n))
    expected = hlr_arcsec * brentq(lambda x: gammainc(2 * n, b * x ** (1.0 / n)) - 0.5 * frac_in_circle, 1e-3, 1.0)
    measured = half_light_radius_arcsec(img, PIX)
    assert expected < 0.9 * hlr_arcsec  # the truncation is real here ...
    assert measured == pytest.approx(expected, rel=0.02)  # ... and is exactly what is measured


def test_off_centre_galaxy_uses_its_centroid():
    img = render_sersic(1, 0.3, 201, centre=93.3)
    m = measure_galaxy(img, PIX)
    assert m.centroid_x_pix == pytest.approx(93.3, abs=0.05)
    assert m.centroid_y_pix == pytest.approx(93.3, abs=0.05)
    assert m.hlr_arcsec == pytest.approx(0.3, rel=0.03)


def test_noise_does_not_bias_the_radius():
    clean = render_sersic(1, 0.3, 161)
    clean *= 200.0 / clean.sum()
    rng = np.random.default_rng(5)
    sigma = 0.003
    values = [half_light_radius_arcsec(clean + rng.normal(0, sigma, clean.shape), PIX) for _ in range(8)]
    assert np.mean(values) == pytest.approx(0.3, rel=0.03)


def test_distant_neighbour_is_masked():
    size = 241
    galaxy = render_sersic(1, 0.3, size)
    galaxy *= 100.0 / galaxy.sum()
    neighbour = render_sersic(1, 0.2, size, centre=(size - 1) / 2.0)
    neighbour = np.roll(neighbour, (80, 85), axis=(0, 1))  # ~3.5" away, towards a corner
    neighbour *= 150.0 / neighbour.sum()
    noise = np.random.default_rng(2).normal(0, 0.002, (size, size))
    with_neighbour = measure_galaxy(galaxy + neighbour + noise, PIX)
    assert with_neighbour.neighbour_pixels > 0
    assert with_neighbour.hlr_arcsec == pytest.approx(0.3, rel=0.05)


def test_blank_stamp_has_no_radius():
    noise = np.random.default_rng(1).normal(0, 1.0, (64, 64))
    assert np.isnan(half_light_radius_arcsec(noise - 5.0, PIX))


@pytest.mark.parametrize(
    "image,scale,needle",
    [
        (np.full((10, 10), np.nan), PIX, "NaN"),
        (np.ones(10), PIX, "2-D"),
        (np.ones((10, 10)), 0.0, "positive"),
    ],
)
def test_bad_input_is_named(image, scale, needle):
    with pytest.raises(InputError) as err:
        half_light_radius_arcsec(image, scale)
    assert needle in str(err.value)


def test_truncated_radius_and_flux_fraction_of_an_analytic_exponential_disc():
    """An exponential disc of half-light radius 1.0" on the bank's 96 x 96 stamp at 0.03": the
    stamp keeps ~75% of its flux and the light inside it has a half-light radius of ~0.78"
    (issue 16). Truth: the analytic profile (total flux 1 on the infinite plane) integrated on a
    10x finer grid and sorted by radius - no curve-of-growth code involved."""
    from pipeline.bank.measure import half_light_radius_in_stamp_arcsec

    scale, n, hlr = 0.03, 96, 1.0
    h = hlr / 1.6783469900166612  # exponential: hlr = 1.67835 scale lengths
    fine = 10
    ax = ((np.arange(n * fine) + 0.5) / fine - n / 2) * scale
    x, y = np.meshgrid(ax, ax)
    r = np.hypot(x, y)
    sb = np.exp(-r / h) / (2 * np.pi * h * h)  # flux per arcsec^2, total 1
    flux_fine = sb * (scale / fine) ** 2
    stamp = flux_fine.reshape(n, fine, n, fine).sum(axis=(1, 3))
    in_stamp = flux_fine.sum()
    order = np.argsort(r.ravel())
    cum = np.cumsum(flux_fine.ravel()[order])
    r_half_truth = r.ravel()[order][np.searchsorted(cum, 0.5 * in_stamp)]
    assert in_stamp == pytest.approx(0.75, abs=0.02)
    assert r_half_truth == pytest.approx(0.78, abs=0.02)
    assert half_light_radius_in_stamp_arcsec(stamp, scale) == pytest.approx(r_half_truth, rel=0.01)
    # the untruncated galaxy's radius is what measure_galaxy finds on a stamp that holds it all
    big_n = 400
    axb = ((np.arange(big_n) + 0.5) - big_n / 2) * scale
    xb, yb = np.meshgrid(axb, axb)
    big = np.exp(-np.hypot(xb, yb) / h) / (2 * np.pi * h * h) * scale**2
    assert measure_galaxy(big, scale).hlr_arcsec == pytest.approx(hlr, rel=0.03)


def test_clean_source_residual_hst_noise_after_lensing_is_measured_and_bounded():
    """Clean sources (issue 16): outside the galaxy's grown segmentation the stamp is exactly 0 (sky
    noise and neighbours gone); inside, the HST noise stays. Its size after lensing and a 1.0" DR10
    PSF, with no brightening, on a synthetic galaxy whose noise is known exactly: the rms over the
    arc footprint against a deep DR10 r sky sigma of 0.005 nmgy per pixel. The issue's target is 5%;
    what this treatment reaches is 9-18% over five galaxies (docs/physics.md: NOT met). Bound here:
    20%, so a brightened or uncleaned source (noise x 10^(0.4 dm)) fails."""
    from pipeline.bank.measure import clean_galaxy
    from pipeline.bank.synth import synth_galaxy
    from pipeline.injection.metrics import arc_footprint
    from pipeline.injection.psf import MoffatPSF
    from pipeline.injection.render import LensParams, SourcePlacement, convolve_bands_subgrid, lensed_source_image
    from pipeline.units import HST_COUNTS_PER_S_TO_NMGY as K

    g = synth_galaxy(np.random.default_rng(0))
    img = (g["image"] - g["noise_mean"]) * K
    clean, mask = clean_galaxy(img)
    assert np.all(clean[~mask] == 0) and np.array_equal(clean[mask], img[mask])
    noise = (img - g["clean"] * K) * mask  # the residual: the true noise on the kept pixels

    def arc(stamp):
        lensed, _ = lensed_source_image(stamp / 0.03**2, 0.03, LensParams(1.0, 0.05, 0, 0, 0, 0, 0),
                                        SourcePlacement(0.05, 0.02, 0.3), subgrid=2)
        return convolve_bands_subgrid(lensed, 2, [1.0], MoffatPSF({"r": 1.0}, 3.5))[0]

    fp = arc_footprint(arc(g["clean"] * K * mask))
    rms = float(np.sqrt((arc(noise)[fp] ** 2).mean())) / 0.005
    print(f"lensed residual HST noise: {rms:.1%} of the DR10 sky sigma (rms over the arc footprint)")
    assert 0.02 < rms < 0.20
    # brightening by 1 mag scales it by 2.5: above the bound
    assert rms * 10 ** 0.4 > 0.20
