"""pipeline/injection/reference.py (the lenstronomy truth render) against lenstronomy called here
directly (issue 20, mutation testing): the test builds its own PixelGrid, PSF, LensModel,
LightModel and ImageModel from lenstronomy's documented arguments, its own kernels from
lenstronomy's Moffat profile, its own lens kwargs and source normalisation (stamp / sum / scale^2),
and compares. Two calls of the same library on the same numbers: tolerance 1e-10 of the image's
peak (summation order only). Independently of lenstronomy's wiring, a nearly unlensed compact
source checks the pixel convention (pixel [i, j] centred at ((j - c) s, (i - c) s), c = n // 2)
and the unit flux by hand; l1_relative against hand sums.

Only the Moffat's FWHM conversion (psf.intrinsic_fwhm_arcsec, tested in tests/test_mut_psf.py)
and the kernel half-width (psf.kernel_radius_pix) come from the pipeline: reference.py takes both
from psf.py on purpose (its docstring). reference.py has no cache of its own; the psf.py kernel
caches it calls are keyed by every argument, so a mutant that asks for another kernel gets it.
Every grid here is small (n 9-25, supersampling <= 4) except one default-argument render.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.injection.psf import MoffatPSF, intrinsic_fwhm_arcsec, kernel_radius_pix
from pipeline.injection.reference import (
    cached_reference_kernel,
    l1_relative,
    lenstronomy_image_model_render,
    lenstronomy_psf_render,
    naive_render_arcs,
    reference_moffat_kernel,
    reference_subgrid_kernel,
)
from pipeline.injection.render import LensParams, SourcePlacement
from tests.injection_fixtures import make_clumpy_source

REL = 1e-10  # of the truth's peak: the same lenstronomy arithmetic, summation order aside


def _alpha(fwhm: float, beta: float) -> float:
    return fwhm / (2 * math.sqrt(2 ** (1 / beta) - 1))


def _moffat(x, y, fwhm, beta):
    from lenstronomy.LightModel.Profiles.moffat import Moffat

    return Moffat().function(x, y, amp=1.0, alpha=_alpha(fwhm, beta), beta=beta)


def _pixel_kernel(fwhm, beta, radius, scale, sub=15):
    """Mean of sub x sub point samples of lenstronomy's Moffat per pixel, pixel by pixel, sum 1."""
    n = 2 * radius + 1
    k = np.zeros((n, n))
    off = (np.arange(sub) + 0.5) / sub - 0.5
    for i in range(n):
        for j in range(n):
            yy, xx = np.meshgrid((i - radius + off) * scale, (j - radius + off) * scale, indexing="ij")
            k[i, j] = _moffat(xx, yy, fwhm, beta).mean()
    return k / k.sum()


def _subgrid_kernel(fwhm, beta, radius, ss, scale):
    """lenstronomy's Moffat of the intrinsic FWHM at the sub-pixel centres, radius ss R + ss // 2, sum 1."""
    r = ss * radius + ss // 2
    ax = np.arange(-r, r + 1) * scale / ss
    yy, xx = np.meshgrid(ax, ax, indexing="ij")
    k = _moffat(xx, yy, intrinsic_fwhm_arcsec(fwhm, beta, scale), beta)
    return k / k.sum()


