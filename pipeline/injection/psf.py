"""Moffat PSF kernels for the injected arcs (SPEC section 6).

Profile: I(r) = (1 + (r / alpha)**2) ** -beta, alpha = FWHM / (2 sqrt(2**(1/beta) - 1)).
Its enclosed flux within radius r is 1 - (1 + (r / alpha)**2) ** (1 - beta), so the radius holding
a fraction f of the flux is alpha * sqrt((1 - f) ** (1 / (1 - beta)) - 1).

Kernels are pixel-integrated (each pixel is the mean of a 9x9 sub-grid of point samples), odd-sized,
centred on the middle pixel and normalised to sum 1, so convolving conserves flux exactly.

Size: the half-width is the smallest whole number of pixels reaching the radius that holds 99.5%
of the analytic flux (the square kernel then holds a little more than the circle), capped at
`MAX_RADIUS_PIX` = 31 so a kernel never exceeds the 64x64 stamp (seed section 5.2: "PSF kernel >
stamp size: stamps failed"). With beta = 3.5 the 99.5% radius is 2.89 x FWHM, so the cap starts to
cut below 99.5% only for FWHM > 31 x 0.262 / 2.89 = 2.81 arcsec (DR10 seeing is almost always
below 2"); for beta = 2.5 the cap binds from FWHM ~ 1.6" (30 pixels at 1.5", 31 at 1.6"). When it binds, the kernel holds
`moffat_enclosed_fraction(31.5 pixels)` of the analytic flux before normalisation; the missing far
wing is redistributed by the normalisation, which keeps the arc's total flux right.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from functools import lru_cache
from typing import Any, ClassVar, Mapping, Sequence

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
#: pixel centre, so the kernel stays symmetric to rounding, ~5e-16 relative).
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


# --- the PSF seam: one object per task ------------------------------------------------------
# The render (render.render_arc / convolve_bands_subgrid), the row's record of the PSF
# (task.py: psf_fwhm_<band>, moffat_beta) and the independent lenstronomy truth
# (reference.lenstronomy_psf_render) all take a PSFModel, built ONCE per task by `psf_for_task`
# from the row's conditions (each band's survey FWHM at the stamp centre) and the run config
# (`psf_model` picks the class in PSF_MODELS, whose own parameters come from the config).
# Adding a PSF model (e.g. a pixelized PSF read from a file) = one PSFModel subclass + its entry
# in PSF_MODELS (the run config's psf_model value). Kernels stay cached per (FWHM, parameters,
# scale[, sub-grid, FFT size]) in the module-level lru_caches above; the object itself is small
# and holds no kernel, and lenstronomy objects are never cached (to_lenstronomy returns kwargs,
# the caller builds a fresh PSF and ImageModel each time: INTERPOL's cache hazard).


class PSFModel(ABC):
    """The PSF of one stamp, per band (bands in the stamp's band order).

    `fwhm_arcsec(band)` is the FWHM of the effective (pixelated) PSF the kernels are built for,
    as the row records it in psf_fwhm_<band>. `kernel(band, pixel_scale, supersample)` is the
    kernel the render convolves with: supersample 1 = pixel-integrated kernel on the pixel grid;
    k > 1 = the PSF before the pixel (point samples at sub-pixel centres of pitch pixel / k), for
    convolving a k x k sub-grid image that is then summed into pixels. Kernels are odd-sized,
    centred, normalised to sum 1 and read-only (shared between stamps)."""

    #: the run config's psf_model value of this class
    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_conditions(cls, fwhm_arcsec: Mapping[str, float], config) -> "PSFModel":
        """The PSF of one stamp from the survey FWHM per band at the stamp centre and the run
        config (RunConfig: the model's own parameters, e.g. moffat_beta)."""

    @property
    @abstractmethod
    def bands(self) -> tuple[str, ...]:
        """The bands, in the order the render sees them."""

    @abstractmethod
    def fwhm_arcsec(self, band: str) -> float:
        """FWHM (arcsec) the band's kernel is built for (recorded as psf_fwhm_<band>)."""

    @abstractmethod
    def kernel_radius_pix(self, band: str, pixel_scale_arcsec: float) -> int:
        """Half-width of the band's kernel in pixels (a supersample-k kernel reaches
        k x this + k // 2 sub-pixels)."""

    @abstractmethod
    def kernel(self, band: str, pixel_scale_arcsec: float, supersample: int = 1) -> np.ndarray:
        """The band's kernel (see the class docstring), read-only."""

    @abstractmethod
    def kernel_rfft(self, band: str, fft_size: int, pixel_scale_arcsec: float, supersample: int = 1) -> np.ndarray:
        """rfft2 of kernel(band, pixel_scale, supersample) on an fft_size^2 grid, centre at
        [0, 0] with wrap-around, read-only (cached)."""

    @abstractmethod
    def to_lenstronomy(self, band: str, pixel_scale_arcsec: float, supersampling: int,
                       subgrid_convolution: bool = True) -> tuple[dict, int]:
        """(kwargs for lenstronomy.Data.psf.PSF, supersampling_kernel_size in pixels) expressing
        this band's PSF through lenstronomy's own profiles, for the independent truth render
        (reference.lenstronomy_psf_render). subgrid_convolution=True: a kernel on the
        supersampling x supersampling sub-grid, convolved before the pixel integration;
        False: a pixel kernel. The caller builds a FRESH lenstronomy PSF from the kwargs."""

    @abstractmethod
    def row_columns(self) -> dict[str, Any]:
        """The contract columns recording this PSF on an injection row: psf_fwhm_<band> for
        every band, and the model's own parameter columns (Moffat: moffat_beta)."""


def _checked_band(psf: "PSFModel", band: str) -> str:
    if band not in psf.bands:
        raise KeyError(f"band {band!r} is not one of this PSF's bands {psf.bands}")
    return band


class MoffatPSF(PSFModel):
    """Moffat PSF (beta from the run config) whose pixel-integrated FWHM is the survey's FWHM per
    band, rounded to FWHM_STEP_ARCSEC (docs/physics.md, "PSF convention"). The FWHMs are kept as
    given and rounded when used, so building the object computes nothing (a bad FWHM fails where
    the kernel is made, as before)."""

    name = "moffat"

    def __init__(self, fwhm_arcsec: Mapping[str, float], beta: float):
        self._fwhm = dict(fwhm_arcsec)
        self.beta = beta

    @classmethod
    def from_conditions(cls, fwhm_arcsec: Mapping[str, float], config) -> "MoffatPSF":
        return cls(fwhm_arcsec, config.moffat_beta)

    @classmethod
    def from_row(cls, row: Mapping[str, Any], bands: Sequence[str]) -> "MoffatPSF":
        """The PSF an injection row was rendered with (its psf_fwhm_<band> and moffat_beta)."""
        return cls({b: row[f"psf_fwhm_{b}"] for b in bands}, row["moffat_beta"])

    def __repr__(self) -> str:
        return f"MoffatPSF({self._fwhm!r}, beta={self.beta!r})"

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self._fwhm)

    def fwhm_arcsec(self, band: str) -> float:
        return round_fwhm(self._fwhm[_checked_band(self, band)])

    def kernel_radius_pix(self, band: str, pixel_scale_arcsec: float) -> int:
        return kernel_radius_pix(self.fwhm_arcsec(band), self.beta, pixel_scale_arcsec)

    def kernel(self, band: str, pixel_scale_arcsec: float, supersample: int = 1) -> np.ndarray:
        if int(supersample) == 1:
            return cached_kernel(self.fwhm_arcsec(band), self.beta, pixel_scale_arcsec)
        return cached_subgrid_kernel(self.fwhm_arcsec(band), self.beta, pixel_scale_arcsec, supersample)

    def kernel_rfft(self, band: str, fft_size: int, pixel_scale_arcsec: float, supersample: int = 1) -> np.ndarray:
        if int(supersample) == 1:
            return kernel_rfft(self.fwhm_arcsec(band), self.beta, pixel_scale_arcsec, fft_size)
        return subgrid_kernel_rfft(self.fwhm_arcsec(band), self.beta, pixel_scale_arcsec, supersample, fft_size)

    def to_lenstronomy(self, band: str, pixel_scale_arcsec: float, supersampling: int,
                       subgrid_convolution: bool = True) -> tuple[dict, int]:
        fwhm = self.fwhm_arcsec(band)
        if subgrid_convolution:
            ss = int(supersampling)
            kernel_super = np.array(_cached_lenstronomy_subgrid_kernel(fwhm, float(self.beta),
                                                                       float(pixel_scale_arcsec), ss))
            size = 2 * kernel_radius_pix(fwhm, self.beta, pixel_scale_arcsec) + 1
            return ({"psf_type": "PIXEL", "kernel_point_source": kernel_super,
                     "point_source_supersampling_factor": ss}, size)
        kernel = cached_lenstronomy_kernel(fwhm, self.beta, pixel_scale_arcsec)
        return {"psf_type": "PIXEL", "kernel_point_source": np.array(kernel)}, kernel.shape[0]

    def row_columns(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"psf_fwhm_{b}": float(self.fwhm_arcsec(b)) for b in self.bands}
        out["moffat_beta"] = float(self.beta)
        return out


#: PSF models by the run config's psf_model value.
PSF_MODELS: dict[str, type[PSFModel]] = {MoffatPSF.name: MoffatPSF}


def psf_for_task(config, fwhm_arcsec: Mapping[str, float]) -> PSFModel:
    """The PSF of one task: config.psf_model's class built from the survey FWHM per band at the
    stamp centre (in the stamp's band order) and the config."""
    try:
        model = PSF_MODELS[config.psf_model]
    except KeyError:
        raise RowError(f"unknown psf_model {config.psf_model!r}; known: {sorted(PSF_MODELS)}") from None
    return model.from_conditions(fwhm_arcsec, config)


def as_psf_model(psf: "PSFModel | Sequence[float]", moffat_beta: float | None) -> PSFModel:
    """A PSFModel as given, or the pre-seam arguments (a FWHM per band + moffat_beta) as a
    MoffatPSF with bands named "0", "1", ... (positional)."""
    # kept on purpose: the benchmarks and quick experiments pass (FWHMs, beta); tests/test_psf_seam.py
    # checks that both spellings render identical arcs
    if isinstance(psf, PSFModel):
        if moffat_beta is not None:
            raise TypeError("moffat_beta is given by the PSF object; pass one or the other")
        return psf
    if moffat_beta is None:
        raise TypeError("a FWHM list needs moffat_beta (or pass a PSFModel)")
    return MoffatPSF({str(i): f for i, f in enumerate(psf)}, moffat_beta)


# --- lenstronomy's own Moffat, for the truth render (reference.py) ---------------------------
# Only the kernel's SIZE is taken from this module (kernel_radius_pix), so that both renders
# truncate the PSF at the same radius; the profile is lenstronomy's Moffat, not moffat_kernel.

def lenstronomy_moffat_kernel(fwhm_arcsec: float, beta: float, radius_pix: int,
                              pixel_scale_arcsec: float, subsample: int = 15) -> np.ndarray:
    """Pixel kernel (2 radius + 1)^2 from lenstronomy's own Moffat profile (subsample^2 point
    samples per pixel), normalised to sum 1."""
    from lenstronomy.LightModel.Profiles.moffat import Moffat  # noqa: PLC0415 - slow import

    alpha = fwhm_arcsec / (2 * np.sqrt(2 ** (1 / beta) - 1))
    ss, n = subsample, 2 * radius_pix + 1
    ax = ((np.arange(n * ss) + 0.5) / ss - (radius_pix + 0.5)) * pixel_scale_arcsec
    x, y = np.meshgrid(ax, ax)
    k = Moffat().function(x, y, amp=1.0, alpha=alpha, beta=beta).reshape(n, ss, n, ss).mean(axis=(1, 3))
    return k / k.sum()


def lenstronomy_moffat_subgrid_kernel(fwhm_arcsec: float, beta: float, radius_pix: int, subgrid: int,
                                      pixel_scale_arcsec: float) -> np.ndarray:
    """Sub-grid kernel for lenstronomy's supersampled convolution: lenstronomy's own Moffat at the
    sub-pixel centres of pitch pixel / subgrid, odd size 2 (subgrid radius_pix + subgrid // 2) + 1,
    normalised to sum 1. Its FWHM is the Moffat whose pixel-integrated FWHM is `fwhm_arcsec` (the
    survey's definition, docs/physics.md); the conversion is intrinsic_fwhm_arcsec, whose result
    the point-source test checks on the pixel grid independently."""
    from lenstronomy.LightModel.Profiles.moffat import Moffat  # noqa: PLC0415 - slow import

    fwhm_m = intrinsic_fwhm_arcsec(fwhm_arcsec, beta, pixel_scale_arcsec)
    alpha = fwhm_m / (2 * np.sqrt(2 ** (1 / beta) - 1))
    r = subgrid * radius_pix + subgrid // 2
    ax = np.arange(-r, r + 1) * pixel_scale_arcsec / subgrid
    x, y = np.meshgrid(ax, ax)
    k = Moffat().function(x, y, amp=1.0, alpha=alpha, beta=beta)
    return k / k.sum()


@lru_cache(maxsize=512)
def _cached_lenstronomy_subgrid_kernel(fwhm_rounded: float, beta: float, pixel_scale_arcsec: float,
                                       subgrid: int) -> np.ndarray:
    radius = kernel_radius_pix(fwhm_rounded, beta, pixel_scale_arcsec)
    k = lenstronomy_moffat_subgrid_kernel(fwhm_rounded, beta, radius, subgrid, pixel_scale_arcsec)
    k.setflags(write=False)
    return k


@lru_cache(maxsize=512)
def _cached_lenstronomy_kernel(fwhm_rounded: float, beta: float, pixel_scale_arcsec: float) -> np.ndarray:
    radius = kernel_radius_pix(fwhm_rounded, beta, pixel_scale_arcsec)
    k = lenstronomy_moffat_kernel(fwhm_rounded, beta, radius, pixel_scale_arcsec)
    k.setflags(write=False)
    return k


def cached_lenstronomy_kernel(fwhm_arcsec: float, beta: float, pixel_scale_arcsec: float) -> np.ndarray:
    """lenstronomy_moffat_kernel at round_fwhm(fwhm), with the pipeline kernel's half-width, cached
    (a real run sees a few hundred distinct FWHMs, so no render pays for kernels per stamp)."""
    return _cached_lenstronomy_kernel(round_fwhm(fwhm_arcsec), float(beta), float(pixel_scale_arcsec))
