"""In-memory bricks, COSMOS banks and tasks for tests (no files, no survey/bank builders).

Everything is deterministic (seeded). Reusable by any test:
    brick = make_brick()                      # 200x200 pixel grz brick, LRGs at BRICK_LRGS
    bank = make_bank(n=6)                     # clumpy sources, 96x96 at 0.03"/pixel
    task = make_task(brick, lrg=0, ...)       # a manifest-like injection task dict
"""

from __future__ import annotations

import math

import numpy as np
from astropy.wcs import WCS

from pipeline.bank.store import CosmosBank
from pipeline.survey import maskbits as mb
from pipeline.survey.brick import BrickCoadds
from pipeline.units import COSMOS_PIXSCALE_ARCSEC, DR10_PIXSCALE_ARCSEC, mag_to_nmgy

BRICK_RA, BRICK_DEC = 150.0, 2.0
BRICK_SIZE_PIX = 200
#: (x, y) brick pixel positions of the LRGs (sub-pixel offsets on purpose) and their r mags
BRICK_LRGS = ((70.3, 80.6, 18.5), (140.8, 60.2, 19.0), (100.0, 150.4, 18.0), (10.0, 100.0, 19.0))
PSF_FWHM = {"g": 1.45, "r": 1.25, "z": 1.1}
SKY_SIGMA_NMGY = {"g": 0.004, "r": 0.006, "z": 0.015}
LRG_COLOUR = {"g": -1.6, "r": 0.0, "z": 0.9}  # mag_band - mag_r: a red early-type


def make_wcs(ra_deg: float = BRICK_RA, dec_deg: float = BRICK_DEC, n_pix: int = BRICK_SIZE_PIX,
             pixel_scale_arcsec: float = DR10_PIXSCALE_ARCSEC) -> WCS:
    """A DR10-like TAN WCS: +x towards decreasing RA, +y towards increasing Dec."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra_deg, dec_deg]
    w.wcs.crpix = [(n_pix + 1) / 2.0, (n_pix + 1) / 2.0]
    w.wcs.cd = np.array([[-pixel_scale_arcsec / 3600.0, 0.0], [0.0, pixel_scale_arcsec / 3600.0]])
    return w


def _moffat_image(n: int, x0: float, y0: float, fwhm_pix: float, beta: float = 3.5) -> np.ndarray:
    alpha = fwhm_pix / (2 * math.sqrt(2 ** (1 / beta) - 1))
    y, x = np.mgrid[0:n, 0:n]
    img = (1 + ((x - x0) ** 2 + (y - y0) ** 2) / alpha**2) ** (-beta)
    return img / img.sum()


def _de_vaucouleurs(n: int, x0: float, y0: float, re_pix: float, q: float, pa: float) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n].astype(float)
    dx, dy = x - x0, y - y0
    c, s = math.cos(pa), math.sin(pa)
    u, v = c * dx + s * dy, (-s * dx + c * dy) / q
    r = np.hypot(u, v) + 0.3
    img = np.exp(-7.669 * ((r / re_pix) ** 0.25 - 1))
    return img / img.sum()


def make_brick(brickname: str = "1500p020", n_pix: int = BRICK_SIZE_PIX, seed: int = 0,
               lrgs=BRICK_LRGS, psfsize_maps: bool = True, bright_star_at=(30, 30)) -> BrickCoadds:
    """A brick with de Vaucouleurs LRGs (PSF-convolved), Gaussian sky noise, an invvar map, a
    BRIGHT-star mask disc and psfsize maps (constant PSF_FWHM)."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    wcs = make_wcs(n_pix=n_pix)
    image, invvar, psfsize = {}, {}, {}
    maskbits = np.zeros((n_pix, n_pix), dtype=np.int32)
    yy, xx = np.mgrid[0:n_pix, 0:n_pix]
    if bright_star_at is not None:
        sx, sy = bright_star_at
        maskbits[(xx - sx) ** 2 + (yy - sy) ** 2 < 12**2] |= mb.BRIGHT
    for band in ("g", "r", "z"):
        scene = np.zeros((n_pix, n_pix))
        for x, y, mag_r in lrgs:
            scene += mag_to_nmgy(mag_r + LRG_COLOUR[band]) * _de_vaucouleurs(n_pix, x, y, 4.0, 0.75, 0.4)
        psf = _moffat_image(31, 15, 15, PSF_FWHM[band] / DR10_PIXSCALE_ARCSEC)
        scene = fftconvolve(scene, psf, mode="same")
        sigma = SKY_SIGMA_NMGY[band]
        image[band] = (scene + rng.normal(0, sigma, scene.shape)).astype(np.float32)
        iv = np.full((n_pix, n_pix), 1 / sigma**2, dtype=np.float32)
        iv[maskbits & mb.BRIGHT > 0] = 0.0
        invvar[band] = iv
        psfsize[band] = np.full((n_pix, n_pix), PSF_FWHM[band], dtype=np.float32)
    return BrickCoadds(brickname=brickname, wcs=wcs, image=image, invvar=invvar, maskbits=maskbits,
                       psfsize=psfsize if psfsize_maps else {})


def lrg_radec(brick: BrickCoadds, i: int) -> tuple[float, float]:
    x, y, _ = BRICK_LRGS[i]
    ra, dec = brick.wcs.all_pix2world(np.array([x]), np.array([y]), 0)
    return float(ra[0]), float(dec[0])


