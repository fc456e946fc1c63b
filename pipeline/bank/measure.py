"""Non-parametric size of a galaxy on a sky-subtracted stamp: the circular half-light radius.

Why non-parametric: the AEGIS stamps (and any future sample) come without a Sersic fit, and
the bank's hlr filter must mean the same thing for every galaxy, so every galaxy is measured the
same way on its pixels; the catalogue's Sersic value is only kept beside it.

Method (`measure_galaxy`):
1. Noise: the median absolute deviation of the stamp's outer frame (sky on a GalSim stamp).
2. Segmentation: the stamp smoothed by a Gaussian (sigma 1.5 px) is thresholded at 2 sigma
   of the *smoothed* frame (so correlated HST noise is handled); connected regions are
   labelled. The target is the region holding the stamp centre (GalSim stamps are centred on
   their galaxy), else the region nearest to it.
3. Neighbours: another region is a neighbour when it is significant (peak above 5 smoothed
   sigma, at least 5 pixels) *and* peaks farther than 1.5 times the target region's radius from
   the target; nearer regions are taken for the galaxy's own star-forming clumps and kept. A
   neighbour is grown by 3 pixels to take its wings and set to 0, the sky level of a
   sky-subtracted stamp. A neighbour blended with the target into one region (or nearer than
   that) cannot be told apart and stays in: it then inflates the radius.
4. Centroid: flux-weighted over the target region only, so noise far away cannot drag it.
5. Curve of growth: each pixel is split into 5x5 sub-pixels carrying a fifth squared of its
   flux and binned in radius (bins of 0.05 px) about the centroid, giving the enclosed flux with
   sub-pixel accuracy. Negative noise pixels are *kept*: clipping them would add the positive
   half of the noise and bias both the total and the radius upwards.
6. Total flux: the enclosed flux in the largest circle about the centroid that lies inside the
   stamp (noise only adds scatter to it, no bias). The half-light radius is the first radius at
   which the curve reaches half of that, linearly interpolated between bins. Light beyond that
   circle is not counted, so a galaxy truncated by its stamp measures smaller than it is (for
   a de Vaucouleurs profile the circle must reach ~15 hlr to keep this bias below 3%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from pipeline.errors import InputError

SMOOTH_SIGMA_PIX = 1.5
DETECT_NSIGMA = 2.0
NEIGHBOUR_PEAK_NSIGMA = 5.0
NEIGHBOUR_MIN_AREA_PIX = 5
NEIGHBOUR_GROW_PIX = 3
NEIGHBOUR_MIN_DIST_SEG = 1.5
SUBPIXELS = 5
RADIAL_BIN_PIX = 0.05


@dataclass(frozen=True)
class GalaxyMeasurement:
    hlr_arcsec: float  # nan when no galaxy is detected
    centroid_x_pix: float  # flux-weighted, array coordinates (x = column)
    centroid_y_pix: float
    total_flux: float  # enclosed flux in the largest inscribed circle, stamp units
    neighbour_pixels: int  # pixels zeroed as neighbours before measuring
    noise_sigma: float


def _check_image(image, pixel_scale_arcsec) -> np.ndarray:
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2 or min(img.shape) < 3:
        raise InputError("image", f"need a 2-D stamp of at least 3x3 pixels, got shape {img.shape}")
    if not np.all(np.isfinite(img)):
        raise InputError("image", f"{int(np.count_nonzero(~np.isfinite(img)))} NaN or infinite pixel(s)")
    if not (np.isfinite(pixel_scale_arcsec) and pixel_scale_arcsec > 0):
        raise InputError("pixel_scale_arcsec", f"must be a positive number, got {pixel_scale_arcsec}")
    return img


def robust_sigma(values: np.ndarray) -> float:
    """Gaussian-equivalent sigma from the median absolute deviation."""
    v = np.asarray(values, dtype=np.float64).ravel()
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def border_sigma(img: np.ndarray) -> float:
    """Noise sigma from the stamp's outer frame (a tenth of its size, at least 4 pixels), where a
    GalSim stamp shows sky; falls back to the whole stamp when the frame is flat (noise-free)."""
    w = max(4, min(img.shape) // 10)
    frame = np.concatenate([img[:w].ravel(), img[-w:].ravel(), img[w:-w, :w].ravel(), img[w:-w, -w:].ravel()])
    s = robust_sigma(frame)
    return s if s > 0 else robust_sigma(img)


def _target_and_neighbours(img: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    smooth = ndimage.gaussian_filter(img, SMOOTH_SIGMA_PIX, mode="nearest")
    # A white-noise sigma shrinks under smoothing by a factor that depends on the noise
    # correlation (HST's is drizzled); measure the smoothed noise directly.
    smooth_sigma = border_sigma(smooth)
    labels, nlab = ndimage.label(smooth > DETECT_NSIGMA * smooth_sigma)
    ny, nx = img.shape
    cy, cx = (ny - 1) / 2.0, (nx - 1) / 2.0
    if nlab == 0:
        return np.zeros(img.shape, bool), np.zeros(img.shape, bool), 0.0
    centre_label = labels[int(round(cy)), int(round(cx))]
    if centre_label == 0:
        yy, xx = np.nonzero(labels)
        nearest = np.argmin((yy - cy) ** 2 + (xx - cx) ** 2)
        centre_label = labels[yy[nearest], xx[nearest]]
    target = labels == centre_label
    idx = np.arange(1, nlab + 1)
    peaks = ndimage.maximum(smooth, labels, idx)
    areas = ndimage.sum_labels(np.ones_like(img), labels, idx)
    significant = (peaks > NEIGHBOUR_PEAK_NSIGMA * smooth_sigma) & (areas >= NEIGHBOUR_MIN_AREA_PIX) & (idx != centre_label)
    ty, tx = np.nonzero(target)
    w = np.clip(smooth[ty, tx], 0, None) + 1e-300
    y0, x0 = (ty * w).sum() / w.sum(), (tx * w).sum() / w.sum()
    seg_radius = float(np.sqrt(((ty - y0) ** 2 + (tx - x0) ** 2).max()) + 1.0)
    if significant.any():
        # A star-forming clump can fall outside the target's isophote; it is told from a
        # neighbour by distance: only regions peaking beyond NEIGHBOUR_MIN_DIST_SEG times the
        # target region's radius are neighbours.
        peak_pos = np.array(ndimage.maximum_position(smooth, labels, idx), dtype=float)
        dist = np.hypot(peak_pos[:, 0] - y0, peak_pos[:, 1] - x0)
        significant &= dist > NEIGHBOUR_MIN_DIST_SEG * seg_radius
    neighbours = np.isin(labels, idx[significant])
    if neighbours.any():
        neighbours = ndimage.binary_dilation(neighbours, iterations=NEIGHBOUR_GROW_PIX) & ~target
    return target, neighbours, seg_radius


def curve_of_growth(img: np.ndarray, x0_pix: float, y0_pix: float, r_max_pix: float) -> tuple[np.ndarray, np.ndarray]:
    """Enclosed flux at radii `r` (pixels) about (x0, y0), up to r_max, with sub-pixel sampling.

    Returns (r_edges_pix, enclosed_flux), enclosed_flux[k] = flux within r_edges_pix[k]."""
    ny, nx = img.shape
    # Only pixels that can reach r_max matter; cut the box first to keep big stamps cheap.
    pad = r_max_pix + 1.0
    y_lo, y_hi = max(0, int(np.floor(y0_pix - pad))), min(ny, int(np.ceil(y0_pix + pad)) + 1)
    x_lo, x_hi = max(0, int(np.floor(x0_pix - pad))), min(nx, int(np.ceil(x0_pix + pad)) + 1)
    box = img[y_lo:y_hi, x_lo:x_hi]
    offsets = (np.arange(SUBPIXELS) + 0.5) / SUBPIXELS - 0.5
    ys = (np.arange(y_lo, y_hi)[:, None] + offsets[None, :]).ravel() - y0_pix
    xs = (np.arange(x_lo, x_hi)[:, None] + offsets[None, :]).ravel() - x0_pix
    r = np.hypot(ys[:, None], xs[None, :])
    sub_flux = np.repeat(np.repeat(box, SUBPIXELS, axis=0), SUBPIXELS, axis=1) / SUBPIXELS**2
    nbins = int(np.ceil(r_max_pix / RADIAL_BIN_PIX))
    ibin = (r / RADIAL_BIN_PIX).astype(np.int64)
    inside = ibin < nbins
    per_bin = np.bincount(ibin[inside], weights=sub_flux[inside], minlength=nbins)
    edges = np.arange(1, nbins + 1) * RADIAL_BIN_PIX
    return edges, np.cumsum(per_bin)


def _half_radius(edges: np.ndarray, enclosed: np.ndarray, half: float) -> float:
    above = np.nonzero(enclosed >= half)[0]
    if above.size == 0:
        return float("nan")
    k = int(above[0])
    if k == 0:
        return float(edges[0] * half / enclosed[0])
    f0, f1 = enclosed[k - 1], enclosed[k]
    return float(edges[k - 1] + (half - f0) / (f1 - f0) * (edges[k] - edges[k - 1]))


def measure_galaxy(image, pixel_scale_arcsec: float, *, noise_sigma: float | None = None) -> GalaxyMeasurement:
    """Centroid, total flux and circular half-light radius of the galaxy at the centre of a
    sky-subtracted stamp (see module docstring). `noise_sigma` (stamp units per pixel, e.g.
    from NOISE_VARIANCE) is only recorded in the result, estimated from the frame when not given:
    detection uses the smoothed frame's own noise, which also holds for correlated noise."""
    img = _check_image(image, pixel_scale_arcsec)
    sigma = border_sigma(img) if noise_sigma is None else float(noise_sigma)
    target, neighbours, _ = _target_and_neighbours(img)
    if not target.any():
        return GalaxyMeasurement(float("nan"), float("nan"), float("nan"), float("nan"), 0, sigma)
    work = np.where(neighbours, 0.0, img)
    weights = np.where(target, work, 0.0)
    total_w = weights.sum()
    if not total_w > 0:
        return GalaxyMeasurement(float("nan"), float("nan"), float("nan"), float("nan"), int(neighbours.sum()), sigma)
    yy, xx = np.indices(img.shape)
    x0 = float((weights * xx).sum() / total_w)
    y0 = float((weights * yy).sum() / total_w)
    ny, nx = img.shape
    # Pixel edges sit at -0.5 and n-0.5: the largest circle inside the stamp.
    r_max = min(x0 + 0.5, nx - 0.5 - x0, y0 + 0.5, ny - 0.5 - y0)
    if r_max <= 1.0:
        return GalaxyMeasurement(float("nan"), x0, y0, float("nan"), int(neighbours.sum()), sigma)
    edges, enclosed = curve_of_growth(work, x0, y0, r_max)
    total = float(enclosed[-1])
    if not total > 0:
        return GalaxyMeasurement(float("nan"), x0, y0, total, int(neighbours.sum()), sigma)
    r_half_pix = _half_radius(edges, enclosed, 0.5 * total)
    return GalaxyMeasurement(r_half_pix * float(pixel_scale_arcsec), x0, y0, total, int(neighbours.sum()), sigma)


