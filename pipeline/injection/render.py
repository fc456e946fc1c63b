"""Render a lensed COSMOS arc: SIE + SHEAR lens, INTERPOL source, the task's PSF (SPEC section 6).

Conventions
-----------
* Lens-plane coordinates are arcsec from the stamp centre, pixel [c, c] with c = size // 2 (32),
  +x along the stamp's x axis (columns), +y along its y axis (rows); pixel [i, j] (row i, column
  j) is centred at ((j - c) * s, (i - c) * s), s = 0.262". lenstronomy sees exactly these
  coordinates, so no sky orientation enters the rendering.
* Lens: lenstronomy 'SIE' (theta_E, e1, e2, center) + 'SHEAR' (gamma1, gamma2) with the shear's
  origin (ra_0, dec_0) at the lens centre.
* Source: lenstronomy 'INTERPOL', which takes SURFACE BRIGHTNESS (flux per arcsec^2), not flux
  per pixel. The bank stamp holds flux per pixel (nmgy) at scale s_src (0.03"), so the image
  handed to INTERPOL is `stamp / stamp.sum() / s_src**2`: a source of total flux exactly 1
  (sum(image) * s_src**2 = 1, which is also the exact integral of INTERPOL's bilinear
  interpolant, the stamp's border being zero-padded). Each band is then that unit image times the
  band's source flux in nanomaggies. Feeding flux per pixel instead (the seed's bug) makes every
  arc s_src**2 = 1/1111 too faint; pipeline.physics_checks catches it.
  INTERPOL's centre is (lens centre + src offset), its rotation phi_G = src_phi_rad, its scale s_src.
* The source's position angle and sub-structure are common to all bands (COSMOS is one band), so
  the lensed image is ray-traced and evaluated ONCE per stamp and coloured per band afterwards.

Speed (one ray-trace, one source evaluation, one FFT of the lensed image per stamp)
-----------------------------------------------------------------------------------
0. Window: |SIE deflection| <= a (lens_deflection_bound, from lenstronomy's own formulas) and the
   shear deflects by gamma d at distance d from the lens centre, so a pixel farther than
   (support + |src offset| + a) / (1 - gamma) + 1 pixel from the lens centre (in x or y) cannot
   receive light; only the window inside that square is traced (all of the stamp for the largest
   Einstein radii). Pixels outside get exactly zero, as they would below.
1. Ray-trace the window's pixel CORNERS to the source plane (at most (n+1)^2 = 4,225 rays).
2. A pixel can receive light only if its image in the source plane reaches the source's support
   (the disc holding every non-zero source pixel plus INTERPOL's one-pixel bilinear reach). Each
   pixel's source-plane image is bounded by the box around its 4 corners' images, widened on each
   side by half the box's larger side plus 0.1 pixel (a generous bound on how far the mapped
   edges bulge between corners; the pixel holding the SIE's singular centre maps to a box
   spanning the Einstein ring, so it is always kept). Pixels whose widened box misses the disc
   get exactly zero flux.
3. Only the kept pixels are supersampled, with n_x x n_y sub-samples at sub-pixel centres:
   n_x = ceil(L_x / (1.5 s_src)), L_x the source-plane length of the pixel's longer horizontal
   edge (n_y likewise from the vertical edges), clipped to [supersampling, max_supersampling] =
   [4, 12]. The sub-samples then land at most ~1.5 source pixels apart in the source plane
   wherever the pixel is. Why adaptive: a fixed factor 4 undersamples the weakly magnified parts
   of an image (mu ~ 1: 0.066" steps over 0.03" source pixels); on 25 random demo-prior lenses with
   compact clumpy sources it was up to 1.6% (L1) off a lenstronomy supersampling-8 render. With
   this rule: <= 0.24% (median 0.06%) on 30 such lenses, ~11,600 rays per stamp, and the unlensed
   flux within 0.05% (a step of 2 source pixels: 0.3% L1, 0.4% flux, ~8,400 rays);
   benchmarks/injection_bench.py: max 0.27%, median 0.054% on 40 demo-prior stamps.
4. Every sub-sample is ray-traced, evaluated and averaged per pixel in ONE numba-compiled pass
   (_subsample_mean_sb; no temporaries). The lens is lenstronomy's SIE (its NIE with a 1e-10 core)
   + SHEAR, the same expressions in the same order (_lens_args, _deflect): bit-identical to
   LensModel(['SIE', 'SHEAR']).ray_shooting in tests/test_injection_render.py. The source is
   INTERPOL's bilinear interpolation of the zero-padded image (interpol_surface_brightness), equal
   to lenstronomy's to float rounding (same test file). Nothing is cached between stamps, so
   lenstronomy's INTERPOL-cache hazard (a reused LightModel renders the previous source) cannot
   occur; test_interpol_cache_regression still guards it.
   Flux per pixel = mean surface brightness of its sub-samples x pixel area (s^2).
5. magnification = lensed flux / unlensed flux (1 by construction) on this noiseless, pre-PSF,
   in-stamp image.
6. PSF (the survey's FWHM is that of the PIXELATED PSF, psf.py): the kept pixels' samples are
   averaged per sub-pixel of a PSF_SUBGRID x PSF_SUBGRID (2 x 2) sub-grid (sample counts rounded
   up to even), the sub-grid image is convolved with the task's PSF object's sub-grid kernel
   (psf.PSFModel.kernel(band, pixel, 2); Moffat: the Moffat whose pixel-integrated FWHM is the
   band's psf_fwhm, psf.subgrid_kernel, point samples at the sub-pixel centres), and each 2 x 2
   block is summed into its pixel: the pixel response is applied once, after the PSF, as in
   lenstronomy's supersampled convolution (the truth of the tests). One rfft2 of the box holding
   the non-zero pixels, zero-padded by R + 1 pixels on every side (no wrap-around), a batched
   inverse FFT over the bands, scaled by each band's source flux, copied back into the stamp.
   Pixels farther than R + 1 from the box are exactly 0. Flux that the PSF spreads past the stamp
   edge is lost, none wraps around. (Until issue 16 the pixel-integrated image was convolved
   with a pixel-integrated Moffat: the pixel applied twice, +1.4% FWHM at 1.3", 1.6-1.9% L1
   against the sub-grid truth.) Point-source FWHM on the pixel grid: -0.76% at 0.7" to -0.1% at
   1.8" (tests/test_injection_render.py); L1 against lenstronomy's supersampling-8 sub-grid
   render ~0.1%.
Measured (benchmarks/injection_bench.py, docs/benchmarks.md): 4.5x faster than the previous
numpy/lenstronomy version of this module on the same stamps, identical arcs to 1e-13 (relative).
The first call in a process compiles the kernels (~2-5 s; cached on disk by numba, in
$NUMBA_CACHE_DIR on EMR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numba
import numpy as np
import scipy.fft

from pipeline.errors import RowError
from pipeline.injection.psf import MAX_RADIUS_PIX, PSFModel, as_psf_model
from pipeline.units import DR10_PIXSCALE_ARCSEC

LENS_MODEL_LIST = ("SIE", "SHEAR")
#: Largest spacing of the sub-samples mapped to the source plane, in source pixels (step 3 below).
SOURCE_PLANE_STEP_PIX = 1.5


@dataclass(frozen=True)
class LensParams:
    theta_e_arcsec: float
    e1: float
    e2: float
    gamma1: float
    gamma2: float
    #: lens centre in lens-plane coordinates (arcsec from the stamp centre)
    center_x_arcsec: float = 0.0
    center_y_arcsec: float = 0.0

    def lenstronomy_kwargs(self) -> list[dict]:
        return [
            {"theta_E": self.theta_e_arcsec, "e1": self.e1, "e2": self.e2,
             "center_x": self.center_x_arcsec, "center_y": self.center_y_arcsec},
            {"gamma1": self.gamma1, "gamma2": self.gamma2,
             "ra_0": self.center_x_arcsec, "dec_0": self.center_y_arcsec},
        ]


@dataclass(frozen=True)
class SourcePlacement:
    #: source centre relative to the lens centre, arcsec (source plane)
    x_arcsec: float
    y_arcsec: float
    #: INTERPOL phi_G
    phi_rad: float


@dataclass
class ArcRender:
    #: noiseless, pre-PSF lensed image for a source of unit total flux, flux per pixel [n, n]
    lensed_unit: np.ndarray
    #: lensed / unlensed source flux (lensed_unit.sum(), the unit source having flux 1)
    magnification: float
    #: PSF-convolved arcs, nanomaggies per pixel, [nb, n, n] float32
    arcs: np.ndarray
    #: the (rounded) FWHMs the kernels were built with, per band (psf.fwhm_arcsec)
    psf_fwhm_arcsec: tuple[float, ...]
    #: pixels that were supersampled (diagnostics / speed)
    n_pixels_traced: int


def source_unit_surface_brightness(stamp_flux_per_pixel: np.ndarray, pixel_scale_arcsec: float) -> np.ndarray:
    """INTERPOL image (flux per arcsec^2) of the stamp rescaled to total flux 1.

    Raises RowError when the stamp has no positive total flux (nothing to lens)."""
    stamp = np.asarray(stamp_flux_per_pixel, dtype=np.float64)
    total = stamp.sum()
    if not (np.isfinite(total) and total > 0):
        raise RowError(f"source stamp has no positive total flux (sum = {total})")
    return stamp / total / pixel_scale_arcsec**2


def source_support_radius_arcsec(sb_image: np.ndarray, pixel_scale_arcsec: float) -> float:
    """Radius around the INTERPOL centre outside which the source is exactly 0 (any rotation):
    the farthest non-zero pixel centre plus one pixel diagonal (bilinear reach)."""
    nonzero = sb_image != 0
    if not nonzero.any():
        return 0.0
    r = _pixel_radius_grid(*sb_image.shape)[nonzero].max()
    return float((r + np.sqrt(2.0)) * pixel_scale_arcsec)


@lru_cache(maxsize=8)
def _pixel_radius_grid(ny: int, nx: int) -> np.ndarray:
    """Distance (pixels) of each pixel centre from the image centre; read-only, cached."""
    rows, cols = np.mgrid[0:ny, 0:nx]
    r = np.hypot(cols - (nx - 1) / 2.0, rows - (ny - 1) / 2.0)
    r.setflags(write=False)
    return r


def lens_deflection_bound(lens: LensParams) -> tuple[float, float]:
    """(alpha_max, gamma): |SIE deflection| <= alpha_max everywhere and |SHEAR deflection| =
    gamma |theta - lens centre|, for lenstronomy's SIE (NIE with a 1e-10 core) and SHEAR.

    lenstronomy's conventions: c = min(|(e1, e2)|, 0.9999), q = (1 - c) / (1 + c) (q >= 1 is
    replaced by 0.99999999), b = theta_E sqrt(2 q / (1 + q^2)) sqrt((1 + q^2) / 2) = theta_E sqrt(q);
    in the major-axis frame
    alpha_x = b / e' arctan(e' x / (psi + s)), alpha_y = b / e' arctanh(e' y / (psi + q^2 s)),
    e' = sqrt(1 - q^2), psi = sqrt(q^2 (s^2 + x^2) + y^2) >= max(q |x|, |y|), so
    |alpha_x| <= b arctan(e' / q) / e' and |alpha_y| <= b arctanh(e') / e'. 2% is added for
    rounding."""
    c = min(math.hypot(lens.e1, lens.e2), 0.9999)
    q = min((1.0 - c) / (1.0 + c), 0.99999999)
    b = lens.theta_e_arcsec * math.sqrt(q)
    ep = math.sqrt(1.0 - q * q)
    ax = b * math.atan(ep / q) / ep
    ay = b * math.atanh(ep) / ep
    return 1.02 * math.hypot(ax, ay), math.hypot(lens.gamma1, lens.gamma2)


@lru_cache(maxsize=1)
def _lens_model():
    # LensModel holds no per-call state for SIE/SHEAR, so one instance serves every stamp.
    from lenstronomy.LensModel.lens_model import LensModel  # noqa: PLC0415 - 9 s import

    return LensModel(list(LENS_MODEL_LIST))


@lru_cache(maxsize=8)
def _corner_axis(n_pix: int, pixel_scale_arcsec: float) -> np.ndarray:
    """Coordinates (arcsec) of the n_pix + 1 pixel edges along one axis; read-only, cached."""
    corner = (np.arange(n_pix + 1) - n_pix // 2 - 0.5) * pixel_scale_arcsec
    corner.setflags(write=False)
    return corner


def interpol_surface_brightness(x: np.ndarray, y: np.ndarray, image: np.ndarray, center_x: float,
                                center_y: float, phi_g: float, scale: float) -> np.ndarray:
    """lenstronomy INTERPOL's surface brightness (amp 1) at (x, y), computed here in one
    vectorised pass and with nothing cached between calls.

    Same mathematics as lenstronomy.LightModel.Profiles.interpolation.Interpol.function (1.14):
    (x, y) relative to the centre, divided by `scale`, rotated by phi_G (x' = x cos + y sin,
    y' = -x sin + y cos), then bilinear interpolation of the image zero-padded by one pixel, with
    pixel [r, c] of the padded image at (x', y') = (c - (n_c + 1) / 2, r - (n_r + 1) / 2); points
    beyond the padded image take its (zero) border value, as FITPACK's clamping does.
    Agreement with lenstronomy: tests/test_injection_render.py (to float rounding)."""
    ix = (x - center_x) / scale
    iy = (y - center_y) / scale
    cos, sin = np.cos(phi_g), np.sin(phi_g)
    xr = ix * cos + iy * sin
    yr = -ix * sin + iy * cos
    n_r, n_c = image.shape
    # continuous index into the padded image ((n + 2) pixels per side, original pixel 0 at 1)
    u = xr + (n_c + 1) / 2.0
    v = yr + (n_r + 1) / 2.0
    # clamp to the padded grid (its border is 0), then bilinear weights
    u = np.clip(u, 0.0, n_c + 1.0)
    v = np.clip(v, 0.0, n_r + 1.0)
    j0 = np.minimum(u.astype(np.intp), n_c)
    i0 = np.minimum(v.astype(np.intp), n_r)
    fu, fv = u - j0, v - i0
    padded = np.zeros((n_r + 2, n_c + 2))
    padded[1:-1, 1:-1] = image
    flat = padded.ravel()
    w = n_c + 2
    k = i0 * w + j0
    return ((1 - fv) * ((1 - fu) * flat[k] + fu * flat[k + 1])
            + fv * ((1 - fu) * flat[k + w] + fu * flat[k + w + 1]))


#: lenstronomy SIE's core: SIE is its NIE with s_scale = 1e-10 (lenstronomy 1.14 sie.py)
_SIE_S_SCALE = 1e-10


def _lens_args(lens: LensParams | None) -> tuple:
    """(active, b, s, q, cos phi, sin phi, centre x, centre y, gamma1, gamma2) for the compiled
    deflection, with lenstronomy's parameter conversion (NIE._param_conv, ellipticity2phi_q):
    phi = atan2(e2, e1) / 2, c = min(|e|, 0.9999), q = (1 - c) / (1 + c),
    b = theta_E / sqrt((1 + q^2) / (2 q)) * sqrt((1 + q^2) / 2), s = 1e-10 / sqrt(q); the major-axis
    deflection then uses q = 0.99999999 where q >= 1 (NIEMajorAxis.derivatives)."""
    if lens is None:  # no lens: the identity map (unlensed render)
        return (False, 0.0, 0.0, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    phi = math.atan2(lens.e2, lens.e1) / 2
    c = min(math.sqrt(lens.e1**2 + lens.e2**2), 0.9999)
    q = (1 - c) / (1 + c)
    theta_e_major = lens.theta_e_arcsec / math.sqrt((1.0 + q**2) / (2.0 * q))
    b = theta_e_major * math.sqrt((1 + q**2) / 2)
    s_core = _SIE_S_SCALE / math.sqrt(q)
    q_axis = 0.99999999 if q >= 1 else q
    return (True, b, s_core, q_axis, math.cos(phi), math.sin(phi), lens.center_x_arcsec, lens.center_y_arcsec,
            lens.gamma1, lens.gamma2)


@numba.njit(cache=True, nogil=True)
def _deflect(x, y, active, b, s_core, q, cos_p, sin_p, lcx, lcy, g1, g2):
    """Source-plane position of the image-plane point (x, y): lenstronomy's SIE (NIE.derivatives:
    shift, rotate by phi, Keeton & Kochanek 1998 major-axis deflection, rotate back) + SHEAR
    (ra_0, dec_0 = lens centre), the same expressions in the same order."""
    if not active:
        return x, y
    dx = x - lcx
    dy = y - lcy
    xr = dx * cos_p + dy * sin_p
    yr = -dx * sin_p + dy * cos_p
    psi = math.sqrt(q**2 * (s_core**2 + xr**2) + yr**2)
    e = math.sqrt(1.0 - q**2)
    fxr = b / e * math.atan(e * xr / (psi + s_core))
    fyr = b / e * math.atanh(e * yr / (psi + q**2 * s_core))
    ax = fxr * cos_p - fyr * sin_p
    ay = fxr * sin_p + fyr * cos_p
    ax += g1 * dx + g2 * dy
    ay += g2 * dx - g1 * dy
    return x - ax, y - ay


@numba.njit(cache=True, nogil=True)
def _ray_shoot_compiled(x, y, active, b, s_core, q, cos_p, sin_p, lcx, lcy, g1, g2, bx, by):
    for k in range(x.size):
        bx[k], by[k] = _deflect(x[k], y[k], active, b, s_core, q, cos_p, sin_p, lcx, lcy, g1, g2)


@numba.njit(cache=True, nogil=True)
def _subsample_mean_sb(keep_i, keep_j, n_x, n_y, row0, col0, s, active, b, s_core, q, cos_p, sin_p, lcx, lcy,
                       g1, g2, padded, src_cx, src_cy, cos_g, sin_g, scale, support2, out):
    """Mean INTERPOL surface brightness over each kept pixel's n_x x n_y sub-samples: sub-sample
    (u, v) of window pixel (i, j) is at ((j + col0 + (u + 0.5) / n_x) s, (i + row0 + (v + 0.5) / n_y) s),
    is ray-traced by _deflect and, when it lands within the support disc, evaluated exactly as
    interpol_surface_brightness does (bilinear on the zero-padded image)."""
    n_r = padded.shape[0] - 2
    n_c = padded.shape[1] - 2
    half_c = (n_c + 1) / 2.0
    half_r = (n_r + 1) / 2.0
    for k in range(keep_i.size):
        fx = n_x[k]
        fy = n_y[k]
        acc = 0.0
        for v in range(fy):
            py = (keep_i[k] + row0 + (v + 0.5) / fy) * s
            for u in range(fx):
                px = (keep_j[k] + col0 + (u + 0.5) / fx) * s
                sx, sy = _deflect(px, py, active, b, s_core, q, cos_p, sin_p, lcx, lcy, g1, g2)
                if (sx - src_cx) ** 2 + (sy - src_cy) ** 2 > support2:
                    continue
                ix = (sx - src_cx) / scale
                iy = (sy - src_cy) / scale
                uu = min(max(ix * cos_g + iy * sin_g + half_c, 0.0), n_c + 1.0)
                vv = min(max(-ix * sin_g + iy * cos_g + half_r, 0.0), n_r + 1.0)
                j0 = min(int(uu), n_c)
                i0 = min(int(vv), n_r)
                fu = uu - j0
                fv = vv - i0
                acc += ((1 - fv) * ((1 - fu) * padded[i0, j0] + fu * padded[i0, j0 + 1])
                        + fv * ((1 - fu) * padded[i0 + 1, j0] + fu * padded[i0 + 1, j0 + 1]))
        out[k] = acc / (fx * fy)


@numba.njit(cache=True, nogil=True)
def _subsample_subgrid_sb(keep_i, keep_j, n_x, n_y, k, row0, col0, s, active, b, s_core, q, cos_p, sin_p, lcx,
                          lcy, g1, g2, padded, src_cx, src_cy, cos_g, sin_g, scale, support2, out):
    """_subsample_mean_sb with the means taken per sub-pixel: a kept pixel is split into k x k
    sub-pixels and out[m, a, b] (row a, column b) is the mean surface brightness of the samples
    falling in sub-pixel (a, b). n_x and n_y are multiples of k, so each sub-pixel holds
    (n_x / k) x (n_y / k) samples on the same regular grid as _subsample_mean_sb's."""
    n_r = padded.shape[0] - 2
    n_c = padded.shape[1] - 2
    half_c = (n_c + 1) / 2.0
    half_r = (n_r + 1) / 2.0
    for m in range(keep_i.size):
        fx = n_x[m]
        fy = n_y[m]
        per_x = fx // k
        per_y = fy // k
        for a in range(k):
            for bb in range(k):
                out[m, a, bb] = 0.0
        for v in range(fy):
            py = (keep_i[m] + row0 + (v + 0.5) / fy) * s
            for u in range(fx):
                px = (keep_j[m] + col0 + (u + 0.5) / fx) * s
                sx, sy = _deflect(px, py, active, b, s_core, q, cos_p, sin_p, lcx, lcy, g1, g2)
                if (sx - src_cx) ** 2 + (sy - src_cy) ** 2 > support2:
                    continue
                ix = (sx - src_cx) / scale
                iy = (sy - src_cy) / scale
                uu = min(max(ix * cos_g + iy * sin_g + half_c, 0.0), n_c + 1.0)
                vv = min(max(-ix * sin_g + iy * cos_g + half_r, 0.0), n_r + 1.0)
                j0 = min(int(uu), n_c)
                i0 = min(int(vv), n_r)
                fu = uu - j0
                fv = vv - i0
                out[m, v // per_y, u // per_x] += (
                    (1 - fv) * ((1 - fu) * padded[i0, j0] + fu * padded[i0, j0 + 1])
                    + fv * ((1 - fu) * padded[i0 + 1, j0] + fu * padded[i0 + 1, j0 + 1]))
        norm = 1.0 / (per_x * per_y)
        for a in range(k):
            for bb in range(k):
                out[m, a, bb] *= norm


def _ray_shoot(x: np.ndarray, y: np.ndarray, lens: LensParams | None):
    """Source-plane positions of image-plane points (compiled lenstronomy SIE + SHEAR)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    bx, by = np.empty_like(x), np.empty_like(y)
    _ray_shoot_compiled(x, y, *_lens_args(lens), bx, by)
    return bx, by


def lensed_source_image(
    sb_image: np.ndarray,
    source_scale_arcsec: float,
    lens: LensParams | None,
    source: SourcePlacement,
    n_pix: int = 64,
    pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC,
    supersampling: int = 4,
    max_supersampling: int = 12,
    source_plane_step_pix: float = SOURCE_PLANE_STEP_PIX,
    subgrid: int = 1,
) -> tuple[np.ndarray, int]:
    """Noiseless pre-PSF lensed image, flux per pixel [n_pix, n_pix] float64, and the number of
    supersampled pixels. `sb_image` is INTERPOL surface brightness (see module docstring);
    `lens=None` renders the unlensed source (identity ray-trace). With subgrid = k > 1 the image is
    returned on the k x k sub-grid, [k n_pix, k n_pix] flux per sub-pixel (sub-pixel rows
    k i .. k i + k - 1 belong to pixel row i), the sample counts rounded up to multiples of k."""
    s = pixel_scale_arcsec
    c = n_pix // 2
    lens_cx = lens.center_x_arcsec if lens is not None else 0.0
    lens_cy = lens.center_y_arcsec if lens is not None else 0.0
    src_cx, src_cy = lens_cx + source.x_arcsec, lens_cy + source.y_arcsec
    support = source_support_radius_arcsec(sb_image, source_scale_arcsec)

    k = int(subgrid)
    out = np.zeros((n_pix * k, n_pix * k))
    # 0. the window of pixels that can receive light at all: a point theta maps to
    #    beta = theta - alpha_SIE - alpha_shear with |alpha_SIE| <= a and |alpha_shear| = g d,
    #    d = |theta - lens centre|, so |beta - source centre| >= d (1 - g) - |offset| - a, which
    #    exceeds the support radius for every d > reach. Pixels wholly beyond reach (in x or y)
    #    get exactly zero and are not traced at all (half a pixel diagonal < 1 pixel of margin).
    i_lo, i_hi, j_lo, j_hi = 0, n_pix - 1, 0, n_pix - 1
    if lens is not None:
        a_max, g = lens_deflection_bound(lens)
        if g < 1.0:
            reach = (support + math.hypot(source.x_arcsec, source.y_arcsec) + a_max) / (1.0 - g) + s
            j_lo = max(j_lo, math.floor((lens_cx - reach) / s) + c)
            j_hi = min(j_hi, math.ceil((lens_cx + reach) / s) + c)
            i_lo = max(i_lo, math.floor((lens_cy - reach) / s) + c)
            i_hi = min(i_hi, math.ceil((lens_cy + reach) / s) + c)
            if j_lo > j_hi or i_lo > i_hi:
                return out, 0
    n_i, n_j = i_hi - i_lo + 1, j_hi - j_lo + 1
    # 1. corners of the window's pixels -> source plane
    axis = _corner_axis(n_pix, s)
    cx = np.broadcast_to(axis[j_lo:j_hi + 2], (n_i + 1, n_j + 1)).ravel()
    cy = np.repeat(axis[i_lo:i_hi + 2], n_j + 1)
    bx, by = _ray_shoot(cx, cy, lens)
    bx = np.asarray(bx).reshape(n_i + 1, n_j + 1)
    by = np.asarray(by).reshape(n_i + 1, n_j + 1)
    # 2. per-pixel source-plane boxes, widened, against the source's support disc
    a, b, d, e = bx[:-1, :-1], bx[:-1, 1:], bx[1:, :-1], bx[1:, 1:]
    xlo = np.minimum(np.minimum(a, b), np.minimum(d, e))
    xhi = np.maximum(np.maximum(a, b), np.maximum(d, e))
    a, b, d, e = by[:-1, :-1], by[:-1, 1:], by[1:, :-1], by[1:, 1:]
    ylo = np.minimum(np.minimum(a, b), np.minimum(d, e))
    yhi = np.maximum(np.maximum(a, b), np.maximum(d, e))
    pad = 0.5 * np.maximum(xhi - xlo, yhi - ylo) + 0.1 * s
    xlo, xhi, ylo, yhi = xlo - pad, xhi + pad, ylo - pad, yhi + pad
    # distance from the source centre to the nearest point of each box
    ddx = np.maximum(np.maximum(xlo - src_cx, src_cx - xhi), 0.0)
    ddy = np.maximum(np.maximum(ylo - src_cy, src_cy - yhi), 0.0)
    keep_i, keep_j = np.nonzero(ddx * ddx + ddy * ddy <= support * support)  # window indices
    if keep_i.size == 0:
        return out, 0

    # 3. supersample the kept pixels only, each finely enough for its source-plane footprint:
    #    n_x sub-samples along x, n_y along y, from the source-plane lengths of the pixel's edges
    edge_x = np.hypot(bx[:, 1:] - bx[:, :-1], by[:, 1:] - by[:, :-1])  # [n+1, n] horizontal edges
    edge_y = np.hypot(bx[1:, :] - bx[:-1, :], by[1:, :] - by[:-1, :])  # [n, n+1] vertical edges
    len_x = np.maximum(edge_x[:-1, :], edge_x[1:, :])[keep_i, keep_j]
    len_y = np.maximum(edge_y[:, :-1], edge_y[:, 1:])[keep_i, keep_j]
    step = source_plane_step_pix * source_scale_arcsec
    lo, hi = int(supersampling), max(int(supersampling), int(max_supersampling))
    # (sub-sample (u, v) of a pixel with n_x x n_y sub-samples sits at offset
    #  ((u + 0.5) / n_x - 0.5, (v + 0.5) / n_y - 0.5) pixels from its centre)
    n_x = np.clip(np.ceil(len_x / step), lo, hi).astype(np.int64)
    n_y = np.clip(np.ceil(len_y / step), lo, hi).astype(np.int64)
    if k > 1:  # whole sub-pixels: every sub-pixel gets the same regular share of the samples
        n_x = -(-n_x // k) * k
        n_y = -(-n_y // k) * k
    # 4. every sub-sample ray-traced, evaluated and averaged per pixel in one compiled pass;
    #    mean surface brightness x pixel area = flux per pixel
    mean_sb = np.empty(keep_i.size)
    n_r, n_c = sb_image.shape
    padded = np.zeros((n_r + 2, n_c + 2))
    padded[1:-1, 1:-1] = sb_image
    lens_args = _lens_args(lens)
    if k == 1:
        _subsample_mean_sb(keep_i, keep_j, n_x, n_y, float(i_lo - c - 0.5), float(j_lo - c - 0.5), s, *lens_args,
                           padded, src_cx, src_cy, math.cos(source.phi_rad), math.sin(source.phi_rad),
                           source_scale_arcsec, support * support, mean_sb)
        out[keep_i + i_lo, keep_j + j_lo] = mean_sb * (s * s)
        return out, int(keep_i.size)
    sub_sb = np.empty((keep_i.size, k, k))
    _subsample_subgrid_sb(keep_i, keep_j, n_x, n_y, k, float(i_lo - c - 0.5), float(j_lo - c - 0.5), s,
                          *lens_args, padded, src_cx, src_cy, math.cos(source.phi_rad), math.sin(source.phi_rad),
                          source_scale_arcsec, support * support, sub_sb)
    view = out.reshape(n_pix, k, n_pix, k)
    view[keep_i + i_lo, :, keep_j + j_lo, :] = sub_sb * ((s / k) ** 2)
    return out, int(keep_i.size)


def fft_size_for(n_pix: int) -> int:
    """FFT grid for a linear (non-wrapping) convolution of an n_pix stamp with any kernel.
    (n_pix + the actual kernel radius would do, but for 64 + 19 that is 84 = 2^2 3 7, measured
    slower than 96 = 2^5 3.)"""
    return scipy.fft.next_fast_len(n_pix + MAX_RADIUS_PIX, real=True)


#: FFT sides the cropped convolution may use (products of 2, 3, 5: fast, and few of them, so
#: the per-(FWHM, size) kernel-spectrum cache stays small)
_CROP_FFT_SIZES = (32, 40, 48, 54, 64, 72, 80, 96)


def convolve_bands(
    lensed_unit: np.ndarray,
    band_flux_nmgy: Sequence[float],
    psf: PSFModel | Sequence[float],
    moffat_beta: float | None = None,
    pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC,
) -> np.ndarray:
    """Per-band PSF-convolved arcs [nb, n, n] float64 in nmgy/pixel from one unit-flux image, with
    each band's pixel kernel of `psf` (band_flux_nmgy in psf.bands order): one forward FFT for all
    bands, then one batched product and inverse FFT. (The pixel-level convolution used before issue
    16; the render uses convolve_bands_subgrid.)

    Only the box holding the image's non-zero pixels is transformed: the linear convolution is
    exactly zero more than R (the widest kernel's half-width) pixels outside it, so the box is
    placed at offset R in an L x L grid, L >= box + 2 R (no wrap-around), and the (box + 2 R)
    result is copied back into the stamp, clipped to it; every other pixel is exactly 0."""
    psf = as_psf_model(psf, moffat_beta)
    bands = psf.bands
    n = lensed_unit.shape[0]
    nb = len(band_flux_nmgy)
    flux = np.asarray(band_flux_nmgy, dtype=float)[:, None, None]
    rows = np.flatnonzero(lensed_unit.any(axis=1))
    arcs = np.zeros((nb, n, n))
    if rows.size == 0:
        return arcs
    cols = np.flatnonzero(lensed_unit.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    radius = max(psf.kernel(b, pixel_scale_arcsec).shape[0] // 2 for b in bands)
    need = max(r1 - r0, c1 - c0) + 2 * radius
    size = next((L for L in _CROP_FFT_SIZES if L >= need), None)
    if size is None:  # the whole stamp, as large as it gets
        size = fft_size_for(n)
        spectrum = scipy.fft.rfft2(lensed_unit, s=(size, size))
        kernels = np.stack([psf.kernel_rfft(b, size, pixel_scale_arcsec) for b in bands])
        conv = scipy.fft.irfft2(spectrum[None] * kernels, s=(size, size), axes=(-2, -1))
        return conv[:, :n, :n] * flux
    grid = np.zeros((size, size))
    grid[radius:radius + r1 - r0, radius:radius + c1 - c0] = lensed_unit[r0:r1, c0:c1]
    spectrum = scipy.fft.rfft2(grid)
    kernels = np.stack([psf.kernel_rfft(b, size, pixel_scale_arcsec) for b in bands])
    conv = scipy.fft.irfft2(spectrum[None] * kernels, s=(size, size), axes=(-2, -1))
    # grid pixel g <-> stamp pixel g - radius + r0 (rows), g - radius + c0 (columns)
    y0, y1 = max(r0 - radius, 0), min(r1 + radius, n)
    x0, x1 = max(c0 - radius, 0), min(c1 + radius, n)
    arcs[:, y0:y1, x0:x1] = conv[:, y0 - r0 + radius:y1 - r0 + radius, x0 - c0 + radius:x1 - c0 + radius] * flux
    return arcs


#: Sub-grid factor of the PSF convolution: the lensed image is convolved with the Moffat on a
#: PSF_SUBGRID x PSF_SUBGRID sub-grid of each 0.262" pixel and then summed to pixels (the pixel
#: response applied once, after the PSF: psf.py). 1/k of a pixel is the position resolution of
#: the pre-PSF image; the residual is O((pixel / k)^2): measured point-source FWHM and L1 against
#: lenstronomy's supersampling-8 sub-grid render in tests/test_injection_render.py and docs/physics.md.
PSF_SUBGRID = 2


def convolve_bands_subgrid(
    lensed_sub: np.ndarray,
    subgrid: int,
    band_flux_nmgy: Sequence[float],
    psf: PSFModel | Sequence[float],
    moffat_beta: float | None = None,
    pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC,
) -> np.ndarray:
    """Per-band arcs [nb, n, n] float64 (nmgy/pixel) from a unit-flux image on the k x k sub-grid
    [k n, k n]: one forward FFT, per band a product with the spectrum of the band's sub-grid
    kernel psf.kernel(band, pixel, k) (Moffat: psf.subgrid_kernel, the Moffat whose
    pixel-integrated FWHM is the band's psf_fwhm), one batched inverse FFT, then each k x k block
    summed into its pixel. band_flux_nmgy is in psf.bands order; `psf` may still be a FWHM per
    band with moffat_beta (psf.as_psf_model).

    Only the box of pixels holding non-zero sub-pixels is transformed, padded by R + 1 pixels
    (R = the widest band's psf.kernel_radius_pix; the sub-grid kernel reaches k R + k // 2 sub-pixels),
    in an L x L grid with L >= k (box + 2 R + 2), so nothing wraps around; the result is copied
    back into the stamp, clipped to it. Every other pixel is exactly 0."""
    psf = as_psf_model(psf, moffat_beta)
    bands = psf.bands
    k = int(subgrid)
    n = lensed_sub.shape[0] // k
    nb = len(band_flux_nmgy)
    flux = np.asarray(band_flux_nmgy, dtype=float)[:, None, None]
    arcs = np.zeros((nb, n, n))
    rows = np.flatnonzero(lensed_sub.any(axis=1))
    if rows.size == 0:
        return arcs
    cols = np.flatnonzero(lensed_sub.any(axis=0))
    r0, r1 = rows[0] // k, rows[-1] // k + 1
    c0, c1 = cols[0] // k, cols[-1] // k + 1
    pad = max(psf.kernel_radius_pix(b, pixel_scale_arcsec) for b in bands) + 1
    span = max(r1 - r0, c1 - c0) + 2 * pad
    size = scipy.fft.next_fast_len(k * span, real=True)
    grid = np.zeros((size, size))
    grid[k * pad:k * (pad + r1 - r0), k * pad:k * (pad + c1 - c0)] = lensed_sub[k * r0:k * r1, k * c0:k * c1]
    spectrum = scipy.fft.rfft2(grid)
    kernels = np.stack([psf.kernel_rfft(b, size, pixel_scale_arcsec, k) for b in bands])
    conv = scipy.fft.irfft2(spectrum[None] * kernels, s=(size, size), axes=(-2, -1))
    binned = conv[:, :k * span, :k * span].reshape(nb, span, k, span, k).sum(axis=(2, 4))
    # grid pixel g <-> stamp pixel g - pad + r0 (rows), g - pad + c0 (columns)
    y0, y1 = max(r0 - pad, 0), min(r0 - pad + span, n)
    x0, x1 = max(c0 - pad, 0), min(c0 - pad + span, n)
    arcs[:, y0:y1, x0:x1] = binned[:, y0 - r0 + pad:y1 - r0 + pad, x0 - c0 + pad:x1 - c0 + pad] * flux
    return arcs


def render_arc(
    source_stamp_flux_per_pixel: np.ndarray,
    source_scale_arcsec: float,
    lens: LensParams,
    source: SourcePlacement,
    band_flux_nmgy: Sequence[float],
    psf: PSFModel | Sequence[float],
    moffat_beta: float | None = None,
    n_pix: int = 64,
    pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC,
    supersampling: int = 4,
) -> ArcRender:
    """The injected arc in every band of `psf` (the task's PSF object, psf.psf_for_task;
    band_flux_nmgy in psf.bands order; see module docstring). `psf` may still be a FWHM per band
    with moffat_beta (a Moffat, psf.as_psf_model). Raises RowError when the source has no flux or
    the lensed image lands entirely outside the stamp."""
    psf = as_psf_model(psf, moffat_beta)
    sb = source_unit_surface_brightness(source_stamp_flux_per_pixel, source_scale_arcsec)
    k = PSF_SUBGRID
    lensed_sub, n_traced = lensed_source_image(sb, source_scale_arcsec, lens, source, n_pix,
                                               pixel_scale_arcsec, supersampling, subgrid=k)
    lensed = lensed_sub.reshape(n_pix, k, n_pix, k).sum(axis=(1, 3))
    magnification = float(lensed.sum())
    if not (np.isfinite(magnification) and magnification > 0):
        raise RowError(f"lensed source has no flux in the stamp (magnification {magnification})")
    fwhms = tuple(psf.fwhm_arcsec(b) for b in psf.bands)
    arcs = convolve_bands_subgrid(lensed_sub, k, band_flux_nmgy, psf, None, pixel_scale_arcsec)
    return ArcRender(lensed_unit=lensed, magnification=magnification, arcs=arcs.astype(np.float32),
                     psf_fwhm_arcsec=fwhms, n_pixels_traced=n_traced)