def _truth(stamp, lens: LensParams, src: SourcePlacement, n, s, src_scale, kwargs_psf, numerics):
    """lenstronomy's ImageModel built here: SIE + SHEAR about the lens centre, INTERPOL source of
    unit flux centred at lens centre + source offset."""
    from lenstronomy.Data.pixel_grid import PixelGrid
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    c = n // 2
    grid = PixelGrid(nx=n, ny=n, transform_pix2angle=np.array([[s, 0.0], [0.0, s]]),
                     ra_at_xy_0=-c * s, dec_at_xy_0=-c * s)
    model = ImageModel(grid, PSF(**kwargs_psf), lens_model_class=LensModel(["SIE", "SHEAR"]),
                       source_model_class=LightModel(["INTERPOL"]), kwargs_numerics=numerics)
    st = np.asarray(stamp, dtype=np.float64)
    kl = [{"theta_E": lens.theta_e_arcsec, "e1": lens.e1, "e2": lens.e2,
           "center_x": lens.center_x_arcsec, "center_y": lens.center_y_arcsec},
          {"gamma1": lens.gamma1, "gamma2": lens.gamma2, "ra_0": lens.center_x_arcsec, "dec_0": lens.center_y_arcsec}]
    ks = [{"image": st / st.sum() / src_scale**2, "amp": 1.0, "center_x": lens.center_x_arcsec + src.x_arcsec,
           "center_y": lens.center_y_arcsec + src.y_arcsec, "phi_G": src.phi_rad, "scale": src_scale}]
    return model.image(kwargs_lens=kl, kwargs_source=ks)


def _subgrid_truth(stamp, lens, src, fwhm, beta, n, s, src_scale, ss):
    radius = kernel_radius_pix(round(fwhm, 2), beta, s)
    kwargs_psf = {"psf_type": "PIXEL", "kernel_point_source": _subgrid_kernel(round(fwhm, 2), beta, radius, ss, s),
                  "point_source_supersampling_factor": ss}
    numerics = {"supersampling_factor": ss, "supersampling_convolution": True,
                "supersampling_kernel_size": 2 * radius + 1}
    return _truth(stamp, lens, src, n, s, src_scale, kwargs_psf, numerics)


def _pixel_truth(stamp, lens, src, kernel, n, s, src_scale, ss):
    numerics = {"supersampling_factor": ss, "supersampling_convolution": False}
    return _truth(stamp, lens, src, n, s, src_scale, {"psf_type": "PIXEL", "kernel_point_source": kernel}, numerics)


def _close(got, want):
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= REL * np.abs(want).max()


@pytest.fixture(scope="module")
def source():
    """A clumpy galaxy, float32 as the bank stores it, 48 x 48 at 0.04" (not COSMOS's 0.03")."""
    return make_clumpy_source(seed=3, n=48, hlr_arcsec=0.3, scale_arcsec=0.04, flux_nmgy=2.5)


@pytest.fixture(scope="module")
def cosmos_source():
    return make_clumpy_source(seed=5, n=64, hlr_arcsec=0.25, flux_nmgy=0.7)  # 0.03"/pixel


LENS = LensParams(0.9, 0.11, -0.06, 0.03, -0.02, 0.07, -0.05)
SRC = SourcePlacement(0.12, -0.08, 0.9)


# ----------------------------------------------------------------------------- kernels

def test_reference_moffat_kernel_defaults_are_dr10_and_15_samples():
    got = reference_moffat_kernel(1.2, 3.5, 3)
    want = _pixel_kernel(1.2, 3.5, 3, 0.262, 15)
    assert got.shape == (7, 7)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


def test_reference_moffat_kernel_passes_scale_and_subsample():
    got = reference_moffat_kernel(0.9, 2.5, 2, 0.3, 4)
    np.testing.assert_allclose(got, _pixel_kernel(0.9, 2.5, 2, 0.3, 4), rtol=1e-12, atol=0)
    got = reference_moffat_kernel(0.9, 2.5, 2, pixel_scale_arcsec=0.2, subsample=3)
    np.testing.assert_allclose(got, _pixel_kernel(0.9, 2.5, 2, 0.2, 3), rtol=1e-12, atol=0)


def test_reference_subgrid_kernel_default_scale_and_explicit():
    got = reference_subgrid_kernel(1.1, 3.5, 2, 3)
    assert got.shape == (2 * (3 * 2 + 1) + 1,) * 2
    np.testing.assert_allclose(got, _subgrid_kernel(1.1, 3.5, 2, 3, 0.262), rtol=1e-12, atol=0)
    got = reference_subgrid_kernel(1.1, 2.5, 3, 2, 0.3)
    np.testing.assert_allclose(got, _subgrid_kernel(1.1, 2.5, 3, 2, 0.3), rtol=1e-12, atol=0)


