"""pipeline.injection.psf against truth computed here without the module (issue 20, mutation
testing): the Moffat profile, its core radius, enclosed flux and kernel sizes from the formulas
written out below (I(r) = (beta - 1) / (pi alpha^2) (1 + r^2 / alpha^2)^-beta, alpha = FWHM /
(2 sqrt(2^(1/beta) - 1)), checked itself by its half-maximum), kernels rebuilt pixel by pixel with
Python loops, the enclosed flux by scipy quadrature, the pixel integral by scipy dblquad, the
wrapped FFT by placing the kernel by hand, and the PSF object's registry, columns and every error
message in full."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import integrate

from pipeline.errors import RowError
from pipeline.injection import psf as P

S = 0.262  # DR10 pixel scale, written out (not read from the module)


@pytest.fixture(autouse=True)
def _empty_caches():
    """Every lru_cache of the module emptied before each test: mutmut forks each mutant's run from a
    process that already ran the clean tests, so a kernel cached there would hide the mutant (and
    `--plant` runs many mutants in one process)."""
    for name in dir(P):
        clear = getattr(getattr(P, name), "cache_clear", None)
        if clear is not None:
            clear()


# --- truth --------------------------------------------------------------------------------------

def _alpha(fwhm, beta):
    return fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def _moffat(r2, alpha, beta):
    """Peak-1 Moffat at squared radius r2."""
    return (1.0 + r2 / alpha**2) ** (-beta)


def _enclosed(radius, fwhm, beta):
    """Flux fraction inside `radius` by quadrature of the normalised profile."""
    a = _alpha(fwhm, beta)
    norm = (beta - 1.0) / (math.pi * a * a)
    val, _ = integrate.quad(lambda r: 2 * math.pi * r * norm * _moffat(r * r, a, beta), 0.0, radius,
                            epsabs=1e-14, epsrel=1e-13, limit=200)
    return val


def _radius_truth(fwhm, beta, scale, cap=31):
    """Smallest whole number of pixels (>= 1) whose circle holds 99.5% of the flux, capped."""
    r = 1
    while _enclosed(r * scale, fwhm, beta) < 0.995 and r < cap:
        r += 1
    return r


def _pixel_kernel_truth(fwhm, beta, scale, radius, ss=9):
    """Mean of ss x ss point samples per pixel, by loops, normalised to sum 1."""
    a = _alpha(fwhm, beta) / scale
    offs = [(i + 0.5) / ss - 0.5 for i in range(ss)]
    n = 2 * radius + 1
    k = np.zeros((n, n))
    for iy in range(n):
        for ix in range(n):
            tot = 0.0
            for oy in offs:
                for ox in offs:
                    y, x = iy - radius + oy, ix - radius + ox
                    tot += _moffat(x * x + y * y, a, beta)
            k[iy, ix] = tot / (ss * ss)
    return k / math.fsum(k.ravel())


def _pixel_profile_truth(x, fwhm, beta, scale):
    """Peak-1 Moffat averaged over the pixel centred at (x, 0): scipy dblquad / pixel area."""
    a = _alpha(fwhm, beta)
    h = scale / 2
    val, _ = integrate.dblquad(lambda v, u: _moffat((x - u) ** 2 + v * v, a, beta), -h, h, -h, h,
                               epsabs=1e-13, epsrel=1e-12)
    return val / scale**2


def _half_max_x(fwhm, beta, scale):
    """x where the pixelated profile falls to half its peak (bisection on the dblquad truth)."""
    peak = _pixel_profile_truth(0.0, fwhm, beta, scale)
    lo, hi = 0.0, 3 * fwhm + scale
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _pixel_profile_truth(mid, fwhm, beta, scale) > 0.5 * peak:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _wrapped_truth(kernel, n):
    w = np.zeros((n, n))
    r = kernel.shape[0] // 2
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            w[(i - r) % n, (j - r) % n] = kernel[i, j]
    return np.fft.rfft2(w)


def _read_only(a):
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0, 0] = 1.0


def _fwhm_of_fine_kernel(kernel, pitch):
    """FWHM along the x axis through the centre by linear interpolation of the half-max crossing."""
    r = kernel.shape[0] // 2
    row = kernel[r, r:] / kernel[r, r]
    i = int(np.argmax(row < 0.5))
    frac = (row[i - 1] - 0.5) / (row[i - 1] - row[i])
    return 2 * (i - 1 + frac) * pitch


# --- analytic helpers ---------------------------------------------------------------------------

def test_the_truths_alpha_gives_half_maximum_at_half_the_fwhm():
    for fwhm, beta in [(1.0, 3.5), (1.3, 2.5), (0.7, 4.765)]:
        assert _moffat((fwhm / 2) ** 2, _alpha(fwhm, beta), beta) == pytest.approx(0.5, rel=1e-14)
        assert _enclosed(1e4, fwhm, beta) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("fwhm,beta", [(1.0, 3.5), (1.3, 2.5), (0.7, 4.765), (2.0, 1.5)])
def test_moffat_alpha_enclosed_fraction_and_radius(fwhm, beta):
    a = P.moffat_alpha(fwhm, beta)
    assert a == pytest.approx(_alpha(fwhm, beta), rel=1e-14)
    assert _moffat((fwhm / 2) ** 2, a, beta) == pytest.approx(0.5, rel=1e-13)
    for r in (0.1, 0.5, 1.0, 2.7, 10.0):
        assert P.moffat_enclosed_fraction(r, fwhm, beta) == pytest.approx(_enclosed(r, fwhm, beta), rel=1e-10)
    for f in (0.1, 0.5, 0.9, 0.995):
        r = P.moffat_radius_for_fraction(f, fwhm, beta)
        assert _enclosed(r, fwhm, beta) == pytest.approx(f, rel=1e-10)


def test_radius_for_99_5_percent_with_beta_3_5_is_2_90_fwhm():
    # the module docstring says 2.90 x FWHM; the closed form gives 2.8917 (0.995^(1/(1-3.5)) = 8.314...)
    r = 0.5 / math.sqrt(2 ** (1 / 3.5) - 1) * math.sqrt(0.005 ** (1 / (1 - 3.5)) - 1)
    assert P.moffat_radius_for_fraction(0.995, 1.0, 3.5) == pytest.approx(r, rel=1e-14)
    assert r == pytest.approx(2.8917, abs=1e-4)


@pytest.mark.parametrize("fwhm,beta,scale", [
    (1.0, 3.5, S), (1.25, 3.5, S), (0.5, 2.5, S), (0.8, 4.0, 0.2), (1.1, 2.5, S), (0.05, 3.5, S),
    (0.3, 3.5, 0.262)])
def test_kernel_radius_is_the_smallest_whole_pixel_count_holding_99_5_percent(fwhm, beta, scale):
    assert P.kernel_radius_pix(fwhm, beta, scale) == _radius_truth(fwhm, beta, scale)


def test_kernel_radius_is_at_least_one_and_capped():
    assert P.kernel_radius_pix(0.01, 3.5, S) == 1
    assert P.kernel_radius_pix(5.0, 3.5, S) == 31
    # for beta 2.5 the cap binds from FWHM 31 x 0.262 / 5.096 = 1.59" (the docstring says ~1.2"); 1.55" already needs 31
    assert P.kernel_radius_pix(1.5, 2.5, S) == 30 and P.kernel_radius_pix(1.6, 2.5, S) == 31
    assert P.kernel_radius_pix(1.0, 3.5, S, 5) == 5
    assert P.kernel_radius_pix(1.0, 3.5, S, max_radius_pix=7) == 7
    assert P.kernel_radius_pix(1.0, 3.5, S, 40) == _radius_truth(1.0, 3.5, S, cap=40)
    assert type(P.kernel_radius_pix(1.0, 3.5, S)) is int
    assert P.MAX_RADIUS_PIX == 31 and P.ENCLOSED_FLUX_TARGET == 0.995 and P.FWHM_STEP_ARCSEC == 0.01


# --- pixel kernel -------------------------------------------------------------------------------

@pytest.mark.parametrize("fwhm,beta,scale", [(0.6, 3.5, S), (0.9, 4.5, 0.3), (0.4, 2.5, S)])
def test_moffat_kernel_pixel_by_pixel(fwhm, beta, scale):
    k = P.moffat_kernel(fwhm, beta, scale)
    radius = _radius_truth(fwhm, beta, scale)
    assert k.shape == (2 * radius + 1, 2 * radius + 1) and k.dtype == np.float64
    np.testing.assert_allclose(k, _pixel_kernel_truth(fwhm, beta, scale, radius), rtol=1e-12, atol=0)
    assert math.fsum(k.ravel()) == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(k, k[::-1, :], rtol=1e-14, atol=0)
    np.testing.assert_allclose(k, k[:, ::-1], rtol=1e-14, atol=0)
    np.testing.assert_allclose(k, k.T, rtol=1e-15, atol=0)
    assert np.unravel_index(np.argmax(k), k.shape) == (radius, radius)


def test_moffat_kernel_with_an_explicit_cap():
    k = P.moffat_kernel(1.0, 3.5, S, 2)
    np.testing.assert_allclose(k, _pixel_kernel_truth(1.0, 3.5, S, 2), rtol=1e-12, atol=0)
    k = P.moffat_kernel(1.0, 3.5, S, max_radius_pix=3)
    np.testing.assert_allclose(k, _pixel_kernel_truth(1.0, 3.5, S, 3), rtol=1e-12, atol=0)


@pytest.mark.parametrize("fwhm", [0.0, -1.0, float("nan"), float("inf"), float("-inf")])
def test_moffat_kernel_refuses_a_bad_fwhm(fwhm):
    for fn in (lambda: P.moffat_kernel(fwhm, 3.5, S), lambda: P.subgrid_kernel(fwhm, 3.5, S, 3)):
        with pytest.raises(RowError) as e:
            fn()
        assert str(e.value) == f"PSF FWHM must be a positive number, got {fwhm}"


@pytest.mark.parametrize("beta", [1.0, 0.5, -2.0, float("nan"), float("inf")])
def test_moffat_kernel_refuses_a_bad_beta(beta):
    for fn in (lambda: P.moffat_kernel(1.0, beta, S), lambda: P.subgrid_kernel(1.0, beta, S, 3)):
        with pytest.raises(RowError) as e:
            fn()
        assert str(e.value) == f"Moffat beta must be > 1, got {beta}"


def test_beta_just_above_one_and_a_tiny_fwhm_are_accepted():
    assert P.moffat_kernel(1e-6, 3.5, S).shape == (3, 3)
    k = P.moffat_kernel(0.3, 1.01, S, 2)
    assert k.shape == (5, 5) and np.isfinite(k).all()
    k = P.subgrid_kernel(0.9, 1.5, S, 2)  # beta between 1 and 2: the cap binds (radius 2 x 31 + 1)
    assert k.shape == (127, 127) and math.fsum(k.ravel()) == pytest.approx(1.0, abs=1e-14)


# --- rounding and caches -------------------------------------------------------------------------

def test_round_fwhm_to_the_hundredth():
    for x, want in [(1.2349, 1.23), (1.2351, 1.24), (1.0, 1.0), (0.004, 0.0), (0.006, 0.01),
                    (np.float32(1.1), 1.1), ("0.87", 0.87), (2, 2.0), (13.456789, 13.46)]:
        got = P.round_fwhm(x)
        assert got == want and type(got) is float


def test_cached_kernel_is_the_rounded_kernel_read_only_and_shared():
    k = P.cached_kernel(0.6149, 3.5, S)
    np.testing.assert_allclose(k, _pixel_kernel_truth(0.61, 3.5, S, _radius_truth(0.61, 3.5, S)),
                               rtol=1e-12, atol=0)
    _read_only(k)
    assert P.cached_kernel(0.6051, 3.5, S) is k
    assert P.cached_kernel(0.61, np.float32(3.5), 0.262) is k


@pytest.mark.parametrize("fwhm", [0.004, 0.0, -0.3])
def test_cached_kernels_refuse_a_fwhm_that_rounds_to_zero_or_below(fwhm):
    for fn in (lambda: P.cached_kernel(fwhm, 3.5, S), lambda: P.cached_subgrid_kernel(fwhm, 3.5, S, 3)):
        with pytest.raises(RowError) as e:
            fn()
        assert str(e.value) == f"PSF FWHM must be a positive number, got {fwhm}"


def test_cached_kernel_with_fwhm_0_005_rounds_up_and_is_built():
    assert P.cached_kernel(0.006, 3.5, S).shape == (3, 3)


@pytest.mark.parametrize("n", [16, 17])
def test_wrapped_rfft_places_the_centre_at_the_origin(n):
    k = P.moffat_kernel(0.9, 3.5, S, 3)
    got = P._wrapped_rfft(k, n)
    np.testing.assert_allclose(got, _wrapped_truth(k, n), rtol=0, atol=1e-15)
    assert got.shape == (n, n // 2 + 1)
    _read_only(got)
    # a circular convolution of a zero-padded delta reproduces the kernel with no shift
    img = np.zeros((n, n))
    img[8, 7] = 1.0
    out = np.fft.irfft2(np.fft.rfft2(img) * got, s=(n, n))
    r = k.shape[0] // 2
    np.testing.assert_allclose(out[8 - r:8 + r + 1, 7 - r:7 + r + 1], k, atol=1e-15)


def test_kernel_rfft_is_the_cached_kernels_wrapped_rfft():
    got = P.kernel_rfft(0.8049, np.float32(3.5), S, 20.0)
    np.testing.assert_allclose(got, _wrapped_truth(P.moffat_kernel(0.80, 3.5, S), 20), rtol=0, atol=1e-15)
    assert got.shape == (20, 11)
    _read_only(got)
    assert P.kernel_rfft(0.8, 3.5, S, 20) is got


# --- pixelated FWHM ------------------------------------------------------------------------------

@pytest.mark.parametrize("x", [0.0, 0.1, 0.4, 1.0])
def test_pixelated_profile_is_the_pixel_mean_of_the_moffat(x):
    got = P.pixelated_profile(x, 0.9, 3.5, S)
    assert type(got) is float
    assert got == pytest.approx(_pixel_profile_truth(x, 0.9, 3.5, S), rel=1e-11)


@pytest.mark.parametrize("fwhm,beta", [(0.9, 3.5), (3.0, 3.5), (0.3, 2.5)])
def test_pixelated_fwhm_is_where_the_pixel_mean_falls_to_half(fwhm, beta):
    got = P.pixelated_fwhm_arcsec(fwhm, beta, S)
    assert got == pytest.approx(2 * _half_max_x(fwhm, beta, S), abs=1e-9)
    assert got > fwhm


@pytest.mark.parametrize("fwhm,beta", [(1.1, 3.5), (0.7, 2.5)])
def test_intrinsic_fwhm_pixelates_back_to_the_survey_fwhm(fwhm, beta):
    m = P.intrinsic_fwhm_arcsec(fwhm, beta, S)
    assert type(m) is float and m < fwhm
    assert 2 * _half_max_x(m, beta, S) == pytest.approx(fwhm, abs=1e-8)


def test_intrinsic_fwhm_refuses_a_fwhm_below_a_pixel():
    with pytest.raises(RowError) as e:
        P.intrinsic_fwhm_arcsec(0.1, 3.5, S)
    assert str(e.value) == 'PSF FWHM 0.1" is narrower than a pixelated point source can be at 0.262"/pixel'


# --- sub-grid kernel -----------------------------------------------------------------------------

@pytest.mark.parametrize("fwhm,beta,sub", [(0.9, 3.5, 3), (0.7, 2.5, 4)])
def test_subgrid_kernel_point_samples_of_the_intrinsic_moffat(fwhm, beta, sub):
    k = P.subgrid_kernel(fwhm, beta, S, sub)
    m = 2 * _half_max_x(P.intrinsic_fwhm_arcsec(fwhm, beta, S), beta, S)
    assert m == pytest.approx(fwhm, abs=1e-8)
    radius = sub * _radius_truth(fwhm, beta, S) + sub // 2
    n = 2 * radius + 1
    assert k.shape == (n, n)
    a = _alpha(P.intrinsic_fwhm_arcsec(fwhm, beta, S), beta) / (S / sub)
    truth = np.array([[_moffat(float((x - radius) ** 2 + (y - radius) ** 2), a, beta) for x in range(n)]
                      for y in range(n)])
    np.testing.assert_allclose(k, truth / math.fsum(truth.ravel()), rtol=1e-12, atol=0)
    np.testing.assert_allclose(k, k[::-1, ::-1], rtol=1e-14, atol=0)
    # the intrinsic FWHM measured on a finer sub-grid kernel
    fine = P.subgrid_kernel(fwhm, beta, S, 15)
    assert _fwhm_of_fine_kernel(fine, S / 15) == pytest.approx(P.intrinsic_fwhm_arcsec(fwhm, beta, S), rel=2e-3)


def test_cached_subgrid_kernel_and_its_rfft():
    k = P.cached_subgrid_kernel(0.9049, np.float32(3.5), S, 3.0)
    np.testing.assert_allclose(k, P.subgrid_kernel(0.90, 3.5, S, 3), rtol=1e-15, atol=0)
    _read_only(k)
    assert P.cached_subgrid_kernel(0.9, 3.5, S, 3) is k
    f = P.subgrid_kernel_rfft(0.8951, 3.5, np.float64(S), 3.0, 80.0)
    np.testing.assert_allclose(f, _wrapped_truth(P.subgrid_kernel(0.90, 3.5, S, 3), 80), rtol=0, atol=1e-14)
    _read_only(f)
    assert P.subgrid_kernel_rfft(0.9, 3.5, S, 3, 80) is f


# --- the PSF object --------------------------------------------------------------------------------

def _cfg(**kw):
    return SimpleNamespace(**{"psf_model": "moffat", "moffat_beta": 3.5, **kw})


def test_registry_holds_exactly_the_moffat():
    assert P.PSF_MODELS == {"moffat": P.MoffatPSF} and P.MoffatPSF.name == "moffat"


def test_psf_for_task_builds_a_moffat_in_band_order():
    psf = P.psf_for_task(_cfg(moffat_beta=2.5), {"z": 1.004, "g": 1.336, "r": 1.2})
    assert type(psf) is P.MoffatPSF
    assert psf.bands == ("z", "g", "r") and psf.beta == 2.5
    assert psf.fwhm_arcsec("g") == 1.34 and psf.fwhm_arcsec("z") == 1.0
    assert psf.row_columns() == {"psf_fwhm_z": 1.0, "psf_fwhm_g": 1.34, "psf_fwhm_r": 1.2, "moffat_beta": 2.5}
    assert list(psf.row_columns()) == ["psf_fwhm_z", "psf_fwhm_g", "psf_fwhm_r", "moffat_beta"]
    assert repr(psf) == "MoffatPSF({'z': 1.004, 'g': 1.336, 'r': 1.2}, beta=2.5)"


def test_psf_for_task_refuses_an_unknown_model():
    with pytest.raises(RowError) as e:
        P.psf_for_task(_cfg(psf_model="gauss"), {"r": 1.0})
    assert str(e.value) == "unknown psf_model 'gauss'; known: ['moffat']"
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_moffat_psf_keeps_its_own_copy_and_checks_bands():
    d = {"g": 1.1, "r": 1.0}
    psf = P.MoffatPSF(d, 3.5)
    d["r"] = 9.0
    d["i"] = 1.0
    assert psf.bands == ("g", "r") and psf.fwhm_arcsec("r") == 1.0
    with pytest.raises(KeyError) as e:
        psf.fwhm_arcsec("i")
    assert e.value.args == ("band 'i' is not one of this PSF's bands ('g', 'r')",)
    for fn in (lambda: psf.kernel("z", S), lambda: psf.kernel_radius_pix("z", S, ), lambda: psf.kernel("z", S, 3),
               lambda: psf.kernel_rfft("z", 16, S), lambda: psf.to_lenstronomy("z", S, 4)):
        with pytest.raises(KeyError) as e:
            fn()
        assert e.value.args == ("band 'z' is not one of this PSF's bands ('g', 'r')",)


def test_moffat_psf_from_row_and_row_columns_types():
    row = {"psf_fwhm_g": np.float32(1.25), "psf_fwhm_r": 1.111, "psf_fwhm_z": 0.9, "moffat_beta": np.float32(3.5)}
    psf = P.MoffatPSF.from_row(row, ["r", "g"])
    assert psf.bands == ("r", "g")
    cols = psf.row_columns()
    assert cols == {"psf_fwhm_r": 1.11, "psf_fwhm_g": 1.25, "moffat_beta": 3.5}
    assert all(type(v) is float for v in cols.values())


def test_moffat_psf_kernels_are_the_module_kernels_for_the_rounded_fwhm():
    psf = P.MoffatPSF({"g": 1.2049, "r": 0.9}, 3.5)
    assert psf.kernel_radius_pix("g", S) == _radius_truth(1.20, 3.5, S)
    k1 = psf.kernel("r", S)
    assert k1 is P.cached_kernel(0.9, 3.5, S)
    assert psf.kernel("r", S, 1.0) is k1 and psf.kernel("r", S, supersample=1) is k1
    np.testing.assert_allclose(k1, _pixel_kernel_truth(0.9, 3.5, S, _radius_truth(0.9, 3.5, S)), rtol=1e-12)
    k3 = psf.kernel("g", S, 3)
    assert k3 is P.cached_subgrid_kernel(1.2, 3.5, S, 3)
    assert k3.shape[0] == 2 * (3 * _radius_truth(1.2, 3.5, S) + 1) + 1
    f1 = psf.kernel_rfft("r", 40, S)
    np.testing.assert_allclose(f1, _wrapped_truth(k1, 40), rtol=0, atol=1e-15)
    assert psf.kernel_rfft("r", 40, S, 1) is f1
    f3 = psf.kernel_rfft("g", 128, S, 3)
    np.testing.assert_allclose(f3, _wrapped_truth(np.asarray(k3), 128), rtol=0, atol=1e-14)
    assert psf.kernel_rfft("g", 128, S, supersample=3) is f3


def test_as_psf_model():
    psf = P.MoffatPSF({"r": 1.0}, 3.5)
    assert P.as_psf_model(psf, None) is psf
    with pytest.raises(TypeError) as e:
        P.as_psf_model(psf, 3.5)
    assert str(e.value) == "moffat_beta is given by the PSF object; pass one or the other"
    with pytest.raises(TypeError) as e:
        P.as_psf_model([1.0, 1.2], None)
    assert str(e.value) == "a FWHM list needs moffat_beta (or pass a PSFModel)"
    m = P.as_psf_model((1.3, 1.2, 1.1), 2.5)
    assert type(m) is P.MoffatPSF and m.bands == ("0", "1", "2") and m.beta == 2.5
    assert [m.fwhm_arcsec(b) for b in m.bands] == [1.3, 1.2, 1.1]


# --- lenstronomy kernels (the truth render's PSF) --------------------------------------------------

def test_lenstronomy_pixel_kernel_is_the_moffat_averaged_over_15x15_samples():
    k = P.lenstronomy_moffat_kernel(0.8, 3.5, 2, S)
    a = _alpha(0.8, 3.5)
    offs = [((i + 0.5) / 15 - 0.5) * S for i in range(15)]
    truth = np.array([[math.fsum(_moffat((ix * S + ox) ** 2 + (iy * S + oy) ** 2, a, 3.5)
                                 for oy in offs for ox in offs) for ix in range(-2, 3)] for iy in range(-2, 3)])
    np.testing.assert_allclose(k, truth / math.fsum(truth.ravel()), rtol=1e-12, atol=0)
    k3 = P.lenstronomy_moffat_kernel(0.8, 3.5, 1, S, subsample=3)
    offs = [((i + 0.5) / 3 - 0.5) * S for i in range(3)]
    truth = np.array([[math.fsum(_moffat((ix * S + ox) ** 2 + (iy * S + oy) ** 2, a, 3.5)
                                 for oy in offs for ox in offs) for ix in range(-1, 2)] for iy in range(-1, 2)])
    np.testing.assert_allclose(k3, truth / math.fsum(truth.ravel()), rtol=1e-12, atol=0)


@pytest.mark.parametrize("radius,sub", [(2, 3), (1, 4)])
def test_lenstronomy_subgrid_kernel_is_the_intrinsic_moffat_at_subpixel_centres(radius, sub):
    k = P.lenstronomy_moffat_subgrid_kernel(0.9, 3.5, radius, sub, S)
    r = sub * radius + sub // 2
    assert k.shape == (2 * r + 1, 2 * r + 1)
    a = _alpha(P.intrinsic_fwhm_arcsec(0.9, 3.5, S), 3.5)
    p = S / sub
    truth = np.array([[_moffat((x * p) ** 2 + (y * p) ** 2, a, 3.5) for x in range(-r, r + 1)]
                      for y in range(-r, r + 1)])
    np.testing.assert_allclose(k, truth / math.fsum(truth.ravel()), rtol=1e-12, atol=0)


def test_cached_lenstronomy_kernels_and_to_lenstronomy():
    psf = P.MoffatPSF({"r": 0.9049, "g": 1.1}, 3.5)
    radius = _radius_truth(0.9, 3.5, S)
    kl = P.cached_lenstronomy_kernel(0.9049, np.float32(3.5), S)
    assert kl.shape == (2 * radius + 1,) * 2
    np.testing.assert_allclose(kl, P.lenstronomy_moffat_kernel(0.9, 3.5, radius, S), rtol=1e-15, atol=0)
    _read_only(kl)
    assert P.cached_lenstronomy_kernel(0.9, 3.5, S) is kl
    kw, size = psf.to_lenstronomy("r", S, 4, subgrid_convolution=False)
    assert set(kw) == {"psf_type", "kernel_point_source"} and kw["psf_type"] == "PIXEL"
    assert size == 2 * radius + 1
    np.testing.assert_array_equal(kw["kernel_point_source"], kl)
    assert kw["kernel_point_source"] is not kl and kw["kernel_point_source"].flags.writeable
    kw, size = psf.to_lenstronomy("r", S, 4.0)
    assert set(kw) == {"psf_type", "kernel_point_source", "point_source_supersampling_factor"}
    assert kw["psf_type"] == "PIXEL" and kw["point_source_supersampling_factor"] == 4
    assert type(kw["point_source_supersampling_factor"]) is int
    assert size == 2 * radius + 1
    sub = P.lenstronomy_moffat_subgrid_kernel(0.9, 3.5, radius, 4, S)
    np.testing.assert_allclose(kw["kernel_point_source"], sub, rtol=1e-15, atol=0)
    assert kw["kernel_point_source"].flags.writeable
    again, _ = psf.to_lenstronomy("r", S, 4)
    assert again["kernel_point_source"] is not kw["kernel_point_source"]
    _read_only(P._cached_lenstronomy_subgrid_kernel(0.9, 3.5, S, 4))
    kw_default, _ = psf.to_lenstronomy("r", S, 4)
    assert "point_source_supersampling_factor" in kw_default