def make_clumpy_source(seed: int = 0, n: int = 96, hlr_arcsec: float = 0.3, n_clumps: int = 6,
                       flux_nmgy: float = 1.0, scale_arcsec: float = COSMOS_PIXSCALE_ARCSEC) -> np.ndarray:
    """A clumpy star-forming galaxy, flux per pixel [n, n] float32 summing to flux_nmgy: an
    exponential disc plus Gaussian clumps (sigma >= 0.045", as resolved by HST), zero beyond 80% of
    the stamp's half-width."""
    rng = np.random.default_rng(seed)
    c = (n - 1) / 2.0
    y, x = (np.mgrid[0:n, 0:n] - c) * scale_arcsec
    q, pa = rng.uniform(0.5, 0.9), rng.uniform(0, np.pi)
    u = x * math.cos(pa) + y * math.sin(pa)
    v = (-x * math.sin(pa) + y * math.cos(pa)) / q
    rd = hlr_arcsec / 1.678
    img = 0.5 * np.exp(-np.hypot(u, v) / rd) / (2 * np.pi * rd * rd)
    for _ in range(n_clumps):
        r, t = abs(rng.normal(0, hlr_arcsec)), rng.uniform(0, 2 * np.pi)
        sig = rng.uniform(0.045, 0.1)  # HST F814W PSF (FWHM ~0.1") allows nothing sharper
        w = rng.uniform(0.05, 0.15)
        img += w * np.exp(-((x - r * math.cos(t)) ** 2 + (y - r * math.sin(t)) ** 2) / (2 * sig * sig)) / (2 * np.pi * sig * sig)
    img[np.hypot(x, y) > 0.8 * c * scale_arcsec] = 0.0
    img *= flux_nmgy / img.sum()
    return img.astype(np.float32)


def half_light_radius_arcsec(stamp: np.ndarray, scale_arcsec: float) -> float:
    """Circular-aperture half-light radius about the flux centroid."""
    n = stamp.shape[0]
    y, x = np.mgrid[0:n, 0:n]
    f = stamp.astype(float)
    cx, cy = (f * x).sum() / f.sum(), (f * y).sum() / f.sum()
    r = np.hypot(x - cx, y - cy).ravel()
    order = np.argsort(r)
    cum = np.cumsum(f.ravel()[order])
    return float(r[order][np.searchsorted(cum, 0.5 * cum[-1])] * scale_arcsec)


def make_bank(n: int = 6, seed: int = 0) -> CosmosBank:
    """An in-memory bank of n clumpy sources with hlr 0.15-0.6" (the format of bank.store)."""
    rng = np.random.default_rng(seed)
    images = np.stack([make_clumpy_source(seed=seed * 1000 + i, hlr_arcsec=float(rng.uniform(0.15, 0.6)),
                                          flux_nmgy=float(rng.uniform(0.5, 2.0))) for i in range(n)])
    hlr = np.array([half_light_radius_arcsec(im, COSMOS_PIXSCALE_ARCSEC) for im in images])
    return CosmosBank(path="memory://test-bank", images=images, pixel_scale_arcsec=COSMOS_PIXSCALE_ARCSEC,
                      hlr_arcsec=hlr, flux_nmgy=images.sum(axis=(1, 2)).astype(float),
                      ident=np.array([f"clumpy{i}" for i in range(n)]), hlr_filter_arcsec=(0.1, 1.0),
                      checksum="0" * 64)


def make_task(brick: BrickCoadds, lrg: int = 0, *, control: bool = False, theta_e_arcsec: float = 1.3,
              e1: float = 0.08, e2: float = -0.05, gamma1: float = 0.02, gamma2: float = -0.01,
              lens_x_arcsec: float = 0.02, lens_y_arcsec: float = -0.03, cosmos_index: int = 0,
              src_x_arcsec: float = 0.15, src_y_arcsec: float = 0.1, src_phi_rad: float = 0.7,
              src_dmag: float = 1.5, src_gr: float = 0.5, src_rz: float = 0.3, task_id: str | None = None) -> dict:
    """A manifest-like task dict for LRG `lrg` of make_brick()."""
    ra, dec = lrg_radec(brick, lrg)
    mag_r = BRICK_LRGS[lrg][2]
    task = {
        "task_id": task_id or f"test-{lrg}-{'c' if control else 'i'}", "task_seed": 1234 + lrg,
        "region_split": "train", "region_id": 7, "brickname": brick.brickname, "lrg_id": 100 + lrg,
        "ra": ra, "dec": dec, "lens_mag_r": mag_r, "psfsize_g": PSF_FWHM["g"], "psfsize_r": PSF_FWHM["r"],
        "psfsize_z": PSF_FWHM["z"], "psfdepth_r": 23.5, "is_control": control,
        "lens_model": "CONTROL" if control else "SIE",
    }
    params = dict.fromkeys(("theta_e_arcsec", "lens_e1", "lens_e2", "shear_gamma1", "shear_gamma2", "lens_x_arcsec",
                            "lens_y_arcsec", "cosmos_index", "cosmos_hlr_arcsec", "src_x_arcsec", "src_y_arcsec",
                            "src_phi_rad", "src_dmag", "src_mag_g", "src_mag_r", "src_mag_z"), float("nan"))
    if not control:
        src_r = mag_r + src_dmag
        params.update(theta_e_arcsec=theta_e_arcsec, lens_e1=e1, lens_e2=e2, shear_gamma1=gamma1, shear_gamma2=gamma2,
                      lens_x_arcsec=lens_x_arcsec, lens_y_arcsec=lens_y_arcsec, cosmos_index=cosmos_index,
                      src_x_arcsec=src_x_arcsec, src_y_arcsec=src_y_arcsec, src_phi_rad=src_phi_rad,
                      src_dmag=src_dmag, src_mag_r=src_r, src_mag_g=src_r + src_gr, src_mag_z=src_r - src_rz)
    task.update(params)
    return task
