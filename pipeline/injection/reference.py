"""Independent lenstronomy renders of an injected arc: the truth the tests compare against and the
naive baseline the injection benchmark times (SPEC section 10). ONE implementation, shared by
tests/test_injection_render.py and benchmarks/injection_bench.py.

Nothing here runs pipeline.injection.render's code (only its parameter dataclasses are used):
the image is made by lenstronomy's own `ImageModel` (its PixelGrid, its ray-shooting, its
INTERPOL, its supersampling, its PIXEL-PSF convolution), and the Moffat kernel from lenstronomy's
own Moffat profile. Only the kernel's SIZE (half-width, which decides how much of the far wing is
kept) is taken from pipeline.injection.psf, so that both renders truncate the PSF at the same
radius.

* `reference_moffat_kernel`: pixel kernel, 15 x 15 point samples of lenstronomy's Moffat per
  pixel, normalised to sum 1.
* `lenstronomy_image_model_render`: one band, a unit-flux source (the stamp rescaled exactly as
  render.py documents: stamp / stamp.sum() / scale**2 in INTERPOL surface brightness), a fresh
  ImageModel with `supersampling_factor` (8 for the truth), PSF convolution on the pixel grid.
* `naive_render_arcs`: the seed's way, the benchmark's baseline: per stamp, per band, build a new
  ImageModel (supersampling 4) and render; each band's arc is the unit render times its flux.

Heavy: ~10 s to import lenstronomy the first time; use from tests and benchmarks only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from pipeline.injection.psf import kernel_radius_pix, round_fwhm
from pipeline.injection.render import LensParams, SourcePlacement
from pipeline.units import COSMOS_PIXSCALE_ARCSEC, DR10_PIXSCALE_ARCSEC

#: supersampling of the truth render (SPEC section 10: "a lenstronomy supersampling-8 render")
TRUTH_SUPERSAMPLING = 8
#: supersampling of the naive baseline (SPEC section 10 / the seed)
NAIVE_SUPERSAMPLING = 4


def reference_moffat_kernel(fwhm_arcsec: float, beta: float, radius_pix: int,
                            pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC, subsample: int = 15) -> np.ndarray:
    """Pixel kernel (2 radius + 1)^2 from lenstronomy's own Moffat profile, normalised to sum 1."""
    from lenstronomy.LightModel.Profiles.moffat import Moffat  # noqa: PLC0415 - slow import

    alpha = fwhm_arcsec / (2 * np.sqrt(2 ** (1 / beta) - 1))
    ss, n = subsample, 2 * radius_pix + 1
    ax = ((np.arange(n * ss) + 0.5) / ss - (radius_pix + 0.5)) * pixel_scale_arcsec
    x, y = np.meshgrid(ax, ax)
    k = Moffat().function(x, y, amp=1.0, alpha=alpha, beta=beta).reshape(n, ss, n, ss).mean(axis=(1, 3))
    return k / k.sum()


def reference_subgrid_kernel(fwhm_arcsec: float, beta: float, radius_pix: int, subgrid: int,
                             pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC) -> np.ndarray:
    """Sub-grid kernel for lenstronomy's supersampled convolution: lenstronomy's own Moffat at the
    sub-pixel centres of pitch pixel / subgrid, odd size 2 (subgrid radius_pix + subgrid // 2) + 1,
    normalised to sum 1. Its FWHM is the Moffat whose pixel-integrated FWHM is `fwhm_arcsec` (the
    survey's definition, docs/physics.md); the conversion is psf.intrinsic_fwhm_arcsec, whose
    result the point-source test checks on the pixel grid independently."""
    from lenstronomy.LightModel.Profiles.moffat import Moffat  # noqa: PLC0415 - slow import

    from pipeline.injection.psf import intrinsic_fwhm_arcsec  # noqa: PLC0415

    fwhm_m = intrinsic_fwhm_arcsec(fwhm_arcsec, beta, pixel_scale_arcsec)
    alpha = fwhm_m / (2 * np.sqrt(2 ** (1 / beta) - 1))
    r = subgrid * radius_pix + subgrid // 2
    ax = np.arange(-r, r + 1) * pixel_scale_arcsec / subgrid
    x, y = np.meshgrid(ax, ax)
    k = Moffat().function(x, y, amp=1.0, alpha=alpha, beta=beta)
    return k / k.sum()


@lru_cache(maxsize=512)
def _cached_reference_subgrid_kernel(fwhm_rounded: float, beta: float, pixel_scale_arcsec: float,
                                     subgrid: int) -> np.ndarray:
    radius = kernel_radius_pix(fwhm_rounded, beta, pixel_scale_arcsec)
    k = reference_subgrid_kernel(fwhm_rounded, beta, radius, subgrid, pixel_scale_arcsec)
    k.setflags(write=False)
    return k


@lru_cache(maxsize=512)
def _cached_reference_kernel(fwhm_rounded: float, beta: float, pixel_scale_arcsec: float) -> np.ndarray:
    radius = kernel_radius_pix(fwhm_rounded, beta, pixel_scale_arcsec)
    k = reference_moffat_kernel(fwhm_rounded, beta, radius, pixel_scale_arcsec)
    k.setflags(write=False)
    return k


