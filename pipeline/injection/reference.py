"""Independent lenstronomy renders of an injected arc: the truth the tests compare against and the
naive baseline the injection benchmark times (SPEC section 10). ONE implementation, shared by
tests/test_injection_render.py and benchmarks/injection_bench.py.

Nothing here runs pipeline.injection.render's code (only its parameter dataclasses are used):
the image is made by lenstronomy's own `ImageModel` (its PixelGrid, its ray-shooting, its
INTERPOL, its supersampling, its PIXEL-PSF convolution), and the Moffat kernel from lenstronomy's
own Moffat profile (psf.MoffatPSF.to_lenstronomy, built with lenstronomy's Moffat class, not
the pipeline's kernels). Only the kernel's SIZE (half-width, which decides how much of the far
wing is kept) is taken from pipeline.injection.psf, so that both renders truncate the PSF at the
same radius. The PSF enters as the task's PSF object (psf.PSFModel): `lenstronomy_psf_render`
takes it; `lenstronomy_image_model_render` is the one-band Moffat shorthand the tests use.

* `reference_moffat_kernel`: pixel kernel, 15 x 15 point samples of lenstronomy's Moffat per
  pixel, normalised to sum 1.
* `lenstronomy_psf_render` / `lenstronomy_image_model_render`: one band, a unit-flux source (the stamp rescaled exactly as
  render.py documents: stamp / stamp.sum() / scale**2 in INTERPOL surface brightness), a fresh
  ImageModel with `supersampling_factor` (8 for the truth), PSF convolution on the pixel grid.
* `naive_render_arcs`: the seed's way, the benchmark's baseline: per stamp, per band, build a new
  ImageModel (supersampling 4) and render; each band's arc is the unit render times its flux.

Heavy: ~10 s to import lenstronomy the first time; use from tests and benchmarks only.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.injection.psf import (
    MoffatPSF,
    PSFModel,
    as_psf_model,
    cached_lenstronomy_kernel,
    lenstronomy_moffat_kernel,
    lenstronomy_moffat_subgrid_kernel,
)
from pipeline.injection.render import LensParams, SourcePlacement
from pipeline.units import COSMOS_PIXSCALE_ARCSEC, DR10_PIXSCALE_ARCSEC

#: supersampling of the truth render (SPEC section 10: "a lenstronomy supersampling-8 render")
TRUTH_SUPERSAMPLING = 8
#: supersampling of the naive baseline (SPEC section 10 / the seed)
NAIVE_SUPERSAMPLING = 4


def reference_moffat_kernel(fwhm_arcsec: float, beta: float, radius_pix: int,
                            pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC, subsample: int = 15) -> np.ndarray:
    """Pixel kernel (2 radius + 1)^2 from lenstronomy's own Moffat profile, normalised to sum 1
    (psf.lenstronomy_moffat_kernel)."""
    return lenstronomy_moffat_kernel(fwhm_arcsec, beta, radius_pix, pixel_scale_arcsec, subsample)


def reference_subgrid_kernel(fwhm_arcsec: float, beta: float, radius_pix: int, subgrid: int,
                             pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC) -> np.ndarray:
    """Sub-grid kernel from lenstronomy's own Moffat (psf.lenstronomy_moffat_subgrid_kernel)."""
    return lenstronomy_moffat_subgrid_kernel(fwhm_arcsec, beta, radius_pix, subgrid, pixel_scale_arcsec)


def cached_reference_kernel(fwhm_arcsec: float, beta: float,
                            pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC) -> np.ndarray:
    """reference_moffat_kernel at round_fwhm(fwhm), with the pipeline kernel's half-width, cached
    (a real run sees a few hundred distinct FWHMs, so neither render pays for kernels per stamp)."""
    return cached_lenstronomy_kernel(fwhm_arcsec, beta, pixel_scale_arcsec)


