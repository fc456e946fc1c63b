"""Denoising of a bank stamp: a smooth parametric model plus the significant wavelet structure of
what it leaves (docs/physics.md, "Clean sources").

Why: the HST noise inside a galaxy's segmentation survives lensing and the DR10 PSF at source-plane
scales ~ PSF / sqrt(mu), where the galaxy also has signal, so no fixed smoothing separates them.
What does separate them is significance against the known noise, scale by scale:

1. Model (`fit_sersic`): one elliptical Sersic profile (Sersic 1968) fitted by least squares to the
   stamp. It carries the smooth bulk of the light, so the bulk does not make every wavelet
   coefficient under the galaxy "significant" and let the noise there through.
2. Residual (stamp - model) in the starlet, the isotropic undecimated wavelet transform with the
   B3-spline scaling function (Starck & Murtagh 2006, "Astronomical Image and Data Analysis", 2nd
   ed., Springer, ch. 2 and 6; Starck, Fadili & Murtagh 2007, IEEE TIP 16, 297). Its scales add
   back up to the image exactly.
3. Noise per scale: sigma_j is measured on the residual's coefficients of the pixels outside the
   galaxy's grown segmentation (sky), by the median absolute deviation, so the HST noise's
   correlation (drizzle) is taken as it is, with no model of it.
4. Multiresolution support: a coefficient is kept when |w_j| > k sigma_j, k = 3 (k = 4 on the
   finest scale), the detection levels Starck & Murtagh recommend (a false detection per ~370
   coefficients of Gaussian noise, ~16,000 on the finest scale); everything else is set to 0 (hard
   thresholding). The coarsest smoothed plane is kept as it is (its noise is ~sigma / 2^J).
5. Iterative reconstruction on the support (Starck & Murtagh 2006, the iterative filtering with a
   multiresolution support): the residual's support coefficients are added back until the
   reconstruction stops changing, so significant structure keeps its full amplitude (one pass of
   thresholding underestimates it).

Result = model + reconstructed residual. The galaxy keeps its clumps and asymmetries wherever they
stand above the noise at some scale; noise that is not significant at any scale is gone. Nothing
here is tuned to a noise target: k is the standard detection level, fixed before any measurement.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, optimize
from scipy.special import gammaincinv

from pipeline.errors import InputError

#: B3-spline scaling function of the starlet (Starck & Murtagh 2006)
B3_KERNEL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
#: detection level (sigma of the noise at that scale): 4 on the finest scale, 3 on the others
K_SIGMA_FINEST = 4.0
K_SIGMA = 3.0
#: starlet scales (the coarsest smoothed plane has a B3 support of ~2^(J+2) pixels)
N_SCALES = 5
ITERATIONS = 10
SERSIC_N_BOUNDS = (0.3, 6.0)


def starlet(image: np.ndarray, n_scales: int = N_SCALES) -> np.ndarray:
    """[n_scales + 1, ny, nx]: wavelet planes w_0 (finest) .. w_{J-1}, then the smoothed plane c_J;
    their sum is `image` exactly (a trous algorithm, B3 spline, mirrored edges)."""
    c = np.asarray(image, dtype=np.float64)
    planes = []
    for j in range(n_scales):
        k = np.zeros(4 * 2**j + 1)
        k[:: 2**j] = B3_KERNEL
        smooth = ndimage.convolve1d(ndimage.convolve1d(c, k, axis=0, mode="mirror"), k, axis=1, mode="mirror")
        planes.append(c - smooth)
        c = smooth
    planes.append(c)
    return np.stack(planes)


def _sersic_image(p, yy, xx):
    amp, x0, y0, log_hlr, n, q, phi = p
    b = gammaincinv(2.0 * n, 0.5)
    c, s = np.cos(phi), np.sin(phi)
    dx, dy = xx - x0, yy - y0
    xr, yr = dx * c + dy * s, -dx * s + dy * c
    r = np.sqrt(xr**2 + (yr / q) ** 2 + 0.25)  # a quarter-pixel softening keeps the cusp finite
    return amp * np.exp(-b * ((r / np.exp(log_hlr)) ** (1.0 / n) - 1.0))


def fit_sersic(image: np.ndarray, weight_mask: np.ndarray, centroid_xy: tuple[float, float], hlr_pix: float) -> np.ndarray:
    """Least-squares elliptical Sersic on the pixels of `weight_mask` (model image, same units).
    Equal weights: the HST noise is sky-dominated for these galaxies. A fit that fails returns 0
    (the wavelet step then carries the whole galaxy)."""
    yy, xx = np.indices(image.shape, dtype=np.float64)
    sel = weight_mask
    x0, y0 = centroid_xy
    hlr = max(float(hlr_pix), 1.0)
    amp0 = max(float(np.median(image[(np.hypot(xx - x0, yy - y0) < hlr + 1) & sel])) if sel.any() else 0.0, 1e-12)
    p0 = [amp0, x0, y0, np.log(hlr), 1.5, 0.8, 0.0]
    lo = [0.0, x0 - hlr - 3, y0 - hlr - 3, np.log(0.3), SERSIC_N_BOUNDS[0], 0.1, -np.pi]
    hi = [np.inf, x0 + hlr + 3, y0 + hlr + 3, np.log(5 * max(image.shape)), SERSIC_N_BOUNDS[1], 1.0, np.pi]
    data = image[sel]

    def resid(p):
        return _sersic_image(p, yy[sel], xx[sel]) - data

    try:
        fit = optimize.least_squares(resid, p0, bounds=(lo, hi), x_scale="jac", max_nfev=400)
    except (ValueError, FloatingPointError):
        return np.zeros_like(image)
    model = _sersic_image(fit.x, yy, xx)
    return model if np.all(np.isfinite(model)) else np.zeros_like(image)


def significant_structure(residual: np.ndarray, sky: np.ndarray, *, n_scales: int = N_SCALES,
                          iterations: int = ITERATIONS) -> np.ndarray:
    """The residual's structure significant at some starlet scale (steps 3-5 of the module
    docstring); `sky` marks the pixels that hold only noise (used to measure sigma_j)."""
    w = starlet(residual, n_scales)
    if not sky.any():
        raise InputError("sky", "no sky pixel to measure the noise per wavelet scale on")
    support = np.zeros(w.shape, dtype=bool)
    for j in range(n_scales):
        wj = w[j][sky]
        sigma_j = 1.4826 * float(np.median(np.abs(wj - np.median(wj))))
        k = K_SIGMA_FINEST if j == 0 else K_SIGMA
        support[j] = np.abs(w[j]) > k * sigma_j
    support[n_scales] = True  # the smoothed plane
    out = np.where(support, w, 0.0).sum(axis=0)
    for _ in range(int(iterations)):
        step = np.where(support, starlet(residual - out, n_scales), 0.0).sum(axis=0)
        out = out + step
        if np.abs(step).max() <= 1e-6 * max(np.abs(out).max(), 1e-300):
            break
    return out


def denoise_galaxy(image, target: np.ndarray, sky: np.ndarray, centroid_xy: tuple[float, float], hlr_pix: float,
                   *, use_model: bool = True) -> np.ndarray:
    """Model + significant residual structure (module docstring) of a sky-subtracted stamp.
    `target`: the galaxy's pixels (the model is fitted there); `sky`: noise-only pixels."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise InputError("image", f"need a 2-D stamp, got shape {img.shape}")
    model = fit_sersic(img, target, centroid_xy, hlr_pix) if use_model else np.zeros_like(img)
    return model + significant_structure(img - model, sky)