def half_light_radius_arcsec(image, pixel_scale_arcsec: float, *, noise_sigma: float | None = None) -> float:
    """Circular half-light radius (arcsec) of the galaxy at the centre of a sky-subtracted
    stamp; nan when no galaxy is detected. See the module docstring for the method."""
    return measure_galaxy(image, pixel_scale_arcsec, noise_sigma=noise_sigma).hlr_arcsec


#: Pixels the galaxy's segmentation is grown by before everything outside it is set to 0: the
#: 2-sigma isophote of the smoothed stamp cuts a galaxy's faint wings; 3 pixels (0.09") take them
#: back (measured on the demo's synthetic galaxies: the cut keeps >= 98% of the true flux,
#: tests/test_bank_measure.py).
CLEAN_GROW_PIX = 3


def clean_galaxy(image, *, grow_pix: int = CLEAN_GROW_PIX) -> tuple[np.ndarray, np.ndarray]:
    """(clean stamp, mask): the galaxy at the stamp centre with everything outside its grown
    segmentation set to 0, the sky level of a sky-subtracted stamp.

    Treatment of the noise floor and of neighbours (docs/physics.md, "Clean sources"): the target
    region of `measure_galaxy` (2 sigma of the smoothed stamp, the region holding the centre),
    grown by `grow_pix`, is kept as it is; every other pixel - sky noise, neighbours (they are
    separate regions) - becomes 0. Inside the kept region the HST noise stays (it cannot be told
    from the galaxy pixel by pixel): its lensed amplitude is measured in the tests and stated in
    the docs. A stamp with no detected galaxy comes back all zero."""
    img = _check_image(image, 1.0)
    target, _, _ = _target_and_neighbours(img)
    if not target.any():
        return np.zeros_like(img), target
    mask = ndimage.binary_dilation(target, iterations=int(grow_pix)) if grow_pix > 0 else target
    return np.where(mask, img, 0.0), mask