def lenstronomy_psf_render(
    stamp: np.ndarray,
    lens: LensParams,
    src: SourcePlacement,
    psf: PSFModel,
    band: str,
    supersampling: int = TRUTH_SUPERSAMPLING,
    n_pix: int = 64,
    pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC,
    source_scale_arcsec: float = COSMOS_PIXSCALE_ARCSEC,
    kernel: np.ndarray | None = None,
    subgrid_convolution: bool = True,
) -> np.ndarray:
    """PSF-convolved arc of a UNIT-flux source in `band` of `psf`, [n_pix, n_pix] float64, by a
    fresh lenstronomy ImageModel (and a fresh lenstronomy PSF from psf.to_lenstronomy). Pixel
    [i, j] is centred at ((j - c) s, (i - c) s), c = n_pix // 2 (render.py's convention).

    subgrid_convolution=True (the truth, SPEC 10): the surface brightness is evaluated on the
    supersampling x supersampling sub-grid, convolved THERE with the PSF's sub-grid kernel
    (Moffat: lenstronomy's Moffat whose pixel-integrated FWHM is the band's FWHM, the survey's
    definition) over the kernel's full extent, then binned to pixels: the pixel response applied
    once. False: the seed's way (the naive baseline): binned first, then a pixel kernel
    (`kernel` if given, else the PSF's own, e.g. lenstronomy's pixel-integrated Moffat)."""
    from lenstronomy.Data.pixel_grid import PixelGrid  # noqa: PLC0415
    from lenstronomy.Data.psf import PSF  # noqa: PLC0415
    from lenstronomy.ImSim.image_model import ImageModel  # noqa: PLC0415
    from lenstronomy.LensModel.lens_model import LensModel  # noqa: PLC0415
    from lenstronomy.LightModel.light_model import LightModel  # noqa: PLC0415

    s, c = pixel_scale_arcsec, n_pix // 2
    grid = PixelGrid(nx=n_pix, ny=n_pix, transform_pix2angle=np.diag([s, s]), ra_at_xy_0=-c * s, dec_at_xy_0=-c * s)
    if subgrid_convolution:
        ss = int(supersampling)
        kwargs_psf, kernel_size = psf.to_lenstronomy(band, s, ss, subgrid_convolution=True)
        numerics = {"supersampling_factor": ss, "supersampling_convolution": True,
                    "supersampling_kernel_size": kernel_size}
    else:
        if kernel is None:
            kwargs_psf, _ = psf.to_lenstronomy(band, s, int(supersampling), subgrid_convolution=False)
        else:
            kwargs_psf = {"psf_type": "PIXEL", "kernel_point_source": np.array(kernel)}
        numerics = {"supersampling_factor": int(supersampling), "supersampling_convolution": False}
    model = ImageModel(grid, PSF(**kwargs_psf), lens_model_class=LensModel(["SIE", "SHEAR"]),
                       source_model_class=LightModel(["INTERPOL"]), kwargs_numerics=numerics)
    sb = np.asarray(stamp, dtype=float)
    sb = sb / sb.sum() / source_scale_arcsec**2
    return model.image(kwargs_lens=lens.lenstronomy_kwargs(), kwargs_source=[{
        "image": sb, "amp": 1.0, "center_x": lens.center_x_arcsec + src.x_arcsec,
        "center_y": lens.center_y_arcsec + src.y_arcsec, "phi_G": src.phi_rad, "scale": source_scale_arcsec}])


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
    """lenstronomy_psf_render for one band of a Moffat PSF of this (survey, pixel-integrated) FWHM
    and beta: the truth the Moffat tests compare against."""
    return lenstronomy_psf_render(stamp, lens, src, MoffatPSF({"band": fwhm_arcsec}, beta), "band", supersampling,
                                  n_pix, pixel_scale_arcsec, source_scale_arcsec, kernel, subgrid_convolution)


def naive_render_arcs(
    stamp: np.ndarray,
    lens: LensParams,
    src: SourcePlacement,
    band_flux_nmgy: Sequence[float],
    psf: PSFModel | Sequence[float],
    beta: float | None = None,
    supersampling: int = NAIVE_SUPERSAMPLING,
    n_pix: int = 64,
    pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC,
    source_scale_arcsec: float = COSMOS_PIXSCALE_ARCSEC,
) -> np.ndarray:
    """The naive baseline: one fresh lenstronomy ImageModel per band of `psf` (supersampling 4,
    a pixel kernel), [nb, n_pix, n_pix] float32 in nmgy/pixel. `psf` may still be a FWHM per
    band with `beta` (a Moffat; psf.as_psf_model)."""
    psf = as_psf_model(psf, beta)
    arcs = [flux * lenstronomy_psf_render(stamp, lens, src, psf, band, supersampling, n_pix,
                                          pixel_scale_arcsec, source_scale_arcsec, subgrid_convolution=False)
            for flux, band in zip(band_flux_nmgy, psf.bands)]
    return np.stack(arcs).astype(np.float32)


def l1_relative(ours: np.ndarray, truth: np.ndarray) -> float:
    """sum |ours - truth| / sum |truth| (the SPEC's "within 1% (L1)")."""
    truth = np.asarray(truth, dtype=float)
    return float(np.abs(np.asarray(ours, dtype=float) - truth).sum() / np.abs(truth).sum())
