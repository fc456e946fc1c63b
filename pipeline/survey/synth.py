"""A synthetic DR10-format mini-survey: brick coadds, the LRG table, and what was made.

`synth_survey(out)` writes, deterministically from `seed`:

    out/coadd/<brick>/legacysurvey-<brick>-{image,invvar,psfsize}-<band>.fits.fz, -maskbits.fits.fz
                         (<band>: every band of pipeline.bands, g, r, z)
    out/lrg.parquet      the Phase 3 LRG table (pipeline.survey.lrg_table)
    out/survey.json      parameters, seed, per-brick PSF/depth/stars/files (no timings: the
                         file is identical for identical inputs)

Content, per brick (all random draws from a generator seeded by (seed, brick index), so a
brick does not change when more bricks are asked for):

- Sky: zero mean (DR10 coadds are sky-subtracted) Gaussian noise with a constant sigma per band;
  invvar = 1/sigma^2, and 0 where a star saturates (SATUR_<b>) or masks every exposure
  (ALLMASK_<b>). There is no source shot noise (DR10's invvar is sky-dominated for these
  magnitudes).
- Depth: r-band 5-sigma point-source depth at the brick centre uniform in [23.6, 24.4], g 0.4
  mag deeper and z 1.0 mag shallower (+-0.08 mag scatter). sigma follows from the depth through
  the PSF's noise-equivalent area (profiles.psfdepth_mag):
      flux_sigma = sigma_pix * sqrt(NEA),   depth = 22.5 - 2.5 log10(5 * flux_sigma),
  NEA = 1/sum(p^2) of the pixel-integrated Moffat centred on a pixel. The table's psfdepth_<b>
  applies the same formula to the invvar and psfsize at the LRG's pixel, so it varies inside a
  brick with the PSF.
- PSF: Moffat, beta 3.5. FWHM at the brick centre drawn from a common "seeing" so bands
  correlate, inside g 1.2-2.0", r 0.9-1.7", z 0.8-1.6"; a linear gradient of up to +-8% corner
  to corner, the same in every band, is the psfsize map (rounded to 1/1024 arcsec).
- Stars: 2-4 per brick, r = 12-16 (one at 11.5-13 in 60% of bricks), rendered with the PSF.
  DR10 maskbits, with Gaia G taken equal to r: MEDIUM (G < 16) and BRIGHT (G < 13) inside
  legacypipe's radius
  1630" * 1.396^-G; SATUR_<b> where the star exceeds SATURATION_NMGY_PER_PIX in band b, plus a
  3-pixel-wide bleed trail along y for cores 10x over it; ALLMASK_<b> on the inner core
  (3x the level) and trail. Saturated pixels hold the clipped star, without noise.
- LRGs: truncated de Vaucouleurs (profiles.py), r = 18-20.4 (more at the faint end),
  g-r 1.3-1.9 and r-z 0.7-1.1 (redder when fainter), semi-major r_e 0.5-2.5" (smaller when
  fainter), axis ratio 0.5-1, random angle; rendered in Fourier space with the local PSF (exact
  pixel integration, flux exact to float rounding). Centres at least 10 pixels apart, never on
  a saturated/ALLMASK core, and only 15% of those falling in a star halo are kept. A fraction
  `edge_frac` (1%) sits 3-28 pixels from a brick edge, so their 64x64 cutouts leave the brick;
  every other LRG's cutout is at least one pixel inside it.

Demo scale (defaults): 24 bricks of 768 x 768 pixels (3.4' across; DR10 bricks are 3600 pixels,
15.7') with 250 LRGs each: ~6,000 LRGs, ~5,940 with full 64x64 cutouts. That is about 80,000
LRGs per square degree, ~130x the DESI LRG target density (~600 per square degree): it keeps
the demo small, and neighbouring LRGs often show up inside each other's 64x64 cutouts. Bricks sit on
a jittered grid 0.35 deg apart around (RA, Dec) = (150, 2.2), so 0.1-degree sky regions hold
LRGs from one brick each and there are > 40 of them.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from pipeline import __version__, storage
from pipeline import bands as _bands
from pipeline.errors import InputError
from pipeline.survey import maskbits as mb
from pipeline.survey import profiles
from pipeline.survey.brick import BrickCoadds
from pipeline.survey.bricks import brick_wcs, brickname_for, cutout_inside, nearest_pixel
from pipeline.survey.coadds import DEFAULT_DITHER_SEED, IMAGE_QUANTIZE_LEVEL, write_brick
from pipeline.survey.lrg_table import write_lrg_table
from pipeline.units import DR10_PIXSCALE_ARCSEC, NMGY_ZEROPOINT_AB, mag_to_nmgy

log = logging.getLogger(__name__)

#: the survey's bands and their synthetic-survey parameters: the band table (pipeline.bands)
BANDS = _bands.BANDS
FWHM_RANGE_ARCSEC = {b.name: b.synth_fwhm_range_arcsec for b in _bands.BAND_TABLE}
#: Largest relative PSF change from the brick centre to a corner.
PSF_GRADIENT_MAX = 0.08
#: r depth at the brick centre; the PSF gradient moves the depth at an LRG by up to +-0.08 mag,
#: so LRG depths stay inside DR10's 23.5-24.5.
DEPTH_R_RANGE_MAG = (23.6, 24.4)
DEPTH_OFFSET_MAG = {b.name: b.synth_depth_offset_mag for b in _bands.BAND_TABLE}
#: Normal sigma of each band's depth about r + offset (None: no draw, the reference band)
DEPTH_SCATTER_MAG = {b.name: b.synth_depth_scatter_mag for b in _bands.BAND_TABLE}
#: Per-pixel level above which a star's core counts as saturated (17.5 mag/pixel): stars
#: brighter than about r = 15 get SATUR cores at these seeings.
SATURATION_NMGY_PER_PIX = 30.0
LRG_MAG_R_RANGE = (18.0, 20.4)
LRG_GR_RANGE = (1.3, 1.9)
LRG_RZ_RANGE = (0.7, 1.1)
LRG_RE_RANGE_ARCSEC = (0.5, 2.5)
LRG_MIN_SEPARATION_PIX = 10.0
LRG_HALO_KEEP_PROB = 0.15
CUTOUT_SIZE_PIX = 64
REGION_SIZE_DEG = 0.1


@dataclass(frozen=True)
class SynthParams:
    seed: int = 20260204
    n_bricks: int = 24
    brick_size_pix: int = 768
    lrgs_per_brick: int = 250
    #: fraction of each brick's LRGs placed so their 64x64 cutout leaves the brick
    edge_frac: float = 0.01
    #: (min, max) bright stars per brick, inclusive
    stars_per_brick: tuple = (2, 4)
    center_ra_deg: float = 150.0
    center_dec_deg: float = 2.2
    #: grid step between brick centres (raised to twice the brick size for large bricks)
    brick_spacing_deg: float = 0.35
    moffat_beta: float = 3.5
    quantize_level: float = IMAGE_QUANTIZE_LEVEL
    dither_seed: int = DEFAULT_DITHER_SEED
    bands: tuple = BANDS

    def validate(self) -> None:
        def bad(key, why):
            raise InputError(f"survey synth: {key}", why)

        if self.n_bricks < 1:
            bad("n_bricks", f"must be >= 1, got {self.n_bricks}")
        if self.brick_size_pix < 2 * CUTOUT_SIZE_PIX:
            bad("brick_size", f"must be >= {2 * CUTOUT_SIZE_PIX} pixels so 64x64 cutouts fit, got {self.brick_size_pix}")
        if self.lrgs_per_brick < 0:
            bad("lrgs_per_brick", f"must be >= 0, got {self.lrgs_per_brick}")
        if not 0 <= self.edge_frac <= 1:
            bad("edge_frac", f"must be in [0, 1], got {self.edge_frac}")
        if not self.quantize_level > 0:
            bad("quantize_level", f"must be > 0, got {self.quantize_level}")
        if not 1 <= self.dither_seed <= 10000:
            bad("dither_seed", f"must be in 1..10000 (FITS ZDITHER0), got {self.dither_seed}")
        if not 0 <= self.stars_per_brick[0] <= self.stars_per_brick[1]:
            bad("stars_per_brick", f"need 0 <= min <= max, got {self.stars_per_brick}")
        if tuple(self.bands) != BANDS:
            bad("bands", f"the synthetic survey writes {', '.join(BANDS)}")


@dataclass
class SynthBrick:
    coadds: BrickCoadds
    lrgs: pd.DataFrame
    info: dict = field(default_factory=dict)


def brick_centers(params: SynthParams) -> list[tuple[float, float]]:
    """Brick centres on a jittered grid (jitter from each brick's own generator)."""
    ncol = math.ceil(math.sqrt(params.n_bricks))
    nrow = math.ceil(params.n_bricks / ncol)
    # jitter of +-1/4 step leaves >= step/2 between centres: bricks never overlap
    step = max(params.brick_spacing_deg, 2.0 * params.brick_size_pix * DR10_PIXSCALE_ARCSEC / 3600.0)
    out = []
    for i in range(params.n_bricks):
        rng = _brick_rng(params.seed, i, "center")
        row, col = divmod(i, ncol)
        dec = params.center_dec_deg + (row - (nrow - 1) / 2) * step + rng.uniform(-0.25, 0.25) * step
        ra = params.center_ra_deg + ((col - (ncol - 1) / 2) * step + rng.uniform(-0.25, 0.25) * step) / math.cos(
            math.radians(dec))
        out.append((round(ra % 360.0, 8), round(dec, 8)))
    return out


def _brick_rng(seed: int, index: int, purpose: str) -> np.random.Generator:
    # Independent streams per brick and purpose: changing n_bricks or adding a draw elsewhere
    # leaves the other streams alone.
    tag = {"center": 0, "content": 1}[purpose]
    return np.random.default_rng([int(seed), int(index), tag])


def _psf_maps(rng, shape, fwhm_center):
    ny, nx = shape
    gx, gy = rng.uniform(-1, 1, 2) * PSF_GRADIENT_MAX
    # |gx| + |gy| <= PSF_GRADIENT_MAX keeps every corner within the stated range
    total = abs(gx) + abs(gy)
    if total > PSF_GRADIENT_MAX:
        gx, gy = gx * PSF_GRADIENT_MAX / total, gy * PSF_GRADIENT_MAX / total
    ramp = (1.0 + gx * (2 * np.arange(nx) / max(nx - 1, 1) - 1))[None, :] + \
           (gy * (2 * np.arange(ny) / max(ny - 1, 1) - 1))[:, None]
    maps = {}
    for band, c in fwhm_center.items():
        lo, hi = FWHM_RANGE_ARCSEC[band]
        maps[band] = (np.round(np.clip(c * ramp, lo, hi) * 1024) / 1024).astype(np.float32)
    return maps, (float(gx), float(gy))


def _add_stamp(target: np.ndarray, stamp: np.ndarray, x0: int, y0: int) -> None:
    """target[y0:y0+n, x0:x0+n] += stamp, clipped to the target."""
    ny, nx = target.shape
    n = stamp.shape[0]
    xa, ya = max(x0, 0), max(y0, 0)
    xb, yb = min(x0 + n, nx), min(y0 + n, ny)
    if xa < xb and ya < yb:
        target[ya:yb, xa:xb] += stamp[ya - y0:yb - y0, xa - x0:xb - x0]


def _render_into(models, x, y, flux, fwhm_arcsec, beta, re_arcsec=0.0, q=1.0, pa=0.0, n_pix=None):
    fwhm_pix = [f / DR10_PIXSCALE_ARCSEC for f in fwhm_arcsec]
    re_pix = re_arcsec / DR10_PIXSCALE_ARCSEC
    n = n_pix or profiles.stamp_size_for(re_pix, max(fwhm_pix))
    xc, yc = int(nearest_pixel(x)), int(nearest_pixel(y))
    stamps = profiles.render(n, n // 2 + (x - xc), n // 2 + (y - yc), flux, fwhm_pix, beta, re_pix, q, pa)
    for band_model, stamp in zip(models, stamps):
        _add_stamp(band_model, stamp, xc - n // 2, yc - n // 2)


def _star_mask_radius_arcsec(mag: float) -> float:
    # legacypipe's reference-star mask radius (DR9/DR10)
    return 1630.0 * 1.396 ** (-mag)


def make_brick(params: SynthParams, index: int, center: tuple[float, float], *, noise: bool = True) -> SynthBrick:
    """Everything about one brick, in memory: coadds, its LRG rows, a description.
    noise=False leaves the sky noise out of the images (the same draws are still made, so
    everything else is unchanged): tests use it to check the rendered fluxes."""
    rng = _brick_rng(params.seed, index, "content")
    ra_c, dec_c = center
    name = brickname_for(ra_c, dec_c)
    n = params.brick_size_pix
    shape = (n, n)
    wcs = brick_wcs(ra_c, dec_c, n)
    beta = params.moffat_beta

    # PSF: one seeing draw shared by the bands, kept inside each band's range after the gradient
    seeing = rng.uniform()
    fwhm_center = {}
    for band in BANDS:
        lo, hi = FWHM_RANGE_ARCSEC[band]
        lo_c, hi_c = lo / (1 - PSF_GRADIENT_MAX), hi / (1 + PSF_GRADIENT_MAX)
        fwhm_center[band] = float(np.clip(lo_c + seeing * (hi_c - lo_c) + rng.normal(0, 0.03), lo_c, hi_c))
    psfsize, gradient = _psf_maps(rng, shape, fwhm_center)

    # depth -> per-pixel sigma through the PSF's noise-equivalent area at the brick centre
    depth_r = rng.uniform(*DEPTH_R_RANGE_MAG)
    depth_center, sigma, invvar_value = {}, {}, {}
    for band in BANDS:
        scatter = DEPTH_SCATTER_MAG[band]
        depth = depth_r + DEPTH_OFFSET_MAG[band] + (rng.normal(0, scatter) if scatter is not None else 0.0)
        nea = profiles.moffat_nea_pix(fwhm_center[band], beta, DR10_PIXSCALE_ARCSEC)
        flux_sigma = mag_to_nmgy(depth) / 5.0
        invvar_value[band] = np.float32(nea / flux_sigma ** 2)
        sigma[band] = float(1.0 / math.sqrt(invvar_value[band]))
        depth_center[band] = float(depth)

    models = np.zeros((len(BANDS), n, n), dtype=np.float64)
    maskbits = np.zeros(shape, dtype=np.int32)
    yy, xx = np.mgrid[0:n, 0:n]

    # stars
    n_stars = int(rng.integers(params.stars_per_brick[0], params.stars_per_brick[1] + 1))
    star_mag_r = rng.uniform(12.0, 16.0, n_stars)
    if rng.uniform() < 0.6 and n_stars:
        star_mag_r[0] = rng.uniform(11.5, 13.0)
    stars = []
    saturated = {b: np.zeros(shape, bool) for b in BANDS}
    for k in range(n_stars):
        x, y = rng.uniform(0, n - 1, 2)
        gr, rz = rng.uniform(0.3, 1.1), rng.uniform(0.1, 0.5)
        mags = _bands.band_magnitudes(star_mag_r[k], gr, rz)
        xc, yc = int(nearest_pixel(x)), int(nearest_pixel(y))
        fw = [float(psfsize[b][yc, xc]) for b in BANDS]
        star_model = [np.zeros(shape) for _ in BANDS]
        _render_into(star_model, x, y, [mag_to_nmgy(mags[b]) for b in BANDS], fw, beta,
                     n_pix=256 if star_mag_r[k] < 14 else 128)
        r2 = (xx - x) ** 2 + (yy - y) ** 2
        radius_pix = _star_mask_radius_arcsec(star_mag_r[k]) / DR10_PIXSCALE_ARCSEC
        halo = r2 <= radius_pix ** 2
        maskbits[halo] |= mb.MEDIUM
        if star_mag_r[k] < 13:
            maskbits[halo] |= mb.BRIGHT
        for i, band in enumerate(BANDS):
            m = star_model[i]
            peak = float(m.max())
            satur = m > SATURATION_NMGY_PER_PIX
            allmask = m > 3 * SATURATION_NMGY_PER_PIX
            if peak > 10 * SATURATION_NMGY_PER_PIX:
                # bleed trail along the readout direction (y), longer for brighter cores
                half_len = int(round(6 * math.log10(peak / SATURATION_NMGY_PER_PIX) * fw[i] / DR10_PIXSCALE_ARCSEC))
                trail = (np.abs(xx - xc) <= 1) & (np.abs(yy - yc) <= half_len)
                satur |= trail
                allmask |= trail
            maskbits[satur] |= mb.SATUR[band]
            maskbits[allmask] |= mb.ALLMASK[band]
            saturated[band] |= satur | allmask
            models[i] += m
        stars.append({"x_pix": float(x), "y_pix": float(y), **{f"mag_{b}": float(mags[b]) for b in BANDS},
                      "mask_radius_arcsec": float(_star_mask_radius_arcsec(star_mag_r[k])),
                      "bright": bool(star_mag_r[k] < 13)})
    any_saturated = np.zeros(shape, bool)
    for band in BANDS:
        any_saturated |= saturated[band]
    # an LRG centre may not sit within 3 pixels of a saturated pixel
    from scipy.ndimage import binary_dilation  # noqa: PLC0415 - only the synth needs it

    core_zone = binary_dilation(any_saturated, iterations=3)
    halo_zone = (maskbits & (mb.BRIGHT | mb.MEDIUM)) != 0

    # LRG positions
    n_lrg = params.lrgs_per_brick
    n_edge = int(round(params.edge_frac * n_lrg))
    xs, ys, is_edge = [], [], []
    attempts = 0
    while len(xs) < n_lrg and attempts < 100 * max(n_lrg, 1):
        attempts += 1
        edge = len(xs) < n_edge
        if edge:
            # centre pixel 3..28 pixels from one edge: the cutout leaves the brick by 4..29
            d = rng.uniform(2.5, 28.5)
            along = rng.uniform(40, n - 41)
            side = int(rng.integers(4))
            x, y = [(d, along), (n - 1 - d, along), (along, d), (along, n - 1 - d)][side]
        else:
            # centre pixel 33 .. n-34: the cutout is at least one pixel inside the brick
            x, y = rng.uniform(32.5, n - 33.5, 2)
        xc, yc = int(nearest_pixel(x)), int(nearest_pixel(y))
        if core_zone[yc, xc]:
            continue
        if halo_zone[yc, xc] and rng.uniform() > LRG_HALO_KEEP_PROB:
            continue
        if xs and np.min((np.asarray(xs) - x) ** 2 + (np.asarray(ys) - y) ** 2) < LRG_MIN_SEPARATION_PIX ** 2:
            continue
        xs.append(float(x))
        ys.append(float(y))
        is_edge.append(edge)
    xs_a, ys_a = np.asarray(xs), np.asarray(ys)
    k = xs_a.size

    # LRG photometry and shapes
    lam = 1.0  # dN/dm ~ exp(m): more LRGs at the faint end
    lo, hi = LRG_MAG_R_RANGE
    u = rng.uniform(size=k)
    mag_r = lo + np.log1p(u * np.expm1(lam * (hi - lo))) / lam
    faint = (mag_r - 19.2) / 1.2
    gr = np.clip(1.55 + 0.12 * faint + rng.normal(0, 0.1, k), *LRG_GR_RANGE)
    rz = np.clip(0.88 + 0.06 * faint + rng.normal(0, 0.06, k), *LRG_RZ_RANGE)
    re_arcsec = np.clip(10 ** (math.log10(1.1) - 0.15 * (mag_r - 19.2) + rng.normal(0, 0.12, k)), *LRG_RE_RANGE_ARCSEC)
    axis_ratio = np.clip(rng.normal(0.78, 0.13, k), 0.5, 1.0)
    pa = rng.uniform(0, np.pi, k)
    mags = _bands.band_magnitudes(mag_r, gr, rz)
    xc_a, yc_a = nearest_pixel(xs_a), nearest_pixel(ys_a)
    psf_at = {b: psfsize[b][yc_a, xc_a].astype(float) for b in BANDS}
    for j in range(k):
        _render_into(models, xs_a[j], ys_a[j], [mag_to_nmgy(mags[b][j]) for b in BANDS],
                     [psf_at[b][j] for b in BANDS], beta, re_arcsec[j], axis_ratio[j], pa[j])

    # noise, invvar, saturation
    unit_noise = rng.standard_normal((len(BANDS), n, n), dtype=np.float32)
    image, invvar = {}, {}
    for i, band in enumerate(BANDS):
        iv = np.full(shape, invvar_value[band], dtype=np.float32)
        iv[saturated[band]] = 0.0
        img = (models[i] + (sigma[band] if noise else 0.0) * unit_noise[i]).astype(np.float32)
        img[saturated[band]] = np.minimum(models[i][saturated[band]], SATURATION_NMGY_PER_PIX).astype(np.float32)
        image[band], invvar[band] = img, iv

    coadds = BrickCoadds(brickname=name, wcs=wcs, image=image, invvar=invvar, maskbits=maskbits, psfsize=psfsize)

    ra, dec = wcs.all_pix2world(xs_a, ys_a, 0) if k else (np.zeros(0), np.zeros(0))
    lrgs = pd.DataFrame({
        "lrg_id": (index * 1_000_000 + np.arange(k)).astype(np.int64),
        "brickname": [name] * k,
        "ra": np.asarray(ra, dtype=float) % 360.0,
        "dec": np.asarray(dec, dtype=float),
        **{f"mag_{b}": mags[b] for b in BANDS},
        **{f"psfsize_{b}": psf_at[b] for b in BANDS},
        **{f"psfdepth_{b}": _depths(invvar[b][yc_a, xc_a], psf_at[b], beta) for b in BANDS},
        "bx": xs_a, "by": ys_a,
        "shape_r_arcsec": re_arcsec, "axis_ratio": axis_ratio, "pa_pix_deg": np.degrees(pa),
        "maskbits": maskbits[yc_a, xc_a].astype(np.int32),
        "cutout_inside": cutout_inside(xs_a, ys_a, shape, CUTOUT_SIZE_PIX),
    })
    info = {
        "index": index, "brickname": name, "ra": ra_c, "dec": dec_c, "width_pix": n, "height_pix": n,
        "psf_fwhm_center_arcsec": fwhm_center,
        "psf_fwhm_range_arcsec": {b: [float(psfsize[b].min()), float(psfsize[b].max())] for b in BANDS},
        "psf_gradient_xy": list(gradient),
        "psfdepth_center_mag": depth_center,
        "sky_sigma_nmgy": sigma,
        "invvar": {b: float(invvar_value[b]) for b in BANDS},
        "stars": stars,
        "masked_frac": {b: float(saturated[b].mean()) for b in BANDS},
        "halo_frac": float(halo_zone.mean()),
        "n_lrg": int(k),
        "n_lrg_cutout_inside": int(lrgs["cutout_inside"].sum()),
        "n_lrg_requested": int(n_lrg),
    }
    return SynthBrick(coadds=coadds, lrgs=lrgs, info=info)


def _depths(invvar_at, fwhm_at, beta):
    """profiles.psfdepth_mag per LRG; the NEA is computed once per distinct PSF size."""
    fwhm_at = np.asarray(fwhm_at, dtype=float)
    unique, inverse = np.unique(fwhm_at, return_inverse=True)
    nea = np.array([profiles.moffat_nea_pix(float(f), beta, DR10_PIXSCALE_ARCSEC) for f in unique])[inverse]
    invvar_at = np.asarray(invvar_at, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        flux_sigma = np.where(invvar_at > 0, np.sqrt(nea / np.where(invvar_at > 0, invvar_at, 1.0)), np.nan)
        return NMGY_ZEROPOINT_AB - 2.5 * np.log10(5.0 * flux_sigma)


def count_regions(ra_deg, dec_deg, size_deg: float = REGION_SIZE_DEG) -> int:
    """Distinct square sky cells of `size_deg` on (ra cos dec, dec) holding at least one position."""
    ra = np.asarray(ra_deg, dtype=float)
    dec = np.asarray(dec_deg, dtype=float)
    cells = set(zip(np.floor(ra * np.cos(np.radians(dec)) / size_deg).astype(int).tolist(),
                    np.floor(dec / size_deg).astype(int).tolist()))
    return len(cells)


def _synth_and_write_brick(job) -> tuple[dict, "pd.DataFrame"]:
    """One brick made and written: (its info with files and bytes, its LRG rows)."""
    params, index, center, coadd_prefix = job
    brick = make_brick(params, index, center)
    written = write_brick(coadd_prefix, brick.coadds, quantize_level=params.quantize_level,
                          dither_seed=params.dither_seed)
    brick.info["files"] = {uri.replace("\\", "/").rsplit("/", 1)[-1]: size for uri, size in sorted(written.items())}
    brick.info["bytes"] = int(sum(written.values()))
    return brick.info, brick.lrgs


def synth_survey(
    out_dir: str,
    *,
    seed: int = SynthParams.seed,
    n_bricks: int = SynthParams.n_bricks,
    brick_size_pix: int = SynthParams.brick_size_pix,
    lrgs_per_brick: int = SynthParams.lrgs_per_brick,
    edge_frac: float = SynthParams.edge_frac,
    quantize_level: float = SynthParams.quantize_level,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> dict:
    """Write a synthetic DR10-format survey under `out_dir` (local or S3); returns a summary:
    bricks, LRG counts, regions, bytes, paths, elapsed seconds. `workers` processes make the
    bricks (default: one per CPU for a local `out_dir`, 1 for S3); the files do not depend on it."""
    params = SynthParams(seed=int(seed), n_bricks=int(n_bricks), brick_size_pix=int(brick_size_pix),
                         lrgs_per_brick=int(lrgs_per_brick), edge_frac=float(edge_frac),
                         quantize_level=float(quantize_level))
    params.validate()
    say = progress or log.info
    t0 = time.perf_counter()
    centers = brick_centers(params)
    names = [brickname_for(*c) for c in centers]
    if len(set(names)) != len(names):
        raise InputError("survey synth: brick_spacing_deg", "two bricks got the same DR10 name")
    coadd_prefix = storage.join(str(out_dir), "coadd")
    bricks_info, tables, total_bytes = [], [], 0
    jobs = [(params, i, center, coadd_prefix) for i, center in enumerate(centers)]
    if workers is None:
        # bricks are independent and seeded per brick: a pool only changes the wall time. S3
        # outputs stay in this process (one boto3 client, and moto's in-process mock in tests).
        workers = 1 if storage.is_s3(str(out_dir)) else min(os.cpu_count() or 1, params.n_bricks)
    pool = multiprocessing.get_context("fork").Pool(int(workers)) if int(workers) > 1 else None
    try:
        results = pool.imap(_synth_and_write_brick, jobs) if pool else map(_synth_and_write_brick, jobs)
        for i, (info, lrgs) in enumerate(results):
            total_bytes += info["bytes"]
            bricks_info.append(info)
            tables.append(lrgs)
            say(f"brick {i + 1}/{params.n_bricks} {info['brickname']}: {info['n_lrg']} LRGs "
                f"({info['n_lrg_cutout_inside']} with full cutouts), "
                f"{info['bytes'] / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s")
    finally:
        if pool:
            pool.terminate()
    lrgs = pd.concat(tables, ignore_index=True)
    lrg_uri = storage.join(str(out_dir), "lrg.parquet")
    total_bytes += write_lrg_table(lrgs, lrg_uri)
    inside = lrgs["cutout_inside"].to_numpy(bool)
    totals = {
        "n_bricks": params.n_bricks,
        "n_lrg": int(len(lrgs)),
        "n_lrg_cutout_inside": int(inside.sum()),
        "n_regions_0p1deg": count_regions(lrgs["ra"][inside], lrgs["dec"][inside]),
        "bytes_coadds_and_table": int(total_bytes),
    }
    survey = {
        "format": "dhs-synthetic-dr10-survey",
        "format_version": 1,
        "pipeline_version": __version__,
        "seed": params.seed,
        "parameters": {**asdict(params), "bands": list(params.bands), "stars_per_brick": list(params.stars_per_brick)},
        "layout": {"coadd_prefix": "coadd", "lrg_table": "lrg.parquet"},
        "model": {
            "pixscale_arcsec": DR10_PIXSCALE_ARCSEC,
            "image_units": "nanomaggies per pixel (AB zero point 22.5)",
            "psf": f"Moffat beta {params.moffat_beta}; FWHM from the psfsize maps",
            "lrg_profile": "de Vaucouleurs (Sersic n=4), soft-truncated between 7 and 8 r_e",
            "psfdepth": "22.5 - 2.5 log10(5 sqrt(NEA / invvar)); NEA = 1/sum(p^2) of the pixel-integrated PSF",
            "saturation_nmgy_per_pix": SATURATION_NMGY_PER_PIX,
            "compression": {
                "image": f"RICE_1, SUBTRACTIVE_DITHER_2, quantize_level {params.quantize_level}, "
                         f"dither_seed {params.dither_seed}: |error| <= step/2 = sky sigma / "
                         f"{2 * params.quantize_level:g}",
                "invvar": "RICE_1 integers of 2^-24 of the maximum, exact", "psfsize": "RICE_1 integers of 1/1024 arcsec, exact", "maskbits": "HCOMPRESS_1 lossless int16",
            },
            "lrg_density_note": "demo LRG density is ~130x the real sky; demo bricks are smaller than DR10's 3600 px",
        },
        "totals": totals,
        "bricks": bricks_info,
    }
    survey_bytes = (json.dumps(survey, indent=1, sort_keys=False) + "\n").encode()
    storage.write_bytes(storage.join(str(out_dir), "survey.json"), survey_bytes)
    elapsed = time.perf_counter() - t0
    say(f"wrote {totals['n_lrg']} LRGs ({totals['n_lrg_cutout_inside']} with full cutouts) in "
        f"{params.n_bricks} bricks, {total_bytes / 1e6:.1f} MB, {elapsed:.1f} s")
    return {
        **totals,
        "bytes": int(total_bytes + len(survey_bytes)),
        "elapsed_s": round(elapsed, 2),
        "out_dir": str(out_dir),
        "coadd_prefix": coadd_prefix,
        "lrg_table": lrg_uri,
        "survey_json": storage.join(str(out_dir), "survey.json"),
        "seed": params.seed,
    }


def read_survey_info(out_dir: str) -> dict:
    """The survey.json of an existing synthetic survey; InputError when absent or unreadable."""
    uri = storage.join(str(out_dir), "survey.json")
    raw = storage.read_bytes(uri)
    try:
        info = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(uri, f"not valid JSON ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != "dhs-synthetic-dr10-survey":
        raise InputError(uri, "not a survey.json written by `dhs survey synth`")
    return info