def half_light_radius_in_stamp_arcsec(image, pixel_scale_arcsec: float) -> float:
    """Half-light radius of the light INSIDE the stamp (a truncated galaxy measures smaller than it
    is): circular curve of growth about the flux-weighted centroid of the positive pixels, out to
    the stamp's corners, total = the stamp's whole sum. nan for a stamp without positive flux."""
    img = _check_image(image, pixel_scale_arcsec)
    pos = np.clip(img, 0.0, None)
    total = float(img.sum())
    if not (pos.sum() > 0 and total > 0):
        return float("nan")
    yy, xx = np.indices(img.shape)
    x0, y0 = float((pos * xx).sum() / pos.sum()), float((pos * yy).sum() / pos.sum())
    ny, nx = img.shape
    r_max = float(np.hypot(max(x0 + 0.5, nx - 0.5 - x0), max(y0 + 0.5, ny - 0.5 - y0))) + 1.0
    edges, enclosed = curve_of_growth(img, x0, y0, r_max)
    return _half_radius(edges, enclosed, 0.5 * total) * float(pixel_scale_arcsec)


#: pixels the galaxy's (and neighbours') segmentation is grown by before the rest counts as sky for
#: the noise per wavelet scale (pipeline.bank.denoise): twice CLEAN_GROW_PIX, so no wing is taken
#: for noise
DENOISE_SKY_GROW_PIX = 2 * CLEAN_GROW_PIX