@pytest.mark.parametrize("fwhm,rounded", [(1.2349, 1.23), (0.871, 0.87)])
def test_cached_reference_kernel_is_the_rounded_fwhms_with_the_pipelines_half_width(fwhm, rounded):
    got = cached_reference_kernel(fwhm, 3.5)
    radius = kernel_radius_pix(rounded, 3.5, 0.262)
    assert got.shape == (2 * radius + 1,) * 2
    np.testing.assert_allclose(got, _pixel_kernel(rounded, 3.5, radius, 0.262), rtol=1e-12, atol=0)
    assert not got.flags.writeable
    got = cached_reference_kernel(fwhm, 2.5, 0.35)
    radius = kernel_radius_pix(rounded, 2.5, 0.35)
    np.testing.assert_allclose(got, _pixel_kernel(rounded, 2.5, radius, 0.35), rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------- renders

def test_unit_flux_and_pixel_convention_by_hand():
    """A compact source (Gaussian, sigma 0.15") behind a lens of theta_E 1e-6" (no deflection to
    speak of) at (x, y) = (0.52", -0.26") from the stamp centre: the unit flux lands in the stamp
    (sum 1 to 5e-3; measured 0.9980, the same with theta_E = 0: lenstronomy's own sub-grid render
    of this source) and its centroid at column c + x / s = 12 + 2, row c + y / s = 12 - 1
    (c = 25 // 2) to 1e-3 pixel (measured 1.4e-6: a symmetric PSF keeps the centroid)."""
    n, s, ss = 25, 0.26, 2
    ax = (np.arange(96) - 47.5) * 0.03
    yy, xx = np.meshgrid(ax, ax, indexing="ij")
    stamp = np.exp(-(xx**2 + yy**2) / (2 * 0.15**2)).astype(np.float32)
    lens = LensParams(1e-6, 0.0, 0.0, 0.0, 0.0, 0.3, -0.1)
    src = SourcePlacement(0.22, -0.16, 0.0)
    img = lenstronomy_psf_render(stamp, lens, src, MoffatPSF({"r": 0.6}, 3.5), "r", supersampling=ss, n_pix=n,
                                 pixel_scale_arcsec=s)
    assert abs(img.sum() - 1.0) < 5e-3
    rows, cols = np.mgrid[0:n, 0:n]
    assert (img * cols).sum() / img.sum() == pytest.approx(12 + 2, abs=1e-3)
    assert (img * rows).sum() / img.sum() == pytest.approx(12 - 1, abs=1e-3)


def test_subgrid_render_every_argument_given(source):
    """Odd n (25: c = 12), pixel 0.3", source pixel 0.04", supersampling 3, beta 2.5, band 'i' of a two-band PSF."""
    psf = MoffatPSF({"g": 1.4, "i": 0.95}, 2.5)
    got = lenstronomy_psf_render(source, LENS, SRC, psf, "i", 3, 25, 0.3, 0.04, None, True)
    _close(got, _subgrid_truth(source, LENS, SRC, 0.95, 2.5, 25, 0.3, 0.04, 3))
    assert got.dtype == np.float64


def test_subgrid_render_even_grid_keywords(source):
    psf = MoffatPSF({"g": 1.42, "i": 0.8}, 3.5)
    got = lenstronomy_psf_render(source, LENS, SRC, psf, "g", supersampling=2, n_pix=16, pixel_scale_arcsec=0.25,
                                 source_scale_arcsec=0.04)
    _close(got, _subgrid_truth(source, LENS, SRC, 1.42, 3.5, 16, 0.25, 0.04, 2))


def test_pixel_kernel_render_uses_the_psfs_lenstronomy_kernel(source):
    psf = MoffatPSF({"r": 1.07}, 3.0)
    got = lenstronomy_psf_render(source, LENS, SRC, psf, "r", 3, 21, 0.28, 0.04, subgrid_convolution=False)
    radius = kernel_radius_pix(1.07, 3.0, 0.28)
    _close(got, _pixel_truth(source, LENS, SRC, _pixel_kernel(1.07, 3.0, radius, 0.28), 21, 0.28, 0.04, 3))


def test_pixel_kernel_render_with_a_given_asymmetric_kernel(source):
    """A kernel given as a nested list, not symmetric: used as given (no flip, no renormalisation)."""
    kernel = [[0.0, 0.1, 0.0], [0.05, 0.5, 0.2], [0.0, 0.1, 0.05]]
    got = lenstronomy_psf_render(source, LENS, SRC, MoffatPSF({"r": 1.0}, 3.5), "r", 2, 17, 0.262, 0.04,
                                 kernel, False)
    _close(got, _pixel_truth(source, LENS, SRC, np.array(kernel), 17, 0.262, 0.04, 2))


class _RecordingPSF(MoffatPSF):
    """A Moffat that records what the render asks of it (psf.PSFModel.to_lenstronomy's arguments)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.asked = []

    def to_lenstronomy(self, band, pixel_scale_arcsec, supersampling, subgrid_convolution=True):
        self.asked.append((band, pixel_scale_arcsec, supersampling, subgrid_convolution))
        return super().to_lenstronomy(band, pixel_scale_arcsec, supersampling, subgrid_convolution)


@pytest.mark.parametrize("subgrid", [True, False])
def test_the_psf_is_asked_for_its_band_scale_integer_supersampling_and_kind_of_kernel(source, subgrid):
    """The PSF model's interface (psf.PSFModel.to_lenstronomy): band, pixel scale, the supersampling
    as an int (3.0 given), and subgrid_convolution exactly True / False: a model may build its
    pixel kernel from the supersampling too (the Moffat does not)."""
    psf = _RecordingPSF({"g": 1.2, "i": 0.9}, 3.5)
    lenstronomy_psf_render(source, LENS, SRC, psf, "i", 3.0, 11, 0.3, 0.04, subgrid_convolution=subgrid)
    assert psf.asked == [("i", 0.3, 3, subgrid)]
    assert type(psf.asked[0][2]) is int and psf.asked[0][3] is subgrid


def test_image_model_render_passes_every_argument(source):
    got = lenstronomy_image_model_render(source, LENS, SRC, 1.13, 2.5, 3, 19, 0.3, 0.04)
    _close(got, _subgrid_truth(source, LENS, SRC, 1.13, 2.5, 19, 0.3, 0.04, 3))
    kernel = np.array([[0.02, 0.1, 0.0], [0.1, 0.5, 0.15], [0.0, 0.1, 0.03]])
    got = lenstronomy_image_model_render(source, LENS, SRC, 1.13, 2.5, 2, 15, 0.3, 0.04, kernel, False)
    _close(got, _pixel_truth(source, LENS, SRC, kernel, 15, 0.3, 0.04, 2))
    got = lenstronomy_image_model_render(source, LENS, SRC, 1.13, 2.5, supersampling=2, n_pix=15,
                                         pixel_scale_arcsec=0.3, source_scale_arcsec=0.04, subgrid_convolution=False)
    radius = kernel_radius_pix(1.13, 2.5, 0.3)
    _close(got, _pixel_truth(source, LENS, SRC, _pixel_kernel(1.13, 2.5, radius, 0.3), 15, 0.3, 0.04, 2))


def test_defaults_are_the_truths_supersampling_8_64_pixels_dr10_and_cosmos(cosmos_source):
    """SPEC 10's truth: supersampling 8, a 64-pixel stamp of 0.262" pixels, a 0.03" source."""
    truth = _subgrid_truth(cosmos_source, LENS, SRC, 1.25, 3.5, 64, 0.262, 0.03, 8)
    _close(lenstronomy_psf_render(cosmos_source, LENS, SRC, MoffatPSF({"r": 1.25}, 3.5), "r"), truth)
    _close(lenstronomy_image_model_render(cosmos_source, LENS, SRC, 1.25, 3.5), truth)


def test_naive_render_defaults_supersampling_4_pixel_kernels(cosmos_source):
    """The baseline: per band flux x a unit render with lenstronomy's pixel Moffat, supersampling 4,
    float32 [nb, n, n], bands in the PSF's order; the same from (FWHMs, beta)."""
    n = 64
    psf = MoffatPSF({"g": 1.4, "r": 1.2}, 3.5)
    got = naive_render_arcs(cosmos_source, LENS, SRC, [3.0, 0.5], psf)
    assert got.shape == (2, n, n) and got.dtype == np.float32
    for k, (fwhm, flux) in enumerate(((1.4, 3.0), (1.2, 0.5))):
        radius = kernel_radius_pix(fwhm, 3.5, 0.262)
        want = flux * _pixel_truth(cosmos_source, LENS, SRC, _pixel_kernel(fwhm, 3.5, radius, 0.262), n, 0.262, 0.03, 4)
        assert np.abs(got[k] - want).max() <= 2e-7 * np.abs(want).max()  # float32 of the product
    again = naive_render_arcs(cosmos_source, LENS, SRC, [3.0, 0.5], [1.4, 1.2], 3.5)
    assert again.tobytes() == got.tobytes()


def test_naive_render_passes_every_argument(source):
    psf = MoffatPSF({"z": 1.05}, 2.5)
    got = naive_render_arcs(source, LENS, SRC, [2.0], psf, None, 2, 13, 0.3, 0.04)
    radius = kernel_radius_pix(1.05, 2.5, 0.3)
    want = 2.0 * _pixel_truth(source, LENS, SRC, _pixel_kernel(1.05, 2.5, radius, 0.3), 13, 0.3, 0.04, 2)
    assert got.shape == (1, 13, 13) and got.dtype == np.float32
    assert np.abs(got[0] - want).max() <= 2e-7 * np.abs(want).max()
    with pytest.raises(TypeError, match=r"^moffat_beta is given by the PSF object; pass one or the other$"):
        naive_render_arcs(source, LENS, SRC, [2.0], psf, 3.5, 2, 13)


# ----------------------------------------------------------------------------- l1_relative

def test_l1_relative_by_hand():
    # |1 - 1| + |2 - -1| + |3 - 4| = 4 over |1| + |-1| + |4| = 6
    assert l1_relative([1, 2, 3], [1, -1, 4]) == pytest.approx(4 / 6, rel=1e-15)
    assert type(l1_relative(np.float32([1, 2]), np.float32([1, 1]))) is float
    assert l1_relative(np.zeros((2, 2)), -np.ones((2, 2))) == 1.0


def test_l1_relative_sums_a_float32_truth_in_float64():
    """2^24 + 1 is no float32: in float64 the sum |truth| is 16777217, in float32 16777216; against
    zeros the numerator is 16777217 either way, so the ratio is exactly 1 only in float64."""
    truth = np.array([2.0**24, 1.0], dtype=np.float32)
    assert l1_relative(np.zeros(2, dtype=np.float32), truth) == 1.0
    assert l1_relative([0.0, 0.0], truth) == 1.0


def test_l1_relative_compares_in_float64_even_for_long_double_input():
    """1 + 2^-60 is 1 in float64: the difference from 1 is 0 there (and not 2^-60, which an 80-bit
    long double would keep)."""
    ours = np.array([1.0], dtype=np.longdouble) + np.longdouble(2.0) ** -60
    assert l1_relative(ours, [1.0]) == 0.0
    assert l1_relative(ours, np.array([1.0], dtype=np.longdouble)) == 0.0
