"""Analytic galaxy and PSF profiles for the synthetic survey, rendered exactly in Fourier space.

An object's pixel values are the continuous profile convolved with the PSF and integrated over
each pixel. In Fourier space that is a product:

    I(k) = flux * G(k) * M(k) * S(k) * exp(-i k . r0)

with G the galaxy's transform (1 for a point source), M the Moffat's, S(k) = sinc(kx/2pi) sinc(ky/2pi)
the transform of the 1-pixel box (this *is* the exact pixel integration: no real-space
supersampling of the de Vaucouleurs cusp is needed), r0 the centre. The inverse DFT samples the
result on the pixel grid. I(0) = flux, so the stamp's pixel sum equals the flux to float
rounding; the periodic DFT wraps rather than loses light, so stamps are sized to make wrapping
negligible (`stamp_size_for`).

The de Vaucouleurs profile (Sersic n=4) is softly truncated between 7 and 8 effective radii as
SDSS and the Tractor do (its r^(1/4) wings otherwise hold ~7% of the light beyond 8 re):

    f(x) = exp(-b4 (x^(1/4) - 1)) * T(x),  x = elliptical radius / re,  b4 = 7.66925,
    T = 1 for x <= 7, (1 - (x-7)^2)^2 for 7 < x < 8, 0 beyond.

`re` is the semi-major-axis effective radius of the untruncated profile; the truncated
profile's own half-light radius is 2% smaller (`DEV_HALF_LIGHT_X`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special

from pipeline.units import NMGY_ZEROPOINT_AB

#: Sersic b_n for n = 4 (half the light inside x = 1 for the untruncated profile).
DEV_B = 7.669249
DEV_TRUNC_START_X = 7.0
DEV_TRUNC_END_X = 8.0
#: Table limits. Beyond DEV_KAPPA_MAX the galaxy transform is treated as 0: it is < 1e-3 there
#: and the PSF has already suppressed it by > 1e-6 for re <= 20 pixels.
DEV_KAPPA_MAX = 300.0
MOFFAT_Z_MAX = 80.0


def dev_profile(x: np.ndarray) -> np.ndarray:
    """Truncated de Vaucouleurs surface brightness in units of the value at x = 1 (before taper)."""
    x = np.asarray(x, dtype=float)
    taper = np.where(x <= DEV_TRUNC_START_X, 1.0,
                     np.where(x < DEV_TRUNC_END_X, (1.0 - np.clip(x - DEV_TRUNC_START_X, 0, 1) ** 2) ** 2, 0.0))
    return np.exp(-DEV_B * (np.power(x, 0.25) - 1.0)) * taper


def _dev_t_grid(n: int = 16385):
    # x = t^4 turns the r^(1/4) cusp into a smooth exponential in t; Simpson weights on t.
    t = np.linspace(0.0, DEV_TRUNC_END_X ** 0.25, n)
    x = t ** 4
    w = np.full(n, 2.0)
    w[1:-1:2] = 4.0
    w[0] = w[-1] = 1.0
    w *= (t[1] - t[0]) / 3.0
    # integrand of the 2-D integral over a circular profile: f(x) x dx = f(t^4) 4 t^7 dt
    return x, w * dev_profile(x) * 4.0 * t ** 7


@lru_cache(maxsize=1)
def dev_total_integral() -> float:
    """Integral of dev_profile over the plane for re = 1, axis ratio 1: total flux per unit I_e.
    An elliptical profile with semi-major re and axis ratio q holds flux I_e * re^2 * q * this."""
    _, wf = _dev_t_grid()
    return float(2.0 * math.pi * wf.sum())


@lru_cache(maxsize=1)
def _dev_ft_table():
    x, wf = _dev_t_grid()
    log_kappa = np.linspace(math.log(1e-3), math.log(DEV_KAPPA_MAX), 700)
    kappa = np.exp(log_kappa)
    values = np.empty_like(kappa)
    norm = wf.sum()
    for i in range(0, kappa.size, 50):
        chunk = kappa[i:i + 50, None]
        values[i:i + 50] = (special.j0(chunk * x[None, :]) * wf[None, :]).sum(axis=1) / norm
    return log_kappa, values


def dev_ft(kappa: np.ndarray) -> np.ndarray:
    """Normalised 2-D Fourier transform (value 1 at 0) of the circular truncated de Vaucouleurs
    profile with re = 1, at angular wavenumber kappa (radians per re)."""
    log_kappa, values = _dev_ft_table()
    kappa = np.asarray(kappa, dtype=float)
    lk = np.log(np.maximum(kappa, 1e-300))
    out = np.interp(lk, log_kappa, values, left=1.0, right=0.0)
    return out


def moffat_alpha(fwhm: float, beta: float) -> float:
    """Moffat core radius alpha (same unit as fwhm): FWHM = 2 alpha sqrt(2^(1/beta) - 1)."""
    return fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


@lru_cache(maxsize=8)
def _moffat_ft_table(beta: float):
    nu = beta - 1.0
    log_z = np.linspace(math.log(1e-5), math.log(MOFFAT_Z_MAX), 3000)
    z = np.exp(log_z)
    # 2-D transform of (1 + r^2/alpha^2)^-beta, normalised to 1 at k = 0:
    # z^nu K_nu(z) / (Gamma(nu) 2^(nu-1)), z = k alpha
    values = z ** nu * special.kv(nu, z) / (special.gamma(nu) * 2.0 ** (nu - 1.0))
    return log_z, values


def moffat_ft(k_alpha: np.ndarray, beta: float) -> np.ndarray:
    """Normalised 2-D Fourier transform of a Moffat profile at k * alpha (radians)."""
    if not beta > 1:
        raise ValueError(f"Moffat beta must be > 1 for finite flux, got {beta}")
    log_z, values = _moffat_ft_table(float(beta))
    lz = np.log(np.maximum(np.asarray(k_alpha, dtype=float), 1e-300))
    return np.interp(lz, log_z, values, left=1.0, right=0.0)


@lru_cache(maxsize=16)
def _k_grid(n_pix: int):
    ky = 2.0 * np.pi * np.fft.fftfreq(n_pix)
    kx = 2.0 * np.pi * np.fft.rfftfreq(n_pix)
    kyy, kxx = np.meshgrid(ky, kx, indexing="ij")
    with np.errstate(divide="ignore"):
        log_k = np.log(np.hypot(kxx, kyy))  # -inf at k = 0: interp's `left` value (1) applies
    pixel_box = np.sinc(kxx / (2.0 * np.pi)) * np.sinc(kyy / (2.0 * np.pi))
    for a in (kx, ky, kxx, kyy, log_k, pixel_box):
        a.setflags(write=False)
    return kx, ky, kxx, kyy, log_k, pixel_box


def render(
    n_pix: int,
    x0_pix: float,
    y0_pix: float,
    flux_nmgy,
    fwhm_pix,
    beta: float,
    re_pix: float = 0.0,
    axis_ratio: float = 1.0,
    pa_rad: float = 0.0,
) -> np.ndarray:
    """Render one object in several bands on an n_pix x n_pix stamp.

    The object sits at stamp pixel coordinates (x0_pix, y0_pix) (0-based, pixel centres at
    integers, array index [y, x]). `flux_nmgy` and `fwhm_pix` are per-band sequences (the Moffat
    FWHM of each band, in pixels). re_pix = 0 gives a point source; otherwise a truncated de
    Vaucouleurs with semi-major effective radius re_pix, axis ratio b/a and major axis at pa_rad
    from +x towards +y. Returns float64 [band, y, x] in flux per pixel; each band sums to its flux.
    """
    flux = np.atleast_1d(np.asarray(flux_nmgy, dtype=float))
    fwhm = np.atleast_1d(np.asarray(fwhm_pix, dtype=float))
    if flux.shape != fwhm.shape:
        raise ValueError("flux_nmgy and fwhm_pix need one value per band")
    if not beta > 1:
        raise ValueError(f"Moffat beta must be > 1 for finite flux, got {beta}")
    kx, ky, kxx, kyy, log_k, pixel_box = _k_grid(int(n_pix))
    # the shift is separable: two 1-D phase ramps instead of a 2-D complex exp
    common = np.exp(-1j * ky * y0_pix)[:, None] * np.exp(-1j * kx * x0_pix)[None, :] * pixel_box
    if re_pix > 0:
        c, s = math.cos(pa_rad), math.sin(pa_rad)
        k_major = kxx * c + kyy * s
        k_minor = -kxx * s + kyy * c
        with np.errstate(divide="ignore"):
            log_kappa = 0.5 * np.log((re_pix * k_major) ** 2 + (re_pix * axis_ratio * k_minor) ** 2)
        log_table, dev_values = _dev_ft_table()
        common = common * np.interp(log_kappa, log_table, dev_values, left=1.0, right=0.0)
    log_z, moffat_values = _moffat_ft_table(float(beta))
    out = np.empty((flux.size, n_pix, n_pix))
    for i, (f, w) in enumerate(zip(flux, fwhm)):
        psf = np.interp(log_k + math.log(moffat_alpha(w, beta)), log_z, moffat_values, left=1.0, right=0.0)
        out[i] = np.fft.irfft2(f * common * psf, s=(n_pix, n_pix))
    return out


def stamp_size_for(re_pix: float, fwhm_pix: float, sizes=(32, 48, 64, 96, 128, 192, 256, 384, 512)) -> int:
    """Smallest FFT-friendly stamp holding the truncated galaxy plus the PSF's wings on each side."""
    # Light beyond half the stamp wraps to the other side: keep the whole truncated galaxy and
    # the Moffat out to 4 FWHM (beta 3.5: < 1e-4 of the flux beyond).
    half = DEV_TRUNC_END_X * re_pix + 4.0 * fwhm_pix + 2.0
    for n in sizes:
        if n >= 2 * half:
            return n
    return sizes[-1]


