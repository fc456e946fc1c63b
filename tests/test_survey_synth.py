"""The synthetic DR10-format survey: geometry, photometry, noise, depth, masks, determinism, CLI.

Truth comes from outside the code under test: hand-written TAN projection, brute-force
real-space rendering, brute-force PSF noise-equivalent area, hand-computed magnitudes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from scipy.signal import fftconvolve
from scipy.special import gammainc, gamma

from dhs_cli.main import main as dhs
from pipeline.survey import maskbits as mb
from pipeline.survey import profiles
from pipeline.survey.bricks import brick_wcs, brickname_for, cutout_inside
from pipeline.survey.coadds import coadd_uri, load_brick
from pipeline.survey.lrg_table import read_lrg_table
from pipeline.survey.synth import SynthParams, brick_centers, count_regions, make_brick, synth_survey

PIX = 0.262
SMALL = dict(seed=11, n_bricks=2, brick_size_pix=256, lrgs_per_brick=30, edge_frac=0.1)


def nmgy(mag):
    return 10.0 ** ((22.5 - mag) / 2.5)


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    out = tmp_path_factory.mktemp("survey")
    summary = synth_survey(str(out), **SMALL, progress=lambda line: None)
    return out, summary, read_lrg_table(str(out / "lrg.parquet"))


# ---------------------------------------------------------------- brick names and WCS


@pytest.mark.parametrize("ra,dec,name", [
    (150.125, 2.25, "1501p022"),
    (150.1, 2.3, "1501p023"),        # 150.1 * 10 is 1500.9999... in floating point
    (0.05, -0.05, "0000m000"),
    (359.95, -12.34, "3599m123"),
    (10.0, 0.0, "0100p000"),
    (-0.05, 45.0, "3599p450"),       # RA wraps
])
def test_brickname(ra, dec, name):
    assert brickname_for(ra, dec) == name


def hand_tan_world_to_pix(ra, dec, hdr):
    """FITS TAN (gnomonic) projection, written out: pixel (0-based) of (ra, dec) in degrees."""
    a0, d0 = math.radians(hdr["CRVAL1"]), math.radians(hdr["CRVAL2"])
    a, d = np.radians(ra), np.radians(dec)
    cos_c = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.degrees(np.cos(d) * np.sin(a - a0) / cos_c)
    eta = np.degrees((math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(a - a0)) / cos_c)
    cd = np.array([[hdr["CD1_1"], hdr["CD1_2"]], [hdr["CD2_1"], hdr["CD2_2"]]])
    dx, dy = np.linalg.solve(cd, np.vstack([xi, eta]))
    return dx + hdr["CRPIX1"] - 1.0, dy + hdr["CRPIX2"] - 1.0


def test_brick_wcs_is_dr10_like():
    wcs = brick_wcs(150.125, 2.25, 3600)
    hdr = wcs.to_header()
    assert wcs.wcs.crpix.tolist() == [1800.5, 1800.5]
    assert wcs.pixel_scale_matrix[0, 0] == pytest.approx(-0.262 / 3600, rel=1e-12)
    assert wcs.pixel_scale_matrix[1, 1] == pytest.approx(0.262 / 3600, rel=1e-12)
    # +x is towards decreasing RA, +y towards increasing Dec
    ra0, dec0 = wcs.all_pix2world(1799.5, 1799.5, 0)
    ra1, _ = wcs.all_pix2world(1800.5, 1799.5, 0)
    _, dec1 = wcs.all_pix2world(1799.5, 1800.5, 0)
    assert ra1 < ra0 and dec1 > dec0
    assert float(ra0) == pytest.approx(150.125, abs=1e-12) and float(dec0) == pytest.approx(2.25, abs=1e-12)
    assert "RA---TAN" in hdr["CTYPE1"]


def test_lrgs_land_on_their_pixels(survey):
    out, _, lrgs = survey
    checked = 0
    for brickname, rows in lrgs.groupby("brickname"):
        with fits.open(coadd_uri(str(out / "coadd"), brickname, "image", "r")) as hdul:
            hdr = hdul[1].header
            image = hdul[1].data.astype(float)
        x_hand, y_hand = hand_tan_world_to_pix(rows["ra"].to_numpy(), rows["dec"].to_numpy(), hdr)
        assert np.allclose(x_hand, rows["bx"], atol=1e-6) and np.allclose(y_hand, rows["by"], atol=1e-6)
        wcs = load_brick(str(out / "coadd"), brickname).wcs
        x_ap, y_ap = wcs.all_world2pix(rows["ra"], rows["dec"], 0)
        assert np.allclose(x_ap, x_hand, atol=1e-6) and np.allclose(y_ap, y_hand, atol=1e-6)
        # bright, isolated, unmasked LRGs: the light peaks on the pixel the WCS names
        pos = rows[["bx", "by"]].to_numpy()
        for (_, row), (x, y) in zip(rows.iterrows(), zip(x_hand, y_hand)):
            d = np.hypot(*(pos - [x, y]).T)
            if row.mag_r > 20 or np.sort(d)[1] < 12 or row.maskbits or not row.cutout_inside:
                continue
            xc, yc = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
            win = image[yc - 3:yc + 4, xc - 3:xc + 4]
            smooth = fftconvolve(win, np.ones((3, 3)), mode="valid")  # 5x5, centre at [2, 2]
            py, px = np.unravel_index(np.argmax(smooth), smooth.shape)
            assert abs(px - 2) <= 1 and abs(py - 2) <= 1
            checked += 1
    assert checked >= 4


# ---------------------------------------------------------------- photometry and rendering


def test_dev_normalisation_against_incomplete_gamma():
    # untruncated Sersic n=4: total = I_e re^2 2 pi n e^b Gamma(2n) / b^(2n); the truncated profile
    # lies between the light inside 7 re and inside 8 re of it
    b = profiles.DEV_B
    full = 2 * math.pi * 4 * math.exp(b) * gamma(8) / b ** 8
    inside = lambda x: full * gammainc(8, b * x ** 0.25)  # noqa: E731
    assert inside(7) < profiles.dev_total_integral() < inside(8)
    assert gammainc(8, b) == pytest.approx(0.5, abs=1e-4)  # b is the half-light constant


def brute_force_render(n, x0, y0, flux, fwhm_pix, beta, re_pix, q, pa, s=15):
    """Real space: supersampled de Vaucouleurs x supersampled Moffat, binned into pixels."""
    coords = (np.arange(n * s) + 0.5) / s - 0.5
    xx, yy = np.meshgrid(coords, coords)
    u = (xx - x0) * math.cos(pa) + (yy - y0) * math.sin(pa)
    v = -(xx - x0) * math.sin(pa) + (yy - y0) * math.cos(pa)
    x = np.hypot(u / re_pix, v / (q * re_pix))
    gal = np.exp(-7.669249 * (x ** 0.25 - 1)) * np.clip(np.where(x < 7, 1, (1 - (x - 7) ** 2) ** 2), 0, 1) * (x < 8)
    gal *= flux / gal.sum()
    alpha = fwhm_pix / (2 * math.sqrt(2 ** (1 / beta) - 1))
    k = (np.arange(-n * s // 2, n * s // 2 + 1)) / s
    kx, ky = np.meshgrid(k, k)
    moffat = (1 + (kx ** 2 + ky ** 2) / alpha ** 2) ** -beta
    conv = fftconvolve(gal, moffat / moffat.sum(), mode="same")
    return conv.reshape(n, s, n, s).sum(axis=(1, 3))


@pytest.mark.parametrize("re_arcsec,q,pa,fwhm_arcsec,s", [(0.5, 0.6, 0.4, 0.8, 15), (0.9, 0.9, 2.0, 1.7, 9)])
def test_render_matches_brute_force(re_arcsec, q, pa, fwhm_arcsec, s):
    # the stamp size the survey uses must hold the galaxy without visible wrap-around
    n = profiles.stamp_size_for(re_arcsec / PIX, fwhm_arcsec / PIX)
    c = n // 2
    ours = profiles.render(n, c + 0.3, c - 0.2, [50.0], [fwhm_arcsec / PIX], 3.5, re_arcsec / PIX, q, pa)[0]
    truth = brute_force_render(n, c + 0.3, c - 0.2, 50.0, fwhm_arcsec / PIX, 3.5, re_arcsec / PIX, q, pa, s=s)
    assert np.abs(ours - truth).max() < 0.01 * truth.max()
    assert ours.sum() == pytest.approx(50.0, rel=1e-9)


def test_rendered_lrg_flux_and_centre_in_the_brick():
    """Noise-free brick without stars: the light around each isolated LRG is its magnitude's flux,
    and its centroid is the pixel its (ra, dec) projects to (pixel integration keeps first moments)."""
    params = SynthParams(seed=5, n_bricks=1, brick_size_pix=512, lrgs_per_brick=6, stars_per_brick=(0, 0))
    brick = make_brick(params, 0, brick_centers(params)[0], noise=False)
    lrgs = brick.lrgs
    w = brick.coadds.wcs.wcs
    cd = brick.coadds.wcs.pixel_scale_matrix
    cards = {"CRVAL1": w.crval[0], "CRVAL2": w.crval[1], "CRPIX1": w.crpix[0], "CRPIX2": w.crpix[1],
             "CD1_1": cd[0, 0], "CD1_2": cd[0, 1], "CD2_1": cd[1, 0], "CD2_2": cd[1, 1]}
    half = [profiles.DEV_TRUNC_END_X * r / PIX + 4 * max(lrgs.loc[i, f"psfsize_{b}"] for b in "grz") / PIX + 2
            for i, r in enumerate(lrgs["shape_r_arcsec"])]
    checked = 0
    for i, row in lrgs.iterrows():
        others = [j for j in range(len(lrgs)) if j != i]
        if any(max(abs(row.bx - lrgs.bx[j]), abs(row.by - lrgs.by[j])) < half[i] + half[j] for j in others):
            continue
        x0, x1 = int(row.bx - half[i]), int(row.bx + half[i]) + 1
        y0, y1 = int(row.by - half[i]), int(row.by + half[i]) + 1
        if x0 < 0 or y0 < 0 or x1 > 512 or y1 > 512:
            continue
        x_wcs, y_wcs = hand_tan_world_to_pix(row.ra, row.dec, cards)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        for band in "grz":
            stamp = brick.coadds.image[band][y0:y1, x0:x1].astype(float)
            total = stamp.sum()
            assert total == pytest.approx(nmgy(row[f"mag_{band}"]), rel=0.01)
            assert (stamp * xx).sum() / total == pytest.approx(float(x_wcs), abs=0.02)
            assert (stamp * yy).sum() / total == pytest.approx(float(y_wcs), abs=0.02)
        checked += 1
    assert checked >= 1


def test_lrg_population_ranges(survey):
    _, _, lrgs = survey
    assert lrgs["mag_r"].between(18, 20.4).all()
    eps = 1e-9  # colours are clipped to the range, then added to mag_r
    assert (lrgs["mag_g"] - lrgs["mag_r"]).between(1.3 - eps, 1.9 + eps).all()
    assert (lrgs["mag_r"] - lrgs["mag_z"]).between(0.7 - eps, 1.1 + eps).all()
    assert lrgs["shape_r_arcsec"].between(0.5, 2.5).all()
    for band, (lo, hi) in {"g": (1.2, 2.0), "r": (0.9, 1.7), "z": (0.8, 1.6)}.items():
        assert lrgs[f"psfsize_{band}"].between(lo, hi).all()
    assert lrgs["psfdepth_r"].between(23.5, 24.5).all()
    assert (lrgs["psfdepth_g"] - lrgs["psfdepth_r"]).between(0.1, 0.7).all()
    assert (lrgs["psfdepth_r"] - lrgs["psfdepth_z"]).between(0.7, 1.3).all()
    assert lrgs["lrg_id"].is_unique


# ---------------------------------------------------------------- noise, depth, masks


def test_noise_matches_invvar():
    params = SynthParams(seed=8, n_bricks=1, brick_size_pix=384, lrgs_per_brick=4)
    brick = make_brick(params, 0, brick_centers(params)[0])
    yy, xx = np.mgrid[0:384, 0:384]
    free = np.ones((384, 384), bool)
    for _, row in brick.lrgs.iterrows():
        free &= np.hypot(xx - row.bx, yy - row.by) > 8 * row.shape_r_arcsec / PIX + 15
    for star in brick.info["stars"]:
        free &= np.hypot(xx - star["x_pix"], yy - star["y_pix"]) > max(star["mask_radius_arcsec"] / PIX, 80)
    assert free.sum() > 40_000
    for band in "grz":
        iv = brick.coadds.invvar[band]
        assert np.all(iv[free] == iv[free][0])
        sigma = 1 / math.sqrt(iv[free][0])
        assert np.std(brick.coadds.image[band][free]) == pytest.approx(sigma, rel=0.02)
        assert abs(np.mean(brick.coadds.image[band][free])) < 3 * sigma / math.sqrt(free.sum())


def brute_force_nea(fwhm_arcsec, beta=3.5, s=9, half=40):
    """1 / sum(p^2) for the Moffat integrated over pixels, centred on a pixel, by supersampling."""
    alpha = fwhm_arcsec / PIX / (2 * math.sqrt(2 ** (1 / beta) - 1))
    c = (np.arange((2 * half + 1) * s) + 0.5) / s - (half + 0.5)
    xx, yy = np.meshgrid(c, c)
    f = (beta - 1) / (math.pi * alpha ** 2) * (1 + (xx ** 2 + yy ** 2) / alpha ** 2) ** -beta / s ** 2
    p = f.reshape(2 * half + 1, s, 2 * half + 1, s).sum(axis=(1, 3))
    return 1 / np.sum(p ** 2)


def test_psfdepth_matches_formula(survey):
    out, _, lrgs = survey
    cache = {}
    for brickname, rows in lrgs.groupby("brickname"):
        coadds = load_brick(str(out / "coadd"), brickname)
        for _, row in rows.head(12).iterrows():
            xc, yc = int(np.floor(row.bx + 0.5)), int(np.floor(row.by + 0.5))
            iv = float(coadds.invvar["r"][yc, xc])
            fwhm = float(coadds.psfsize["r"][yc, xc])
            assert row.psfsize_r == fwhm
            nea = cache.setdefault(fwhm, brute_force_nea(fwhm))
            depth = 22.5 - 2.5 * math.log10(5 * math.sqrt(nea / iv))
            assert row.psfdepth_r == pytest.approx(depth, abs=0.003)


def test_masks_follow_dr10_meanings(survey):
    out, _, _ = survey
    info = json.loads((out / "survey.json").read_text())
    saw_satur = False
    for b in info["bricks"]:
        coadds = load_brick(str(out / "coadd"), b["brickname"])
        bits = coadds.maskbits
        for band in "grz":
            dead = (bits & (mb.SATUR[band] | mb.ALLMASK[band])) != 0
            assert np.all(coadds.invvar[band][dead] == 0) and np.all(coadds.invvar[band][~dead] > 0)
            saw_satur |= bool(dead.any())
            # ALLMASK lies inside SATUR (every exposure masked -> saturated core)
            assert np.all(bits[(bits & mb.ALLMASK[band]) != 0] & mb.SATUR[band])
        yy, xx = np.mgrid[0:bits.shape[0], 0:bits.shape[1]]
        for star in b["stars"]:
            r_pix = 1630 * 1.396 ** (-star["mag_r"]) / PIX
            inside = np.hypot(xx - star["x_pix"], yy - star["y_pix"]) < r_pix - 1
            assert np.all(bits[inside] & mb.MEDIUM)
            if star["mag_r"] < 13:
                assert np.all(bits[inside] & mb.BRIGHT)
        assert not np.any(bits & mb.NPRIMARY)
    assert saw_satur


def test_edge_lrgs_leave_the_brick(survey):
    _, summary, lrgs = survey
    n = SMALL["brick_size_pix"]
    x0 = np.floor(lrgs["bx"] + 0.5).astype(int) - 32
    y0 = np.floor(lrgs["by"] + 0.5).astype(int) - 32
    fits_inside = (x0 >= 0) & (y0 >= 0) & (x0 + 64 <= n) & (y0 + 64 <= n)
    assert np.array_equal(fits_inside.to_numpy(), lrgs["cutout_inside"].to_numpy())
    assert np.array_equal(cutout_inside(lrgs["bx"], lrgs["by"], (n, n)), fits_inside.to_numpy())
    n_edge = (~fits_inside).sum()
    assert n_edge == SMALL["n_bricks"] * round(SMALL["edge_frac"] * SMALL["lrgs_per_brick"])
    # no LRG sits on the rounding boundary: inside ones have a pixel to spare
    inside = lrgs[fits_inside.to_numpy()]
    margin = np.minimum.reduce([inside.bx, inside.by, n - 1 - inside.bx, n - 1 - inside.by])
    assert margin.min() >= 32.5
    assert summary["n_lrg_cutout_inside"] == int(fits_inside.sum())


def test_count_regions_by_hand():
    # cells of 0.1 deg on (ra cos dec, dec): at dec 60, 0.2 deg of RA is 0.1 deg on the sky
    assert count_regions([10.01, 10.19, 10.21], [60.01, 60.02, 60.03]) == 2
    assert count_regions([10.01, 10.01], [0.01, 0.11]) == 2


# ---------------------------------------------------------------- files, determinism, CLI


def test_files_and_summary(survey):
    out, summary, lrgs = survey
    info = json.loads((out / "survey.json").read_text())
    assert summary["n_lrg"] == len(lrgs) == info["totals"]["n_lrg"]
    assert info["seed"] == SMALL["seed"] and info["parameters"]["brick_size_pix"] == 256
    for b in info["bricks"]:
        for name, size in b["files"].items():
            assert (out / "coadd" / b["brickname"] / name).stat().st_size == size
        assert len(b["files"]) == 10
    on_disk = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    assert summary["bytes"] == on_disk


def test_files_hold_the_brick_made_in_memory(survey):
    out, _, lrgs = survey
    params = SynthParams(**SMALL)
    brick = make_brick(params, 1, brick_centers(params)[1])
    got = load_brick(str(out / "coadd"), brick.coadds.brickname)
    assert np.array_equal(got.maskbits, brick.coadds.maskbits)
    for band in "grz":
        assert np.array_equal(got.invvar[band], brick.coadds.invvar[band])
        assert np.array_equal(got.psfsize[band], brick.coadds.psfsize[band])
        sigma = 1 / math.sqrt(brick.coadds.invvar[band].max())
        # quantization: within half a step = sigma / 32 (plus the noise estimate's scatter)
        assert np.abs(got.image[band] - brick.coadds.image[band]).max() < sigma / 32 * 1.3
    pd.testing.assert_frame_equal(lrgs[lrgs.brickname == brick.coadds.brickname].reset_index(drop=True),
                                  brick.lrgs.reset_index(drop=True))


def test_determinism(tmp_path):
    # the same files whether the bricks are made in one process or in a pool of two
    kw = dict(n_bricks=2, brick_size_pix=128, lrgs_per_brick=5, progress=lambda line: None)
    synth_survey(str(tmp_path / "a"), seed=3, workers=1, **kw)
    synth_survey(str(tmp_path / "b"), seed=3, workers=2, **kw)
    synth_survey(str(tmp_path / "c"), seed=4, **kw)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 22
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    ta, tc = (read_lrg_table(str(tmp_path / d / "lrg.parquet")) for d in "ac")
    assert not ta[["ra", "dec", "mag_r"]].equals(tc[["ra", "dec", "mag_r"]])
    name_c = tc["brickname"][0]
    a = load_brick(str(tmp_path / "c" / "coadd"), name_c).image["r"]
    b = load_brick(str(tmp_path / "a" / "coadd"), ta["brickname"][0]).image["r"]
    assert not np.array_equal(a, b)


def test_cli_synth_and_info(tmp_path, capsys):
    out = tmp_path / "s"
    assert dhs(["survey", "synth", "--out", str(out), "--n-bricks", "1", "--brick-size", "128",
                "--lrgs-per-brick", "5", "--seed", "2"]) == 0
    text = capsys.readouterr().out
    assert "brick 1/1" in text and "LRGs:" in text and str(out / "coadd") in text and "lrg.parquet" in text
    assert dhs(["survey", "info", str(out)]) == 0
    assert "LRGs: 5" in capsys.readouterr().out
    assert dhs(["survey", "info", str(tmp_path / "nothing")]) == 2
    assert "survey.json" in capsys.readouterr().err
    assert dhs(["survey", "synth", "--out", str(out), "--brick-size", "64"]) == 2
    assert "brick_size" in capsys.readouterr().err
