"""Moffat PSF kernels for the injected arcs (SPEC section 6).

Profile: I(r) = (1 + (r / alpha)**2) ** -beta, alpha = FWHM / (2 sqrt(2**(1/beta) - 1)).
Its enclosed flux within radius r is 1 - (1 + (r / alpha)**2) ** (1 - beta), so the radius holding
a fraction f of the flux is alpha * sqrt((1 - f) ** (1 / (1 - beta)) - 1).

Kernels are pixel-integrated (each pixel is the mean of a 9x9 sub-grid of point samples), odd-sized,
centred on the middle pixel and normalised to sum 1, so convolving conserves flux exactly.

Size: the half-width is the smallest whole number of pixels reaching the radius that holds 99.5%
of the analytic flux (the square kernel then holds a little more than the circle), capped at
`MAX_RADIUS_PIX` = 31 so a kernel never exceeds the 64x64 stamp (seed section 5.2: "PSF kernel >
stamp size: stamps failed"). With beta = 3.5 the 99.5% radius is 2.90 x FWHM, so the cap starts to
cut below 99.5% only for FWHM > 31 x 0.262 / 2.90 = 2.80 arcsec (DR10 seeing is almost always
below 2"); for beta = 2.5 the cap binds above FWHM ~ 1.2". When it binds, the kernel holds
`moffat_enclosed_fraction(31.5 pixels)` of the analytic flux before normalisation; the missing far
wing is redistributed by the normalisation, which keeps the arc's total flux right.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from pipeline.errors import RowError

#: Fraction of the analytic Moffat flux the kernel must hold (SPEC section 6).
ENCLOSED_FLUX_TARGET = 0.995
#: Largest kernel half-width: 2 * 31 + 1 = 63 pixels fits in a 64-pixel stamp.
MAX_RADIUS_PIX = 31
#: FWHMs are rounded to this step before building a kernel, so kernels can be cached and reused
#: across stamps; the rounded value is what a row records as psf_fwhm_<band> (error <= 0.005").
FWHM_STEP_ARCSEC = 0.01
#: Sub-samples per pixel side for the pixel integration (odd: one sub-sample sits on each
#: pixel centre, so the kernel stays exactly symmetric).
_SUBSAMPLE = 9


def moffat_alpha(fwhm_arcsec: float, beta: float) -> float:
    """Moffat core radius alpha (arcsec) for a FWHM and beta."""
    return fwhm_arcsec / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def moffat_enclosed_fraction(radius_arcsec: float, fwhm_arcsec: float, beta: float) -> float:
    """Fraction of a Moffat's total flux inside a circle of this radius (analytic)."""
    alpha = moffat_alpha(fwhm_arcsec, beta)
    return 1.0 - (1.0 + (radius_arcsec / alpha) ** 2) ** (1.0 - beta)


def moffat_radius_for_fraction(fraction: float, fwhm_arcsec: float, beta: float) -> float:
    """Radius (arcsec) of the circle holding `fraction` of a Moffat's flux."""
    alpha = moffat_alpha(fwhm_arcsec, beta)
    return alpha * math.sqrt((1.0 - fraction) ** (1.0 / (1.0 - beta)) - 1.0)


def kernel_radius_pix(fwhm_arcsec: float, beta: float, pixel_scale_arcsec: float,
                      max_radius_pix: int = MAX_RADIUS_PIX) -> int:
    """Half-width (pixels) of the kernel: reaches the 99.5% radius, capped at max_radius_pix."""
    r_pix = moffat_radius_for_fraction(ENCLOSED_FLUX_TARGET, fwhm_arcsec, beta) / pixel_scale_arcsec
    return int(min(max(math.ceil(r_pix), 1), max_radius_pix))


def moffat_kernel(fwhm_arcsec: float, beta: float, pixel_scale_arcsec: float,
                  max_radius_pix: int = MAX_RADIUS_PIX) -> np.ndarray:
    """Pixel-integrated Moffat kernel, odd size (2R+1)^2, normalised to sum 1 (float64).

    Raises RowError for a FWHM or beta that cannot make a PSF (the survey's psfsize map is 0 where
    a band has no coverage; such a stamp cannot be rendered)."""
    if not (np.isfinite(fwhm_arcsec) and fwhm_arcsec > 0):
        raise RowError(f"PSF FWHM must be a positive number, got {fwhm_arcsec}")
    if not (np.isfinite(beta) and beta > 1):
        raise RowError(f"Moffat beta must be > 1, got {beta}")
    radius = kernel_radius_pix(fwhm_arcsec, beta, pixel_scale_arcsec, max_radius_pix)
    alpha_pix = moffat_alpha(fwhm_arcsec, beta) / pixel_scale_arcsec
    # sub-sample offsets inside a pixel, in pixel units, centred on 0
    sub = (np.arange(_SUBSAMPLE) + 0.5) / _SUBSAMPLE - 0.5
    axis = (np.arange(-radius, radius + 1)[:, None] + sub[None, :]).ravel()
    yy, xx = np.meshgrid(axis, axis, indexing="ij")
    fine = (1.0 + (xx * xx + yy * yy) / alpha_pix**2) ** (-beta)
    size = 2 * radius + 1
    kernel = fine.reshape(size, _SUBSAMPLE, size, _SUBSAMPLE).mean(axis=(1, 3))
    return kernel / kernel.sum()