def cached_reference_kernel(fwhm_arcsec: float, beta: float,
                            pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC) -> np.ndarray:
    """reference_moffat_kernel at round_fwhm(fwhm), with the pipeline kernel's half-width, cached
    (a real run sees a few hundred distinct FWHMs, so neither render pays for kernels per stamp)."""
    return _cached_reference_kernel(round_fwhm(fwhm_arcsec), float(beta), float(pixel_scale_arcsec))


def lenstronomy_image_model_render(
    stamp: np.ndarray,
    lens: LensParams,
    src: SourcePlacement,
    fwhm_arcsec: float,
    beta: float,
    supersampling: int = TRUTH_SUPERSAMPLING,
    n_pix: int = 64,
    pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC,
    source_scale_arcsec: float = COSMOS_PIXSCALE_ARCSEC,
    kernel: np.ndarray | None = None,
    subgrid_convolution: bool = True,
) -> np.ndarray:
    """PSF-convolved arc of a UNIT-flux source, [n_pix, n_pix] float64, by a fresh lenstronomy
    ImageModel. Pixel [i, j] is centred at ((j - c) s, (i - c) s), c = n_pix // 2 (render.py's
    convention).

    subgrid_convolution=True (the truth, SPEC 10): the surface brightness is evaluated on the
    supersampling x supersampling sub-grid, convolved THERE with the Moffat
    (reference_subgrid_kernel: pixel-integrated FWHM = fwhm_arcsec, the survey's definition) over
    the kernel's full extent, then binned to pixels: the pixel response applied once.
    False: the seed's way (the naive baseline): binned first, then a pixel-integrated Moffat of
    FWHM fwhm_arcsec."""
    from lenstronomy.Data.pixel_grid import PixelGrid  # noqa: PLC0415
    from lenstronomy.Data.psf import PSF  # noqa: PLC0415
    from lenstronomy.ImSim.image_model import ImageModel  # noqa: PLC0415
    from lenstronomy.LensModel.lens_model import LensModel  # noqa: PLC0415
    from lenstronomy.LightModel.light_model import LightModel  # noqa: PLC0415

    s, c = pixel_scale_arcsec, n_pix // 2
    grid = PixelGrid(nx=n_pix, ny=n_pix, transform_pix2angle=np.diag([s, s]), ra_at_xy_0=-c * s, dec_at_xy_0=-c * s)
    if subgrid_convolution:
        ss = int(supersampling)
        kernel_super = np.array(_cached_reference_subgrid_kernel(round_fwhm(fwhm_arcsec), float(beta), float(s), ss))
        psf = PSF(psf_type="PIXEL", kernel_point_source=kernel_super, point_source_supersampling_factor=ss)
        numerics = {"supersampling_factor": ss, "supersampling_convolution": True,
                    "supersampling_kernel_size": 2 * kernel_radius_pix(round_fwhm(fwhm_arcsec), beta, s) + 1}
    else:
        if kernel is None:
            kernel = cached_reference_kernel(fwhm_arcsec, beta, s)
        psf = PSF(psf_type="PIXEL", kernel_point_source=np.array(kernel))
        numerics = {"supersampling_factor": int(supersampling), "supersampling_convolution": False}
    model = ImageModel(grid, psf, lens_model_class=LensModel(["SIE", "SHEAR"]),
                       source_model_class=LightModel(["INTERPOL"]), kwargs_numerics=numerics)
    sb = np.asarray(stamp, dtype=float)
    sb = sb / sb.sum() / source_scale_arcsec**2
    return model.image(kwargs_lens=lens.lenstronomy_kwargs(), kwargs_source=[{
        "image": sb, "amp": 1.0, "center_x": lens.center_x_arcsec + src.x_arcsec,
        "center_y": lens.center_y_arcsec + src.y_arcsec, "phi_G": src.phi_rad, "scale": source_scale_arcsec}])


def naive_render_arcs(
    stamp: np.ndarray,
    lens: LensParams,
    src: SourcePlacement,
    band_flux_nmgy: Sequence[float],
    psf_fwhm_arcsec: Sequence[float],
    beta: float,
    supersampling: int = NAIVE_SUPERSAMPLING,
    n_pix: int = 64,
    pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC,
    source_scale_arcsec: float = COSMOS_PIXSCALE_ARCSEC,
) -> np.ndarray:
    """The naive baseline: one fresh lenstronomy ImageModel per band (supersampling 4, Moffat as a
    pixel kernel), [nb, n_pix, n_pix] float32 in nmgy/pixel."""
    arcs = [flux * lenstronomy_image_model_render(stamp, lens, src, fwhm, beta, supersampling, n_pix,
                                                  pixel_scale_arcsec, source_scale_arcsec,
                                                  subgrid_convolution=False)
            for flux, fwhm in zip(band_flux_nmgy, psf_fwhm_arcsec)]
    return np.stack(arcs).astype(np.float32)


def l1_relative(ours: np.ndarray, truth: np.ndarray) -> float:
    """sum |ours - truth| / sum |truth| (the SPEC's "within 1% (L1)")."""
    truth = np.asarray(truth, dtype=float)
    return float(np.abs(np.asarray(ours, dtype=float) - truth).sum() / np.abs(truth).sum())
