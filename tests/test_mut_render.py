"""pipeline/injection/render.py against truth computed without it (issue 20, mutation testing).

Every expected value here comes from a hand calculation, a plain-Python loop over pixels written
from the module docstring, lenstronomy's own LensModel / LightModel, or scipy's direct
(non-FFT) convolution; nothing is read back from render.py's own helpers.

* the lensed image: a per-pixel Python loop written from the docstring's steps 2-4 (corners ray-traced
  by lenstronomy's LensModel, the keep rule, n_x = clip(ceil(L / step), lo, hi) rounded up to a
  multiple of k, the sub-sample offsets, INTERPOL evaluated by a fresh lenstronomy LightModel,
  mean x (s / k)^2) over EVERY pixel of a small stamp (no window, no skipping);
* the convolutions: scipy.signal.convolve2d (direct sums) of the image with psf.py's kernels,
  cropped to the stamp and binned k x k by loops;
* the deflection bound: lenstronomy's SIE deflection far out along the major and minor axes, where
  the docstring's arctan / arctanh limits are reached.

Tolerances: the compiled ray-trace equals lenstronomy's to 1e-12 arcsec, so images agree to
rtol 1e-9 (the existing brute-force test's figure); FFT against direct sums to 1e-12 of the peak.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import convolve2d

from pipeline.errors import RowError
from pipeline.injection.psf import MoffatPSF
from pipeline.injection.render import (
    LensParams,
    SourcePlacement,
    _ray_shoot,
    convolve_bands,
    convolve_bands_subgrid,
    fft_size_for,
    interpol_surface_brightness,
    lens_deflection_bound,
    lensed_source_image,
    render_arc,
    source_support_radius_arcsec,
    source_unit_surface_brightness,
)

S = 0.262
SRC = 0.03


def _lenstronomy_lens():
    from lenstronomy.LensModel.lens_model import LensModel

    return LensModel(["SIE", "SHEAR"])


def _shoot(x, y, lens):
    x, y = np.asarray(x, float), np.asarray(y, float)
    if lens is None:
        return x.copy(), y.copy()
    return _lenstronomy_lens().ray_shooting(x, y, lens.lenstronomy_kwargs())


def _interpol(bx, by, sb, cx, cy, phi, scale):
    from lenstronomy.LightModel.light_model import LightModel

    return LightModel(["INTERPOL"]).surface_brightness(bx, by, [{
        "image": sb, "amp": 1.0, "center_x": cx, "center_y": cy, "phi_G": phi, "scale": scale}])


def _support_by_hand(sb, scale):
    n_r, n_c = sb.shape
    r = 0.0
    found = False
    for i in range(n_r):
        for j in range(n_c):
            if sb[i, j] != 0:
                found = True
                r = max(r, math.hypot(j - (n_c - 1) / 2, i - (n_r - 1) / 2))
    return (r + math.sqrt(2.0)) * scale if found else 0.0


_TRUTH: dict = {}


def _truth_lensed(sb, scale, lens, src, n_pix, s, lo, hi, step_pix, k):
    """The docstring's steps 2-4 pixel by pixel (lenstronomy ray-trace and INTERPOL): [k n, k n]
    flux per sub-pixel and the number of pixels the keep rule keeps. Memoised on the arguments
    (the image by its bytes): it uses nothing of render.py, so a cached truth is still the truth."""
    key = (np.asarray(sb, float).tobytes(), sb.shape, scale, lens, src, n_pix, s, lo, hi, step_pix, k)
    if key not in _TRUTH:
        _TRUTH[key] = _truth_lensed_uncached(sb, scale, lens, src, n_pix, s, lo, hi, step_pix, k)
    out, kept = _TRUTH[key]
    return out.copy(), kept


def _truth_lensed_uncached(sb, scale, lens, src, n_pix, s, lo, hi, step_pix, k):
    c = n_pix // 2
    lcx = lens.center_x_arcsec if lens is not None else 0.0
    lcy = lens.center_y_arcsec if lens is not None else 0.0
    scx, scy = lcx + src.x_arcsec, lcy + src.y_arcsec
    support = _support_by_hand(sb, scale)
    hi = max(hi, lo)
    step = step_pix * scale
    out = np.zeros((k * n_pix, k * n_pix))
    kept = 0
    xs, ys, owners = [], [], []
    for i in range(n_pix):
        for j in range(n_pix):
            ex = [(j - c - 0.5) * s, (j - c + 0.5) * s]
            ey = [(i - c - 0.5) * s, (i - c + 0.5) * s]
            cxs = np.array([ex[0], ex[1], ex[0], ex[1]])
            cys = np.array([ey[0], ey[0], ey[1], ey[1]])
            bx, by = _shoot(cxs, cys, lens)  # corners: top-left, top-right, bottom-left, bottom-right
            pad = 0.5 * max(bx.max() - bx.min(), by.max() - by.min()) + 0.1 * s
            dx = max(bx.min() - pad - scx, scx - bx.max() - pad, 0.0)
            dy = max(by.min() - pad - scy, scy - by.max() - pad, 0.0)
            if dx * dx + dy * dy > support * support:
                continue
            kept += 1
            len_x = max(math.hypot(bx[1] - bx[0], by[1] - by[0]), math.hypot(bx[3] - bx[2], by[3] - by[2]))
            len_y = max(math.hypot(bx[2] - bx[0], by[2] - by[0]), math.hypot(bx[3] - bx[1], by[3] - by[1]))
            n_x = min(max(math.ceil(len_x / step), lo), hi)
            n_y = min(max(math.ceil(len_y / step), lo), hi)
            n_x, n_y = -(-n_x // k) * k, -(-n_y // k) * k
            for v in range(n_y):
                for u in range(n_x):
                    xs.append((j - c - 0.5 + (u + 0.5) / n_x) * s)
                    ys.append((i - c - 0.5 + (v + 0.5) / n_y) * s)
                    owners.append((k * i + v // (n_y // k), k * j + u // (n_x // k), (n_x // k) * (n_y // k)))
    if xs:
        bx, by = _shoot(np.array(xs), np.array(ys), lens)
        f = _interpol(bx, by, sb, scx, scy, src.phi_rad, scale)
        for (a, b, m), val in zip(owners, f):
            out[a, b] += val / m
    return out * (s / k) ** 2, kept


def _blob(n=21, seed=1, sigma=4.0, x0=0.0, y0=0.0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n] - (n - 1) / 2
    img = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2)) * rng.uniform(0.5, 1.5, (n, n))
    img[img < 0.05 * img.max()] = 0.0  # a compact support, zero at the border
    return img


def _bin(a, k):
    n = a.shape[-1] // k
    out = np.zeros(a.shape[:-2] + (n, n))
    for i in range(n):
        for j in range(n):
            out[..., i, j] = a[..., k * i:k * i + k, k * j:k * j + k].sum(axis=(-2, -1))
    return out


def _direct_convolution(img, kernel, n_out, offset):
    """Linear convolution by direct sums, pixel [i, j] of the result = full[i + R, j + R]."""
    r = kernel.shape[0] // 2
    full = convolve2d(img, kernel, mode="full")
    return full[r + offset:r + offset + n_out, r + offset:r + offset + n_out]


# ---------------------------------------------------------------- source_unit_surface_brightness

def test_unit_surface_brightness_by_hand():
    out = source_unit_surface_brightness([[1.0, 3.0], [0.0, 4.0]], 0.5)
    # sum 8, pixel area 0.25: each pixel / 8 / 0.25
    np.testing.assert_array_equal(out, [[0.5, 1.5], [0.0, 2.0]])
    assert out.dtype == np.float64


def test_unit_surface_brightness_of_float32_is_computed_in_float64():
    stamp = np.array([[0.1, 0.7], [0.3, 1e-3]], dtype=np.float32)
    vals = [float(v) for v in stamp.ravel()]
    total = math.fsum(vals)
    out = source_unit_surface_brightness(stamp, SRC)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.ravel(), [v / total / SRC**2 for v in vals], rtol=1e-14, atol=0)


def test_total_below_one_is_accepted():
    out = source_unit_surface_brightness(np.array([[0.25, 0.25]]), 1.0)
    np.testing.assert_array_equal(out, [[0.5, 0.5]])


@pytest.mark.parametrize("stamp,shown", [
    (np.zeros((3, 3)), "0.0"),
    (np.array([[1.0, -3.0]]), "-2.0"),
    (np.array([[1.0, np.nan]]), "nan"),
    (np.array([[1.0, np.inf]]), "inf"),
    (np.array([[np.inf, -np.inf]]), "nan"),
])
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_unit_surface_brightness_refusals_in_full(stamp, shown):
    with pytest.raises(RowError) as err:
        source_unit_surface_brightness(stamp, SRC)
    assert str(err.value) == f"source stamp has no positive total flux (sum = {shown})"


# ---------------------------------------------------------------- source_support_radius_arcsec

@pytest.mark.parametrize("shape,pixels,expected_r", [
    ((3, 5), [(0, 0)], math.hypot(2, 1)),           # corner of a 3 x 5 image, centre (1, 2)
    ((3, 5), [(1, 2)], 0.0),                         # the centre pixel
    ((4, 4), [(1, 1), (3, 0)], math.hypot(1.5, 1.5)),  # even side: centre (1.5, 1.5)
    ((2, 6), [(1, 5), (0, 3)], math.hypot(2.5, 0.5)),
])
def test_support_radius_by_hand(shape, pixels, expected_r):
    img = np.zeros(shape)
    for n, (i, j) in enumerate(pixels):
        img[i, j] = -1.0 if n else 2.0  # a negative pixel is non-zero too
    out = source_support_radius_arcsec(img, 0.05)
    assert type(out) is float
    assert out == pytest.approx((expected_r + math.sqrt(2.0)) * 0.05, rel=1e-14)
    assert out == pytest.approx(_support_by_hand(img, 0.05), rel=1e-14)


def test_support_radius_of_an_empty_image_is_zero():
    out = source_support_radius_arcsec(np.zeros((5, 5)), 0.03)
    assert out == 0.0 and type(out) is float


# ---------------------------------------------------------------- lens_deflection_bound

def _far_deflection(lens, angle, radius=1e7):
    """|SIE deflection| at a far point in direction `angle` from the lens centre (lenstronomy)."""
    from lenstronomy.LensModel.lens_model import LensModel

    x = lens.center_x_arcsec + radius * math.cos(angle)
    y = lens.center_y_arcsec + radius * math.sin(angle)
    ax, ay = LensModel(["SIE"]).alpha(x, y, lens.lenstronomy_kwargs()[:1])
    return math.hypot(float(ax), float(ay))


@pytest.mark.parametrize("theta_e,e1,e2", [
    (1.3, 0.2, 0.0), (0.7, -0.1, 0.25), (2.1, 0.05, -0.05), (1.0, 0.0, 0.0), (1.5, 1.2, 0.5), (0.9, 0.0, 0.6),
])
def test_deflection_bound_is_the_far_field_limit_along_both_axes(theta_e, e1, e2):
    """Far out along the major axis |alpha| -> b arctan(e'/q) / e', along the minor axis ->
    b arctanh(e') / e' (the docstring's bounds); the bound is 1.02 x their hypot. The round lens
    (q -> 0.99999999) and |e| > 0.9999 (clipped) included."""
    lens = LensParams(theta_e, e1, e2, 0.03, -0.04, 0.3, -0.2)
    phi = math.atan2(e2, e1) / 2
    major = _far_deflection(lens, phi)
    minor = _far_deflection(lens, phi + math.pi / 2)
    a, g = lens_deflection_bound(lens)
    assert a == pytest.approx(1.02 * math.hypot(major, minor), rel=1e-7)
    assert g == pytest.approx(0.05, rel=1e-14)


def test_deflection_bound_holds_everywhere_and_gamma_is_the_shear_rate():
    from lenstronomy.LensModel.lens_model import LensModel

    rng = np.random.default_rng(5)
    lens = LensParams(1.4, 0.3, -0.2, 0.06, 0.08, -0.1, 0.2)
    x, y = rng.normal(0, 5, 5000), rng.normal(0, 5, 5000)
    ax, ay = LensModel(["SIE"]).alpha(x, y, lens.lenstronomy_kwargs()[:1])
    a, g = lens_deflection_bound(lens)
    assert np.hypot(ax, ay).max() <= a
    sx, sy = LensModel(["SHEAR"]).alpha(x, y, lens.lenstronomy_kwargs()[1:])
    d = np.hypot(x - lens.center_x_arcsec, y - lens.center_y_arcsec)
    np.testing.assert_allclose(np.hypot(sx, sy) / d, 0.1, rtol=1e-12)
    assert g == pytest.approx(0.1, rel=1e-14)


# ---------------------------------------------------------------- ray shooting (_lens_args)

@pytest.mark.parametrize("e1,e2", [(0.2, -0.1), (0.0, 0.0), (-0.3, 0.35), (0.9, 0.6)])  # |e| > 0.9999: clipped
def test_ray_shooting_next_to_the_singular_centre_equals_lenstronomy(e1, e2):
    """Within 1e-9" of the centre the SIE's 1e-10 core (s = 1e-10 / sqrt(q)) sets the deflection."""
    lens = LensParams(1.1, e1, e2, 0.02, 0.01, 0.4, -0.3)
    off = np.array([0.0, 1e-11, -3e-11, 1e-10, 2e-10, -5e-10, 1e-9, 0.3])
    x = lens.center_x_arcsec + np.concatenate([off, off * 0.7, -off])
    y = lens.center_y_arcsec + np.concatenate([off * 0.0, off * 0.6, off])
    bx, by = _ray_shoot(x, y, lens)
    rx, ry = _lenstronomy_lens().ray_shooting(x, y, lens.lenstronomy_kwargs())
    np.testing.assert_allclose(bx, rx, rtol=0, atol=1e-12)
    np.testing.assert_allclose(by, ry, rtol=0, atol=1e-12)


def test_ray_shooting_of_integer_and_strided_inputs():
    lens = LensParams(1.3, 0.1, 0.05, -0.03, 0.02, 0.0, 0.0)
    xi = np.array([-3, -1, 1, 2, 4])
    yi = np.array([2, -2, 3, 0, -1])
    bx, by = _ray_shoot(xi, yi, lens)
    rx, ry = _lenstronomy_lens().ray_shooting(xi.astype(float), yi.astype(float), lens.lenstronomy_kwargs())
    assert bx.dtype == np.float64 and by.dtype == np.float64
    np.testing.assert_allclose(bx, rx, rtol=0, atol=1e-12)
    np.testing.assert_allclose(by, ry, rtol=0, atol=1e-12)
    grid = np.linspace(-2, 2, 20).reshape(4, 5)
    bx, by = _ray_shoot(grid[:, 1], grid[:, 3], lens)  # non-contiguous columns
    rx, ry = _lenstronomy_lens().ray_shooting(grid[:, 1].copy(), grid[:, 3].copy(), lens.lenstronomy_kwargs())
    np.testing.assert_allclose(bx, rx, rtol=0, atol=1e-12)
    np.testing.assert_allclose(by, ry, rtol=0, atol=1e-12)
    x = np.array([0.3, -1.2])
    bx, by = _ray_shoot(x, x[::-1], None)
    np.testing.assert_array_equal(bx, x)
    np.testing.assert_array_equal(by, x[::-1])


# ---------------------------------------------------------------- interpol_surface_brightness

def _bilinear_by_hand(x, y, image, cx, cy, phi, scale):
    n_r, n_c = image.shape
    padded = [[0.0] * (n_c + 2) for _ in range(n_r + 2)]
    for r in range(n_r):
        for c in range(n_c):
            padded[r + 1][c + 1] = float(image[r, c])
    out = []
    for xp, yp in zip(x, y):
        ix, iy = (xp - cx) / scale, (yp - cy) / scale
        xr = ix * math.cos(phi) + iy * math.sin(phi)
        yr = -ix * math.sin(phi) + iy * math.cos(phi)
        u = min(max(xr + (n_c + 1) / 2, 0.0), n_c + 1.0)  # padded column index (continuous)
        v = min(max(yr + (n_r + 1) / 2, 0.0), n_r + 1.0)
        j0, i0 = min(int(u), n_c), min(int(v), n_r)
        fu, fv = u - j0, v - i0
        out.append((1 - fv) * ((1 - fu) * padded[i0][j0] + fu * padded[i0][j0 + 1])
                   + fv * ((1 - fu) * padded[i0 + 1][j0] + fu * padded[i0 + 1][j0 + 1]))
    return np.array(out)


def test_interpol_at_pixel_centres_returns_the_pixels():
    img = np.arange(1.0, 16.0).reshape(3, 5)  # pixel [r, c] at (c - 2, r - 1) x scale
    rr, cc = np.mgrid[0:3, 0:5]
    x, y = (cc.ravel() - 2) * 0.5 + 0.1, (rr.ravel() - 1) * 0.5 - 0.2
    out = interpol_surface_brightness(x, y, img, 0.1, -0.2, 0.0, 0.5)
    np.testing.assert_allclose(out, img.ravel(), rtol=1e-13)


def test_interpol_equals_bilinear_by_hand_inside_and_outside():
    rng = np.random.default_rng(7)
    img = rng.uniform(0.1, 2.0, (5, 7))  # non-square, non-zero up to its border
    x, y = rng.uniform(-0.6, 0.6, 3000), rng.uniform(-0.6, 0.6, 3000)
    out = interpol_surface_brightness(x, y, img, 0.05, -0.03, 0.9, 0.1)
    truth = _bilinear_by_hand(x, y, img, 0.05, -0.03, 0.9, 0.1)
    assert (truth == 0).sum() > 500 and (truth > 0).sum() > 500
    np.testing.assert_allclose(out, truth, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- lensed_source_image

LENSES = {
    "sie": LensParams(0.9, 0.15, -0.1, 0.04, -0.03, 0.1, -0.05),
    "shear_only": LensParams(0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0),
    "none": None,
    "shear_one": LensParams(0.5, 0.1, 0.0, 1.0, 0.0, 0.0, 0.0),  # gamma = 1: no window at all
    "shear_strong": LensParams(0.5, 0.0, 0.1, 0.0, 1.5, 0.1, 0.0),  # gamma > 1: no window either
    # theta_E 0, gamma1 -0.5: beta = (1.5 x, 0.5 y), so a source 0.3" up is imaged at y = 0.6" and
    # stretched along y: the window's reach needs the source offset's full length
    "shear_y": LensParams(0.0, 0.0, 0.0, -0.5, 0.0, 0.0, 0.0),
}


@pytest.mark.parametrize("lens_name,src,n_pix,s,lo,hi,step,k", [
    ("sie", SourcePlacement(0.12, 0.05, 0.6), 16, S, 4, 12, 1.5, 1),
    ("sie", SourcePlacement(-0.2, 0.1, 2.0), 15, S, 3, 7, 1.5, 2),
    ("sie", SourcePlacement(0.0, 0.0, 0.0), 14, 0.2, 2, 1, 2.5, 3),
    ("shear_only", SourcePlacement(0.0, 0.0, 0.3), 20, S, 2, 6, 1.5, 1),
    ("shear_only", SourcePlacement(0.07, -0.02, 0.0), 20, S, 2, 6, 1.5, 2),
    ("none", SourcePlacement(0.3, -0.4, 1.0), 13, S, 4, 12, 1.5, 2),
    ("shear_one", SourcePlacement(0.02, 0.01, 0.0), 12, S, 2, 4, 1.5, 1),
    ("shear_strong", SourcePlacement(0.0, 0.03, 0.5), 12, S, 2, 4, 1.5, 2),
    ("shear_y", SourcePlacement(0.0, 0.3, 0.2), 16, S, 2, 4, 1.5, 1),
    ("shear_y", SourcePlacement(-0.3, 0.0, 0.2), 16, S, 2, 4, 1.5, 1),
])
def test_lensed_image_equals_the_docstring_pixel_by_pixel(lens_name, src, n_pix, s, lo, hi, step, k):
    lens = LENSES[lens_name]
    sb = source_unit_surface_brightness(_blob(), SRC)
    truth, kept = _truth_lensed(sb, SRC, lens, src, n_pix, s, lo, hi, step, k)
    assert truth.sum() > 0.1
    img, n_traced = lensed_source_image(sb, SRC, lens, src, n_pix, s, lo, hi, step, k)
    assert img.shape == (k * n_pix, k * n_pix) and img.dtype == np.float64
    assert type(n_traced) is int and n_traced == kept
    np.testing.assert_allclose(img, truth, rtol=1e-9, atol=1e-12 * truth.max())


def test_lensed_image_defaults_and_keywords():
    """Defaults: 64 pixels of 0.262", supersampling 4..12, step 1.5 source pixels, subgrid 1."""
    lens = LensParams(1.0, 0.1, 0.0, 0.0, 0.02, 0.0, 0.0)
    src = SourcePlacement(0.05, 0.0, 0.0)
    sb = source_unit_surface_brightness(_blob(sigma=3.0), SRC)
    img, n = lensed_source_image(sb, SRC, lens, src)
    truth, kept = _truth_lensed(sb, SRC, lens, src, 64, S, 4, 12, 1.5, 1)
    assert n == kept
    np.testing.assert_allclose(img, truth, rtol=1e-9, atol=1e-12 * truth.max())


@pytest.mark.parametrize("lens_name,n_pix,k", [("none", 7, 1), ("none", 6, 2), ("sie", 7, 1), ("sie", 6, 2),
                                                ("sie", 1, 1), ("sie", 1, 2), ("none", 1, 1)])
def test_light_up_to_every_edge_of_the_stamp_and_one_pixel_stamps(lens_name, n_pix, k):
    """A source wider than the stamp (0.1" pixels, 1.5" radius): every edge row and column is lit;
    a 1 x 1 stamp is one pixel, kept and traced."""
    lens = LENSES[lens_name]
    src = SourcePlacement(0.05, -0.08, 0.3)
    sb = source_unit_surface_brightness(_blob(n=41, seed=5, sigma=7.0), 0.1)
    truth, kept = _truth_lensed(sb, 0.1, lens, src, n_pix, S, 3, 6, 1.5, k)
    assert truth[0].all() and truth[-1].all() and truth[:, 0].all() and truth[:, -1].all()
    img, n_traced = lensed_source_image(sb, 0.1, lens, src, n_pix, S, 3, 6, 1.5, k)
    assert n_traced == kept == n_pix * n_pix
    np.testing.assert_allclose(img, truth, rtol=1e-9, atol=1e-12 * truth.max())


@pytest.mark.parametrize("lens_name", ["none", "sie"])
def test_an_empty_source_keeps_only_the_pixels_whose_box_holds_its_centre(lens_name):
    """Support radius 0: a pixel is kept when its widened source-plane box contains the source
    centre (distance 0 <= 0); the image is all zero."""
    lens = LENSES[lens_name]
    src = SourcePlacement(0.02, 0.01, 0.0)
    sb = np.zeros((9, 9))
    truth, kept = _truth_lensed(sb, SRC, lens, src, 12, S, 2, 4, 1.5, 1)
    img, n_traced = lensed_source_image(sb, SRC, lens, src, 12, S, 2, 4, 1.5)
    assert kept > 0 and n_traced == kept and not img.any() and not truth.any()


def test_source_outside_the_stamp_gives_zeros_and_no_traced_pixel():
    """Sources far from a central lens (nothing kept), and lenses far off the stamp (the window
    around the lens centre misses the stamp in x, in y or both)."""
    sb = source_unit_surface_brightness(_blob(), SRC)
    central = LensParams(0.8, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0)
    for lens, src, n_pix in [
        (central, SourcePlacement(40.0, 0.0, 0.0), 16), (central, SourcePlacement(0.0, -3.0, 0.0), 16),
        (central, SourcePlacement(2.6, 2.6, 0.0), 16),
        (LensParams(0.8, 0.1, 0.0, 0.0, 0.0, 40.0, 0.0), SourcePlacement(0.0, 0.0, 0.0), 16),
        (LensParams(0.8, 0.1, 0.0, 0.0, 0.0, 0.0, -40.0), SourcePlacement(0.0, 0.0, 0.0), 16),
        (LensParams(0.8, 0.1, 0.0, 0.0, 0.0, 40.0, 40.0), SourcePlacement(0.0, 0.0, 0.0), 16),
    ]:
        for k in (1, 2):
            img, n = lensed_source_image(sb, SRC, lens, src, n_pix, subgrid=k)
            assert n == 0 and img.shape == (k * n_pix, k * n_pix) and not img.any()
            truth, kept = _truth_lensed(sb, SRC, lens, src, n_pix, S, 4, 12, 1.5, k)
            assert kept == 0 and not truth.any()


# ---------------------------------------------------------------- convolutions

def test_fft_size_for_a_64_stamp():
    assert fft_size_for(64) == 96  # 64 + 31 = 95 -> 96 = 2^5 3
    assert fft_size_for(10) == 45  # 10 + 31 = 41 -> 45 = 3^2 5 (real FFT sizes)


@pytest.mark.parametrize("box", [(20, 26, 30, 33), (0, 3, 0, 5), (58, 64, 61, 64), (10, 50, 12, 52), (0, 64, 0, 64)])
def test_convolve_bands_equals_direct_convolution(box):
    r0, r1, c0, c1 = box
    rng = np.random.default_rng(r0 + 7 * c1)
    img = np.zeros((64, 64))
    img[r0:r1, c0:c1] = rng.uniform(0.0, 1.0, (r1 - r0, c1 - c0))
    psf = MoffatPSF({"g": 1.9, "r": 1.3, "z": 0.8}, 3.5)
    flux = [2.0, 0.5, 3.0]
    out = convolve_bands(img, flux, psf)
    assert out.shape == (3, 64, 64)
    for i, band in enumerate(psf.bands):
        truth = flux[i] * _direct_convolution(img, psf.kernel(band, S), 64, 0)
        np.testing.assert_allclose(out[i], truth, rtol=0, atol=1e-12 * truth.max())
    # the docstring: every pixel more than R (the widest kernel's half-width) outside the box is exactly 0
    _assert_exact_zero_outside(out, r0, r1, c0, c1, max(psf.kernel(b, S).shape[0] // 2 for b in psf.bands))


def _assert_exact_zero_outside(out, r0, r1, c0, c1, margin):
    n = out.shape[-1]
    inside = np.zeros((n, n), bool)
    inside[max(r0 - margin, 0):r1 + margin, max(c0 - margin, 0):c1 + margin] = True
    assert (out[:, ~inside] == 0).all()


def test_convolve_bands_tall_box_that_just_fits_the_largest_crop_grid():
    """A box 64 rows tall and 2 columns wide with R = 16 (FWHM 1.4"): 64 + 2 R = 96, the largest
    crop grid, exactly; columns more than R from the box stay exactly 0 (the whole-stamp branch
    would leave FFT round-off there)."""
    img = np.zeros((64, 64))
    img[:, 30:32] = np.linspace(0.5, 1.5, 128).reshape(64, 2)
    psf = MoffatPSF({"r": 1.4}, 3.5)
    assert psf.kernel("r", S).shape[0] // 2 == 16
    out = convolve_bands(img, [1.5], psf)
    truth = 1.5 * _direct_convolution(img, psf.kernel("r", S), 64, 0)
    np.testing.assert_allclose(out[0], truth, rtol=0, atol=1e-12 * truth.max())
    assert not out[:, :, :30 - 16].any() and not out[:, :, 32 + 16:].any()


def test_convolve_bands_whole_stamp_on_an_odd_fft_grid():
    """A 44-pixel stamp lit everywhere with a 2.8" PSF (R = 31): box + 2R = 106 > 96, so the
    whole stamp is transformed on fft_size_for(44) = next_fast_len(75) = 75 points, an odd size
    (an inverse real FFT must be told it, 2 (m - 1) = 74 is the default)."""
    rng = np.random.default_rng(11)
    img = rng.uniform(0.0, 1.0, (44, 44))
    psf = MoffatPSF({"r": 2.8}, 3.5)
    assert psf.kernel("r", S).shape[0] // 2 == 31 and fft_size_for(44) == 75
    out = convolve_bands(img, [2.0], psf)
    truth = 2.0 * _direct_convolution(img, psf.kernel("r", S), 44, 0)
    np.testing.assert_allclose(out[0], truth, rtol=0, atol=1e-12 * truth.max())


@pytest.mark.parametrize("i,j", [(31, 40), (0, 63), (63, 0)])
def test_convolve_bands_of_a_single_pixel_is_the_kernel(i, j):
    """One non-zero pixel (one row, one column): the pixel kernel centred on it, cut at the stamp
    edge, written by a loop."""
    img = np.zeros((64, 64))
    img[i, j] = 1.0
    psf = MoffatPSF({"r": 1.1, "z": 1.5}, 3.5)
    out = convolve_bands(img, [3.0, 0.5], psf)
    for b, (band, flux) in enumerate(zip(psf.bands, [3.0, 0.5])):
        kern = psf.kernel(band, S)
        r = kern.shape[0] // 2
        truth = np.zeros((64, 64))
        for a in range(kern.shape[0]):
            for c in range(kern.shape[1]):
                if 0 <= i + a - r < 64 and 0 <= j + c - r < 64:
                    truth[i + a - r, j + c - r] = flux * kern[a, c]
        np.testing.assert_allclose(out[b], truth, rtol=0, atol=1e-12 * truth.max())


def test_convolve_bands_with_fwhm_list_beta_and_pixel_scale():
    img = np.zeros((30, 30))
    img[12:15, 9:17] = np.arange(24.0).reshape(3, 8)
    out = convolve_bands(img, [1.0, 4.0], [1.0, 0.7], 2.5, 0.2)
    psf = MoffatPSF({"0": 1.0, "1": 0.7}, 2.5)
    for i, band in enumerate("01"):
        truth = [1.0, 4.0][i] * _direct_convolution(img, psf.kernel(band, 0.2), 30, 0)
        np.testing.assert_allclose(out[i], truth, rtol=0, atol=1e-12 * truth.max())
    assert not convolve_bands(np.zeros((30, 30)), [1.0], [1.0], 2.5).any()
    assert convolve_bands(np.zeros((30, 30)), [1.0, 2.0], [1.0, 1.2], 2.5).shape == (2, 30, 30)


@pytest.mark.parametrize("k,box", [(2, (41, 53, 45, 53)), (2, (0, 5, 0, 9)), (2, (120, 128, 119, 128)),
                                   (3, (29, 40, 59, 64)), (2, (0, 128, 0, 128)), (1, (10, 20, 30, 40))])
def test_convolve_bands_subgrid_equals_direct_convolution_binned(k, box):
    n = 64 if k != 3 else 32
    r0, r1, c0, c1 = box
    rng = np.random.default_rng(r1 + c0)
    img = np.zeros((k * n, k * n))
    img[r0:r1, c0:c1] = rng.uniform(0.0, 1.0, (r1 - r0, c1 - c0))
    psf = MoffatPSF({"g": 0.9, "r": 1.6, "z": 1.2}, 3.5)
    flux = [1.5, 2.0, 0.25]
    out = convolve_bands_subgrid(img, k, flux, psf)
    assert out.shape == (3, n, n)
    for i, band in enumerate(psf.bands):
        truth = flux[i] * _bin(_direct_convolution(img, psf.kernel(band, S, k), k * n, 0), k)
        np.testing.assert_allclose(out[i], truth, rtol=0, atol=1e-12 * truth.max())
    # the docstring: pixels more than R + 1 (R = the widest kernel_radius_pix) from the box of
    # non-zero pixels are exactly 0. Above and left of the box exactly so; below and right the
    # transformed box is square (its longer side), so a non-square box's zeros start R + 1 past
    # the square (measured: ~1e-16 of FFT round-off between the two, see docs/mutation_testing.md)
    pad = max(psf.kernel_radius_pix(b, S) for b in psf.bands) + 1
    b0, b1, d0, d1 = r0 // k, (r1 - 1) // k + 1, c0 // k, (c1 - 1) // k + 1
    side = max(b1 - b0, d1 - d0)
    _assert_exact_zero_outside(out, b0, b0 + side, d0, d0 + side, pad)


@pytest.mark.parametrize("k,i,j", [(2, 63, 64), (2, 1, 0), (3, 40, 20), (2, 127, 127)])
def test_a_single_sub_pixel_comes_back_as_the_binned_kernel(k, i, j):
    """One non-zero sub-pixel (a single row and column): the result is the sub-grid kernel centred
    on it, summed k x k into pixels by a loop, cut at the stamp edge."""
    n = 64 if k == 2 else 30
    img = np.zeros((k * n, k * n))
    img[i, j] = 1.0
    psf = MoffatPSF({"r": 1.3}, 3.5)
    kern = psf.kernel("r", S, k)
    r = kern.shape[0] // 2
    truth = np.zeros((n, n))
    for a in range(kern.shape[0]):
        for b in range(kern.shape[1]):
            y, x = i + a - r, j + b - r
            if 0 <= y < k * n and 0 <= x < k * n:
                truth[y // k, x // k] += 2.5 * kern[a, b]
    out = convolve_bands_subgrid(img, k, [2.5], psf)
    np.testing.assert_allclose(out[0], truth, rtol=0, atol=1e-12 * truth.max())


def test_convolve_bands_subgrid_with_fwhm_list_beta_and_pixel_scale():
    img = np.zeros((40, 40))
    img[18:23, 15:21] = 1.0
    out = convolve_bands_subgrid(img, 2, [3.0, 1.0], [0.6, 1.1], 2.5, 0.2)
    psf = MoffatPSF({"0": 0.6, "1": 1.1}, 2.5)
    for i, band in enumerate("01"):
        truth = [3.0, 1.0][i] * _bin(_direct_convolution(img, psf.kernel(band, 0.2, 2), 40, 0), 2)
        np.testing.assert_allclose(out[i], truth, rtol=0, atol=1e-12 * truth.max())
    empty = convolve_bands_subgrid(np.zeros((40, 40)), 2, [1.0, 2.0], [0.6, 1.1], 2.5)
    assert empty.shape == (2, 20, 20) and not empty.any()


# ---------------------------------------------------------------- render_arc

def test_render_arc_against_the_pixel_loop_and_direct_convolution():
    """Non-default stamp size, pixel scale and supersampling; the PSF as a FWHM list with beta."""
    lens = LensParams(0.8, 0.1, 0.05, 0.02, -0.01, 0.05, 0.0)
    src = SourcePlacement(0.1, -0.05, 0.4)
    stamp = _blob(seed=3) * 7.0
    out = render_arc(stamp, SRC, lens, src, [2.0, 5.0], [1.234, 0.9], 2.8, n_pix=18, pixel_scale_arcsec=0.2,
                     supersampling=7)  # above the ~5 sub-samples the step rule asks for here
    sb = stamp / stamp.sum() / SRC**2
    truth_sub, kept = _truth_lensed(sb, SRC, lens, src, 18, 0.2, 7, 12, 1.5, 2)
    truth = _bin(truth_sub, 2)
    np.testing.assert_allclose(out.lensed_unit, truth, rtol=1e-9, atol=1e-12 * truth.max())
    assert out.magnification == pytest.approx(truth.sum(), rel=1e-9) and type(out.magnification) is float
    assert out.n_pixels_traced == kept
    assert out.psf_fwhm_arcsec == (1.23, 0.9)
    assert out.arcs.dtype == np.float32 and out.arcs.shape == (2, 18, 18)
    psf = MoffatPSF({"0": 1.234, "1": 0.9}, 2.8)
    for i, band in enumerate("01"):
        arc = [2.0, 5.0][i] * _bin(_direct_convolution(truth_sub, psf.kernel(band, 0.2, 2), 36, 0), 2)
        np.testing.assert_allclose(out.arcs[i], arc, rtol=0, atol=1e-6 * arc.max())


def test_render_arc_with_a_psf_object_and_defaults():
    lens = LensParams(1.1, -0.05, 0.1, 0.0, 0.03, 0.0, 0.1)
    src = SourcePlacement(-0.05, 0.05, 1.2)
    stamp = _blob(seed=4)
    psf = MoffatPSF({"r": 1.1, "z": 0.95}, 3.5)
    out = render_arc(stamp, SRC, lens, src, [1.0, 2.0], psf)
    sb = stamp / stamp.sum() / SRC**2
    truth_sub, kept = _truth_lensed(sb, SRC, lens, src, 64, S, 4, 12, 1.5, 2)
    np.testing.assert_allclose(out.lensed_unit, _bin(truth_sub, 2), rtol=1e-9, atol=1e-12 * truth_sub.max())
    assert out.n_pixels_traced == kept and out.psf_fwhm_arcsec == (1.1, 0.95)
    for i, band in enumerate(psf.bands):
        arc = [1.0, 2.0][i] * _bin(_direct_convolution(truth_sub, psf.kernel(band, S, 2), 128, 0), 2)
        np.testing.assert_allclose(out.arcs[i], arc, rtol=0, atol=1e-6 * arc.max())


def test_render_arc_of_a_source_half_outside_the_stamp_has_magnification_below_one():
    """No lens deflection (theta_E 0, no shear): the source straddles the stamp's left edge, so the
    in-stamp flux (= magnification) is about 1/2, accepted."""
    lens = LensParams(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    src = SourcePlacement(-16 * S - 0.5 * S, 0.0, 0.0)
    stamp = _blob(seed=6)
    out = render_arc(stamp, SRC, lens, src, [1.0], MoffatPSF({"r": 1.0}, 3.5), n_pix=32)
    sb = stamp / stamp.sum() / SRC**2
    truth_sub, kept = _truth_lensed(sb, SRC, lens, src, 32, S, 4, 12, 1.5, 2)
    assert 0.2 < truth_sub.sum() < 0.8
    assert out.magnification == pytest.approx(truth_sub.sum(), rel=1e-9)
    assert out.n_pixels_traced == kept


def test_render_arc_refuses_a_source_lensed_outside_the_stamp():
    lens = LensParams(1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(RowError) as err:
        render_arc(_blob(), SRC, lens, SourcePlacement(30.0, 0.0, 0.0), [1.0], MoffatPSF({"r": 1.2}, 3.5))
    assert str(err.value) == "lensed source has no flux in the stamp (magnification 0.0)"
    with pytest.raises(RowError) as err:
        render_arc(np.zeros((4, 4)), SRC, lens, SourcePlacement(0.0, 0.0, 0.0), [1.0], MoffatPSF({"r": 1.2}, 3.5))
    assert str(err.value) == "source stamp has no positive total flux (sum = 0.0)"


def test_lenstronomy_kwargs_in_full():
    lens = LensParams(1.5, 0.1, -0.2, 0.03, 0.04, 0.5, -0.6)
    assert lens.lenstronomy_kwargs() == [
        {"theta_E": 1.5, "e1": 0.1, "e2": -0.2, "center_x": 0.5, "center_y": -0.6},
        {"gamma1": 0.03, "gamma2": 0.04, "ra_0": 0.5, "dec_0": -0.6},
    ]