def round_fwhm(fwhm_arcsec: float) -> float:
    """The FWHM actually used for a kernel (rounded to FWHM_STEP_ARCSEC)."""
    return round(round(float(fwhm_arcsec) / FWHM_STEP_ARCSEC) * FWHM_STEP_ARCSEC, 6)


@lru_cache(maxsize=2048)
def _cached_kernel(fwhm_rounded: float, beta: float, pixel_scale_arcsec: float) -> np.ndarray:
    kernel = moffat_kernel(fwhm_rounded, beta, pixel_scale_arcsec)
    kernel.setflags(write=False)  # shared between stamps: nobody may modify it
    return kernel


def cached_kernel(fwhm_arcsec: float, beta: float, pixel_scale_arcsec: float) -> np.ndarray:
    """Read-only kernel for round_fwhm(fwhm_arcsec), built once per (FWHM, beta, scale)."""
    fwhm = round_fwhm(fwhm_arcsec)
    if not fwhm > 0:
        raise RowError(f"PSF FWHM must be a positive number, got {fwhm_arcsec}")
    return _cached_kernel(fwhm, float(beta), float(pixel_scale_arcsec))


def _wrapped_rfft(kernel: np.ndarray, fft_size: int) -> np.ndarray:
    """rfft2 of an odd-sized kernel with its centre moved to [0, 0] with wrap-around, so that a
    circular convolution of a zero-padded image reproduces the linear 'same' convolution with no
    shift. Read-only (it is cached)."""
    radius = kernel.shape[0] // 2
    wrapped = np.zeros((fft_size, fft_size))
    idx = np.arange(-radius, radius + 1) % fft_size
    wrapped[np.ix_(idx, idx)] = kernel
    out = np.fft.rfft2(wrapped)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=2048)
def _cached_kernel_rfft(fwhm_rounded: float, beta: float, pixel_scale_arcsec: float,
                        fft_size: int) -> np.ndarray:
    return _wrapped_rfft(_cached_kernel(fwhm_rounded, beta, pixel_scale_arcsec), fft_size)


def kernel_rfft(fwhm_arcsec: float, beta: float, pixel_scale_arcsec: float, fft_size: int) -> np.ndarray:
    """rfft2 of the cached kernel on an fft_size^2 grid (centre at [0, 0]), cached."""
    return _cached_kernel_rfft(round_fwhm(fwhm_arcsec), float(beta), float(pixel_scale_arcsec), int(fft_size))


# --- the survey's FWHM is that of the PIXELATED PSF ------------------------------------------
# DR10's psfsize (and hence psf_fwhm_<band>) is the FWHM of the effective PSF that stars show on
# the 0.262" pixel grid: atmosphere + optics (the Moffat) integrated over a pixel. The arcs are
# therefore rendered as sky -> Moffat(FWHM_m) -> pixel integration, with FWHM_m chosen so that the
# Moffat integrated over one pixel has the survey's FWHM (`intrinsic_fwhm_arcsec`), and the
# Moffat is applied on a sub-grid before the pixel integration (render.convolve_bands_subgrid), never as
# a pixel-integrated kernel on an already pixel-integrated image (that applies the pixel twice:
# 0.5-1.3% L1 on demo arcs, issue 16).

#: Gauss-Legendre nodes for the pixel integral of the Moffat (the integrand is smooth on a pixel).
_GL_NODES = 24


def pixelated_profile(x_arcsec: float, fwhm_arcsec: float, beta: float, pixel_scale_arcsec: float) -> float:
    """Moffat (peak 1) integrated over a pixel centred at (x, 0), divided by the pixel area: the
    pixelated PSF along the pixel x axis through its centre."""
    nodes, weights = np.polynomial.legendre.leggauss(_GL_NODES)
    u = 0.5 * pixel_scale_arcsec * nodes
    w = 0.5 * weights
    alpha = moffat_alpha(fwhm_arcsec, beta)
    dx = x_arcsec - u[:, None]
    r2 = dx * dx + u[None, :] ** 2
    return float((w[:, None] * w[None, :] * (1.0 + r2 / alpha**2) ** (-beta)).sum())