@lru_cache(maxsize=4096)
def moffat_nea_pix(fwhm_arcsec: float, beta: float, pixscale_arcsec: float) -> float:
    """Noise-equivalent area (pixels) of the pixel-integrated Moffat PSF centred on a pixel:
    NEA = 1 / sum(p_i^2) for the normalised PSF image p. A point source's optimal flux error
    on sky noise sigma_pix is sigma_pix * sqrt(NEA)."""
    fwhm_pix = fwhm_arcsec / pixscale_arcsec
    n = 32
    while n < 12 * fwhm_pix:
        n *= 2
    psf = render(n, n // 2, n // 2, [1.0], [fwhm_pix], beta)[0]
    return float(1.0 / np.sum(psf ** 2))


def psfdepth_mag(invvar: float | np.ndarray, fwhm_arcsec: float, beta: float, pixscale_arcsec: float):
    """5-sigma point-source depth (AB mag) from the per-pixel inverse variance and the PSF:
    flux_sigma = sqrt(NEA / invvar), depth = 22.5 - 2.5 log10(5 flux_sigma). nan where invvar <= 0."""
    invvar = np.asarray(invvar, dtype=float)
    nea = moffat_nea_pix(float(fwhm_arcsec), float(beta), float(pixscale_arcsec))
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = np.where(invvar > 0, np.sqrt(nea / np.where(invvar > 0, invvar, 1.0)), np.nan)
        return NMGY_ZEROPOINT_AB - 2.5 * np.log10(5.0 * sigma)