def clean_galaxy_denoised(image, *, grow_pix: int = CLEAN_GROW_PIX) -> tuple[np.ndarray, np.ndarray]:
    """(clean stamp, mask) like `clean_galaxy`, with the HST noise inside the mask removed where it
    is not significant: the stamp is denoised first (pipeline.bank.denoise: a Sersic model plus
    the starlet coefficients of the residual above k sigma of the noise at their scale, sigma
    measured on the sky outside the grown segmentation), then everything outside the grown
    segmentation of the NOISY stamp is set to 0. A stamp with no detected galaxy, or without sky
    pixels to measure the noise on, is an InputError naming it."""
    from pipeline.bank.denoise import denoise_galaxy  # noqa: PLC0415

    img = _check_image(image, 1.0)
    target, neighbours, seg_radius = _target_and_neighbours(img)
    if not target.any():
        return np.zeros_like(img), target
    mask = ndimage.binary_dilation(target, iterations=int(grow_pix)) if grow_pix > 0 else target
    sky = ~ndimage.binary_dilation(target | neighbours, iterations=DENOISE_SKY_GROW_PIX)
    if np.count_nonzero(sky) < 100:
        raise InputError("image", f"only {int(np.count_nonzero(sky))} sky pixels outside the galaxy: too few to measure the noise per wavelet scale")
    ty, tx = np.nonzero(target)
    w = np.clip(img[ty, tx], 0, None) + 1e-300
    centroid = (float((tx * w).sum() / w.sum()), float((ty * w).sum() / w.sum()))
    denoised = denoise_galaxy(np.where(neighbours, 0.0, img), target, sky, centroid, 0.5 * seg_radius)
    return np.where(mask, denoised, 0.0), mask
