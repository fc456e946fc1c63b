"""Synthetic clumpy galaxies written as a GalSim real-galaxy catalogue, so the demo bank goes
through the same reader, checks and measurement as real COSMOS data.

Each galaxy: exponential disk + de Vaucouleurs bulge + 2-6 Gaussian star-forming clumps placed
on the disk, random sizes (disk hlr log-uniform 0.17-1.0", bulge 0.15-0.5 of it), axis ratios
and orientation, convolved with an HST-like Gaussian PSF (FWHM 0.09"), F814W 20-24 mag, plus
HST-like noise: white noise smoothed by a drizzle-like 3x3 kernel (so neighbouring pixels are
correlated) rescaled to NOISE_VARIANCE, on a NOISE_MEAN pedestal. Values are HST counts/s with
AB zero point 25.94, like the real files.

Written files (one sample, GalSim layout):
  synthetic_galaxy_catalog.fits          IDENT, RA, DEC, MAG, BAND, WEIGHT, GAL_FILENAME, PSF_FILENAME,
                                         GAL_HDU, PSF_HDU, PIXEL_SCALE, NOISE_MEAN, NOISE_VARIANCE,
                                         NOISE_FILENAME, stamp_flux (= sum of the stored stamp)
  synthetic_galaxy_catalog_fits.fits     IDENT, hlr (3 per row; [:,0] = true circular half-light
                                         radius in arcsec), flux_radius (the same in 0.03" pixels,
                                         like SExtractor's, to keep the unit trap real), mag_auto
  synthetic_galaxy_images_n<k>.fits      up to 100 galaxies per file, one per HDU from HDU 0
No PSF images are written (PSF_FILENAME says so); the bank does not use them.

Truth: the noise-free model is rendered 2x supersampled on a grid 1.5 times the stamp size; the true
half-light radius is found there, about the model's own flux-weighted centroid, by an
independent method from pipeline.bank.measure (no noise, no segmentation, exact centroid). Everything follows from `seed` (galaxy i uses
the stream (seed, i), so the first galaxies do not change with n).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.special import gammaincinv

from pipeline.bank._pool import ordered_map
from pipeline.errors import InputError
from pipeline.units import COSMOS_PIXSCALE_ARCSEC, GAUSSIAN_FWHM_PER_SIGMA, HST_F814W_ZEROPOINT_AB

CATALOG_NAME = "synthetic_galaxy_catalog.fits"
GALAXIES_PER_IMAGE_FILE = 100
SUPERSAMPLE = 2
#: model grid side over stamp side: light beyond the stamp exists, as around real stamps
GRID_OVER_STAMP = 1.5
PSF_FWHM_ARCSEC = 0.09
IDENT_OFFSET = 900000
#: drizzle-like kernel: correlates each pixel with its neighbours as HST coadds do
NOISE_KERNEL = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])


def _sersic(x, y, hlr, n, q, phi):
    """Unnormalised Sersic surface brightness on coordinates x, y (same units as hlr)."""
    b = gammaincinv(2.0 * n, 0.5)
    c, s = np.cos(phi), np.sin(phi)
    xr, yr = x * c + y * s, -x * s + y * c
    # hlr is the semi-major one; a sub-pixel softening keeps the n=4 cusp finite.
    r = np.sqrt(xr**2 + (yr / q) ** 2 + 1e-6 * hlr**2)
    return np.exp(-b * (r / hlr) ** (1.0 / n))


def _normalised(values, flux):
    return values * (flux / values.sum())


def _true_hlr(model, step):
    """Half-light radius of the noise-free model about its own flux-weighted centroid (the
    centre the bank measures about; clumps pull it off the disk centre): sub-pixels
    accumulated in radius bins a tenth of a sub-pixel wide."""
    n = model.shape[0]
    g = (np.arange(n) - (n - 1) / 2.0) * step
    total = model.sum()
    x0 = float((model.sum(axis=0) * g).sum() / total)
    y0 = float((model.sum(axis=1) * g).sum() / total)
    r = np.hypot(g[:, None] - y0, g[None, :] - x0).ravel()
    dr = step / 10.0
    cum = np.cumsum(np.bincount((r / dr).astype(np.int64), weights=model.ravel()))
    k = int(np.searchsorted(cum, 0.5 * total))
    return float((k + 1) * dr)


def synth_galaxy(rng: np.random.Generator, pixel_scale_arcsec: float = COSMOS_PIXSCALE_ARCSEC) -> dict:
    """One galaxy: noisy stamp (counts/s, pedestal included, float32) and its truth."""
    mag = rng.uniform(20.0, 24.0)
    flux = 10.0 ** ((HST_F814W_ZEROPOINT_AB - mag) / 2.5)
    disk_hlr = float(np.exp(rng.uniform(np.log(0.17), np.log(1.0))))
    bulge_hlr = max(0.05, disk_hlr * rng.uniform(0.15, 0.5))
    bulge_frac = rng.uniform(0.0, 0.4)
    clump_frac = rng.uniform(0.05, 0.3)
    n_clumps = int(rng.integers(2, 7))
    q_disk, q_bulge = rng.uniform(0.3, 1.0), rng.uniform(0.6, 1.0)
    phi = rng.uniform(0.0, np.pi)

    hlr_pix = disk_hlr / pixel_scale_arcsec
    stamp = int(np.clip(2 * int(np.ceil(5.0 * hlr_pix)), 64, 256))
    grid = int(GRID_OVER_STAMP * stamp) * SUPERSAMPLE
    step = pixel_scale_arcsec / SUPERSAMPLE
    g = (np.arange(grid) - (grid - 1) / 2.0) * step
    x, y = g[None, :], g[:, None]
    model = _normalised(_sersic(x, y, disk_hlr, 1.0, q_disk, phi), flux * (1 - bulge_frac - clump_frac))
    model += _normalised(_sersic(x, y, bulge_hlr, 4.0, q_bulge, phi), flux * bulge_frac)
    clump_weights = rng.dirichlet(np.ones(n_clumps))
    for w in clump_weights:
        # Clumps sit on the disk: radius from the exponential's own distribution, disk's shape.
        rad = rng.gamma(2.0, disk_hlr / 1.678)
        ang = rng.uniform(0, 2 * np.pi)
        u, v = rad * np.cos(ang), rad * np.sin(ang) * q_disk
        cx, cy = u * np.cos(phi) - v * np.sin(phi), u * np.sin(phi) + v * np.cos(phi)
        sig = rng.uniform(0.03, 0.08)
        # A round Gaussian is separable: an outer product instead of a full-grid exp.
        clump = np.outer(np.exp(-0.5 * ((g - cy) / sig) ** 2), np.exp(-0.5 * ((g - cx) / sig) ** 2))
        model += _normalised(clump, flux * clump_frac * w)
    model = ndimage.gaussian_filter(model, PSF_FWHM_ARCSEC / GAUSSIAN_FWHM_PER_SIGMA / step, mode="constant")
    hlr_true = _true_hlr(model, step)

    lo = (grid - stamp * SUPERSAMPLE) // 2
    core = model[lo : lo + stamp * SUPERSAMPLE, lo : lo + stamp * SUPERSAMPLE]
    clean = core.reshape(stamp, SUPERSAMPLE, stamp, SUPERSAMPLE).sum(axis=(1, 3))

    noise_variance = rng.uniform(6.0e-6, 8.5e-6)  # (counts/s)^2, as in the real catalogues
    noise_mean = rng.uniform(-2.0e-4, 1.0e-3)
    white = rng.standard_normal((stamp + 2, stamp + 2))
    kernel = NOISE_KERNEL / np.sqrt((NOISE_KERNEL**2).sum())
    noise = ndimage.convolve(white, kernel, mode="constant")[1:-1, 1:-1] * np.sqrt(noise_variance)
    image = (clean + noise + noise_mean).astype(np.float32)
    return {
        "image": image,
        "clean": clean,  # noise-free stamp, for checks
        "mag": mag,
        "flux_counts": flux,
        "hlr_true_arcsec": hlr_true,
        "noise_mean": noise_mean,
        "noise_variance": noise_variance,
    }


def _synth_galaxy_at(index: int, *, seed: int, pixel_scale_arcsec: float) -> dict:
    """Galaxy `index` of a catalogue: its own generator, so any process can make it."""
    return synth_galaxy(np.random.default_rng([seed, index]), pixel_scale_arcsec)


def synth_galsim_catalog(out_dir: str | Path, n: int, seed: int, *, pixel_scale_arcsec: float = COSMOS_PIXSCALE_ARCSEC) -> Path:
    """Write `n` synthetic galaxies as a GalSim real-galaxy sample in `out_dir`; returns the
    main catalogue path. See the module docstring for the files and their columns."""
    from astropy.io import fits  # noqa: PLC0415

    if int(n) < 1:
        raise InputError("n", f"need at least one galaxy, got {n}")
    if int(seed) < 0:
        raise InputError("seed", f"must be a non-negative integer, got {seed}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gals = ordered_map(partial(_synth_galaxy_at, seed=int(seed), pixel_scale_arcsec=pixel_scale_arcsec), range(int(n)))

    filenames, hdus = [], []
    for start in range(0, len(gals), GALAXIES_PER_IMAGE_FILE):
        name = f"synthetic_galaxy_images_n{start // GALAXIES_PER_IMAGE_FILE + 1}.fits"
        chunk = gals[start : start + GALAXIES_PER_IMAGE_FILE]
        hdul = fits.HDUList([fits.PrimaryHDU(chunk[0]["image"])] + [fits.ImageHDU(g["image"]) for g in chunk[1:]])
        hdul.writeto(out / name, overwrite=True)
        filenames += [name] * len(chunk)
        hdus += list(range(len(chunk)))

    # Sky positions use a stream no galaxy index reaches.
    rng = np.random.default_rng([int(seed), 0xFFFFFFFF])
    idents = IDENT_OFFSET + np.arange(len(gals))
    # stamp_flux is what GalSim stores: the plain sum of the stamp as written (pedestal and all).
    stamp_flux = [float(np.sum(g["image"], dtype=np.float64)) for g in gals]
    cols = [
        fits.Column("IDENT", "J", array=idents),
        fits.Column("RA", "D", array=150.1 + rng.uniform(-0.5, 0.5, len(gals))),
        fits.Column("DEC", "D", array=2.2 + rng.uniform(-0.5, 0.5, len(gals))),
        fits.Column("MAG", "D", array=[g["mag"] for g in gals]),
        fits.Column("BAND", "5A", array=["F814W"] * len(gals)),
        fits.Column("WEIGHT", "D", array=np.ones(len(gals))),
        fits.Column("GAL_FILENAME", "40A", array=filenames),
        fits.Column("PSF_FILENAME", "40A", array=["none (synthetic, Gaussian FWHM 0.09 arcsec)"[:40]] * len(gals)),
        fits.Column("GAL_HDU", "J", array=hdus),
        fits.Column("PSF_HDU", "J", array=np.full(len(gals), -1)),
        fits.Column("PIXEL_SCALE", "D", array=np.full(len(gals), float(pixel_scale_arcsec))),
        fits.Column("NOISE_MEAN", "D", array=[g["noise_mean"] for g in gals]),
        fits.Column("NOISE_VARIANCE", "D", array=[g["noise_variance"] for g in gals]),
        fits.Column("NOISE_FILENAME", "26A", array=["none (3x3 drizzle kernel)"] * len(gals)),
        fits.Column("stamp_flux", "D", array=stamp_flux),
    ]
    catalog = out / CATALOG_NAME
    fits.BinTableHDU.from_columns(cols).writeto(catalog, overwrite=True)

    hlr = np.zeros((len(gals), 3))
    hlr[:, 0] = [g["hlr_true_arcsec"] for g in gals]
    fit_cols = [
        fits.Column("IDENT", "J", array=idents),
        fits.Column("mag_auto", "D", array=[g["mag"] for g in gals]),
        fits.Column("flux_radius", "D", array=hlr[:, 0] / pixel_scale_arcsec),
        fits.Column("hlr", "3D", array=hlr),
    ]
    fits.BinTableHDU.from_columns(fit_cols).writeto(out / (CATALOG_NAME[: -len(".fits")] + "_fits.fits"), overwrite=True)
    return catalog