def pixelated_fwhm_arcsec(fwhm_arcsec: float, beta: float, pixel_scale_arcsec: float) -> float:
    """FWHM (along a pixel axis) of a Moffat of this FWHM integrated over square pixels."""
    from scipy.optimize import brentq  # noqa: PLC0415

    peak = pixelated_profile(0.0, fwhm_arcsec, beta, pixel_scale_arcsec)
    half = brentq(lambda x: pixelated_profile(x, fwhm_arcsec, beta, pixel_scale_arcsec) - 0.5 * peak,
                  0.0, 3.0 * fwhm_arcsec + pixel_scale_arcsec, xtol=1e-10)
    return 2.0 * half


@lru_cache(maxsize=4096)
def intrinsic_fwhm_arcsec(pixelated_fwhm: float, beta: float, pixel_scale_arcsec: float) -> float:
    """FWHM of the Moffat that, integrated over a pixel, has FWHM `pixelated_fwhm` (the survey's
    psfsize). Raises RowError when the survey FWHM is too small for any Moffat (below ~1 pixel)."""
    from scipy.optimize import brentq  # noqa: PLC0415

    target = float(pixelated_fwhm)
    lo = 1e-3 * target
    if not pixelated_fwhm_arcsec(lo, beta, pixel_scale_arcsec) < target:
        raise RowError(f"PSF FWHM {target}\" is narrower than a pixelated point source can be "
                       f"at {pixel_scale_arcsec}\"/pixel")
    return float(brentq(lambda f: pixelated_fwhm_arcsec(f, beta, pixel_scale_arcsec) - target, lo, target,
                        xtol=1e-9))


def subgrid_kernel(fwhm_arcsec: float, beta: float, pixel_scale_arcsec: float, subgrid: int) -> np.ndarray:
    """Moffat of intrinsic_fwhm_arcsec(fwhm) sampled at the centres of a sub-grid of pitch
    pixel / subgrid, radius subgrid x kernel_radius_pix(fwhm) + subgrid // 2 sub-pixels (odd size,
    centred), normalised to sum 1. Convolving a sub-pixel image with it and summing subgrid x
    subgrid blocks gives the pixelated PSF (to O((pixel / subgrid)^2), measured in the tests)."""
    if not (np.isfinite(fwhm_arcsec) and fwhm_arcsec > 0):
        raise RowError(f"PSF FWHM must be a positive number, got {fwhm_arcsec}")
    if not (np.isfinite(beta) and beta > 1):
        raise RowError(f"Moffat beta must be > 1, got {beta}")
    radius = subgrid * kernel_radius_pix(fwhm_arcsec, beta, pixel_scale_arcsec) + subgrid // 2
    alpha_sub = moffat_alpha(intrinsic_fwhm_arcsec(fwhm_arcsec, beta, pixel_scale_arcsec), beta) \
        / (pixel_scale_arcsec / subgrid)
    ax = np.arange(-radius, radius + 1, dtype=float)
    yy, xx = np.meshgrid(ax, ax, indexing="ij")
    k = (1.0 + (xx * xx + yy * yy) / alpha_sub**2) ** (-beta)
    return k / k.sum()


@lru_cache(maxsize=512)
def _cached_subgrid_kernel(fwhm_rounded: float, beta: float, pixel_scale_arcsec: float, subgrid: int) -> np.ndarray:
    k = subgrid_kernel(fwhm_rounded, beta, pixel_scale_arcsec, subgrid)
    k.setflags(write=False)
    return k


def cached_subgrid_kernel(fwhm_arcsec: float, beta: float, pixel_scale_arcsec: float, subgrid: int) -> np.ndarray:
    """Read-only subgrid_kernel for round_fwhm(fwhm_arcsec), built once per (FWHM, beta, scale, subgrid)."""
    fwhm = round_fwhm(fwhm_arcsec)
    if not fwhm > 0:
        raise RowError(f"PSF FWHM must be a positive number, got {fwhm_arcsec}")
    return _cached_subgrid_kernel(fwhm, float(beta), float(pixel_scale_arcsec), int(subgrid))


@lru_cache(maxsize=1024)
def _cached_subgrid_kernel_rfft(fwhm_rounded: float, beta: float, pixel_scale_arcsec: float, subgrid: int,
                                fft_size: int) -> np.ndarray:
    return _wrapped_rfft(_cached_subgrid_kernel(fwhm_rounded, beta, pixel_scale_arcsec, subgrid), fft_size)


def subgrid_kernel_rfft(fwhm_arcsec: float, beta: float, pixel_scale_arcsec: float, subgrid: int,
                        fft_size: int) -> np.ndarray:
    """rfft2 of the cached sub-grid kernel on an fft_size^2 grid (centre at [0, 0]), cached."""
    return _cached_subgrid_kernel_rfft(round_fwhm(fwhm_arcsec), float(beta), float(pixel_scale_arcsec),
                                       int(subgrid), int(fft_size))
