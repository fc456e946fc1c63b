"""The DR10 coadd reader: layout, round trip, quantization bound, bad files, S3."""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.errors import InputError
from pipeline.survey import maskbits as mb
from pipeline.survey.brick import BrickCoadds
from pipeline.survey.bricks import brick_header, brick_wcs
from pipeline.survey.coadds import IMAGE_QUANTIZE_LEVEL, coadd_uri, encode_coadd, load_brick, write_brick

BRICK = "1501p022"
SIGMA = {"g": 0.004, "r": 0.006, "z": 0.015}


def make_coadds(ny=96, nx=128, seed=3) -> BrickCoadds:
    """A small, non-square brick with noise, one bright source, masked pixels and a psf map."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx]
    source = 2.0 * np.exp(-((xx - 60.3) ** 2 + (yy - 40.7) ** 2) / (2 * 2.5 ** 2))
    image, invvar, psfsize = {}, {}, {}
    maskbits = np.zeros((ny, nx), np.int32)
    maskbits[10:20, 30:50] |= mb.MEDIUM | mb.BRIGHT
    maskbits[14:16, 39:41] |= mb.SATUR_R | mb.ALLMASK_R
    for band, sigma in SIGMA.items():
        image[band] = (source + sigma * rng.standard_normal((ny, nx))).astype(np.float32)
        iv = np.full((ny, nx), 1 / sigma ** 2, np.float32)
        iv[maskbits & mb.SATUR[band] != 0] = 0
        image[band][iv == 0] = 0.0
        invvar[band] = iv
        psfsize[band] = np.round((1.3 + 0.001 * xx + 0.0005 * yy) * 1024).astype(np.float32) / 1024
    return BrickCoadds(BRICK, brick_wcs(150.125, 2.25, nx, ny), image, invvar, maskbits, psfsize)


@pytest.fixture(scope="module")
def written_brick(tmp_path_factory):
    root = tmp_path_factory.mktemp("brick") / "coadd"
    coadds = make_coadds()
    write_brick(str(root), coadds)
    return root, coadds


@pytest.fixture()
def brick_dir(tmp_path, written_brick):
    """A private copy of the written brick: tests damage their files."""
    root, coadds = written_brick
    shutil.copytree(root, tmp_path / "coadd")
    return tmp_path / "coadd", coadds


def _file(prefix, kind, band=None) -> Path:
    return Path(coadd_uri(str(prefix), BRICK, kind, band))


def _zscale_per_row(path: Path) -> np.ndarray:
    """Quantization step of every pixel, from the file's per-tile ZSCALE column."""
    with fits.open(path, disable_image_compression=True) as hdul:
        hdr, table = hdul[1].header, hdul[1].data
        ny, nx = hdr["ZNAXIS2"], hdr["ZNAXIS1"]
        ty, tx = hdr["ZTILE2"], hdr["ZTILE1"]
        zscale = np.asarray(table["ZSCALE"], dtype=float)
    ntx = -(-nx // tx)
    step = np.empty((ny, nx))
    for t, s in enumerate(zscale):
        r, c = divmod(t, ntx)
        step[r * ty:(r + 1) * ty, c * tx:(c + 1) * tx] = s
    return step


def test_coadd_uri_layout():
    assert coadd_uri("/data/coadd", "1501p022", "image", "r") == "/data/coadd/1501p022/legacysurvey-1501p022-image-r.fits.fz"
    assert coadd_uri("s3://b/dr10/coadd_cache/", "0001m005", "maskbits") == \
        "s3://b/dr10/coadd_cache/0001m005/legacysurvey-0001m005-maskbits.fits.fz"
    assert coadd_uri("s3a://b/c", "0001m005", "psfsize", "z") == "s3a://b/c/0001m005/legacysurvey-0001m005-psfsize-z.fits.fz"
    with pytest.raises(ValueError):
        coadd_uri("/x", BRICK, "image")  # per-band kind without a band
    with pytest.raises(ValueError):
        coadd_uri("/x", BRICK, "model", "r")


def test_round_trip_exact_and_within_quantization_bound(brick_dir):
    prefix, truth = brick_dir
    got = load_brick(str(prefix), BRICK)
    assert got.shape == (96, 128) and got.bands == ("g", "r", "z")
    assert got.maskbits.dtype == np.int32 and np.array_equal(got.maskbits, truth.maskbits)
    for band in "grz":
        assert got.image[band].dtype == np.float32 and got.invvar[band].dtype == np.float32
        assert np.array_equal(got.invvar[band], truth.invvar[band])
        assert np.array_equal(got.psfsize[band], truth.psfsize[band])
        err = np.abs(got.image[band].astype(float) - truth.image[band])
        step = _zscale_per_row(_file(prefix, "image", band))
        # documented bound: |error| <= step / 2, step = tile noise / q (float32 rounding on top)
        assert np.all(err <= 0.5 * step + 1e-6 * np.abs(truth.image[band]) + 1e-9)
        # the step is sigma / q: within 15% of the true sky sigma / 16 on source-free tiles
        assert np.median(step) == pytest.approx(SIGMA[band] / IMAGE_QUANTIZE_LEVEL, rel=0.15)
        # exact zeros (masked pixels) survive SUBTRACTIVE_DITHER_2
        assert np.all(got.image[band][truth.image[band] == 0] == 0)
    # the WCS is the one written, and -x is east as in DR10
    assert np.allclose(got.wcs.wcs.crval, [150.125, 2.25])
    assert np.allclose(got.wcs.wcs.crpix, [64.5, 48.5])
    assert got.wcs.pixel_scale_matrix[0, 0] == pytest.approx(-0.262 / 3600)
    assert got.sources["image-z"].endswith(f"legacysurvey-{BRICK}-image-z.fits.fz")


def test_same_input_same_bytes():
    coadds = make_coadds()
    hdr = brick_header(150.125, 2.25, 128, 96)
    arrays = {"image": coadds.image["r"], "invvar": coadds.invvar["r"], "psfsize": coadds.psfsize["r"],
              "maskbits": coadds.maskbits}
    first = {kind: encode_coadd(a, hdr, kind) for kind, a in arrays.items()}
    time.sleep(1.1)  # anything stamping the time (checksum comments, gzip headers) would show
    for kind, a in arrays.items():
        assert encode_coadd(a.copy(), hdr, kind) == first[kind], kind
    assert encode_coadd(coadds.image["r"], hdr, "image", dither_seed=7) != first["image"]


def test_psfsize_is_optional(brick_dir):
    prefix, _ = brick_dir
    _file(prefix, "psfsize", "z").unlink()
    got = load_brick(str(prefix), BRICK)
    assert set(got.psfsize) == {"g", "r"}
    assert load_brick(str(prefix), BRICK, with_psfsize=False).psfsize == {}


def test_nan_pixels_and_negative_invvar_do_not_raise(tmp_path):
    coadds = make_coadds()
    coadds.image["r"][5, 5] = np.nan
    coadds.invvar["g"][6, 6] = -1.0
    write_brick(str(tmp_path), coadds)
    got = load_brick(str(tmp_path), BRICK)
    assert np.isnan(got.image["r"][5, 5])
    assert got.invvar["g"][6, 6] == -1.0


@pytest.mark.parametrize("kind,band", [("image", "z"), ("invvar", "g"), ("maskbits", None)])
def test_missing_file_names_it(brick_dir, kind, band):
    prefix, _ = brick_dir
    path = _file(prefix, kind, band)
    path.unlink()
    with pytest.raises(InputError) as exc:
        load_brick(str(prefix), BRICK)
    assert path.name in str(exc.value)


def test_missing_brick_and_unknown_band(brick_dir):
    prefix, _ = brick_dir
    with pytest.raises(InputError, match="legacysurvey-0000p000-image-g.fits.fz"):
        load_brick(str(prefix), "0000p000")
    with pytest.raises(InputError, match=f"legacysurvey-{BRICK}-image-i.fits.fz"):
        load_brick(str(prefix), BRICK, bands=("g", "i"))


@pytest.mark.parametrize("damage", ["truncate_half", "truncate_tail", "flip_byte", "garbage", "empty"])
def test_corrupt_or_truncated_file(brick_dir, damage):
    prefix, _ = brick_dir
    path = _file(prefix, "image", "r")
    raw = bytearray(path.read_bytes())
    if damage == "truncate_half":
        raw = raw[: len(raw) // 2]
    elif damage == "truncate_tail":
        raw = raw[:-100]
    elif damage == "flip_byte":
        raw[len(raw) - 3000] ^= 0xFF  # inside the compressed heap: only the checksum notices
    elif damage == "garbage":
        raw = bytearray(b"not a fits file" * 200)
    else:
        raw = bytearray()
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError) as exc:
        load_brick(str(prefix), BRICK)
    assert path.name in str(exc.value)


def _write_hdul(path: Path, hdul: fits.HDUList):
    buf = io.BytesIO()
    hdul.writeto(buf)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("layout", ["primary_only", "empty_hdu1", "table_hdu1", "cube"])
def test_wrong_hdu_content(brick_dir, layout):
    prefix, coadds = brick_dir
    path = _file(prefix, "invvar", "r")
    hdr = brick_header(150.125, 2.25, 128, 96)
    if layout == "primary_only":
        hdul = fits.HDUList([fits.PrimaryHDU(coadds.invvar["r"], header=hdr)])
    elif layout == "empty_hdu1":
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(header=hdr)])
    elif layout == "table_hdu1":
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
            [fits.Column(name="x", format="E", array=np.zeros(3))])])
    else:
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(np.zeros((2, 96, 128), np.float32))])
    _write_hdul(path, hdul)
    with pytest.raises(InputError) as exc:
        load_brick(str(prefix), BRICK)
    assert path.name in str(exc.value)
    assert "HDU 1" in str(exc.value)


def test_shape_mismatch_names_the_odd_file(brick_dir):
    prefix, coadds = brick_dir
    path = _file(prefix, "invvar", "z")
    small = BrickCoadds(BRICK, brick_wcs(150.125, 2.25, 128, 95), {}, {"z": coadds.invvar["z"][:95]},
                        coadds.maskbits[:95])
    path.write_bytes(encode_coadd(small.invvar["z"], brick_header(150.125, 2.25, 128, 95), "invvar"))
    with pytest.raises(InputError) as exc:
        load_brick(str(prefix), BRICK)
    assert path.name in str(exc.value) and "(95, 128)" in str(exc.value)


@pytest.mark.parametrize("problem", ["no_wcs", "sin", "other_center"])
def test_wcs_problems(brick_dir, problem):
    prefix, coadds = brick_dir
    band = "g" if problem != "other_center" else "r"
    path = _file(prefix, "image", band)
    if problem == "no_wcs":
        hdr = fits.Header()
    elif problem == "sin":
        hdr = brick_header(150.125, 2.25, 128, 96)
        hdr["CTYPE1"], hdr["CTYPE2"] = "RA---SIN", "DEC--SIN"
    else:
        hdr = brick_header(150.5, 2.25, 128, 96)
    path.write_bytes(encode_coadd(coadds.image[band], hdr, "image"))
    with pytest.raises(InputError) as exc:
        load_brick(str(prefix), BRICK)
    assert path.name in str(exc.value) and "WCS" in str(exc.value)


def test_reads_real_size_brick_header_without_assuming_size(tmp_path):
    # a DR10-sized WCS on a tiny array is fine: the reader takes the shape from the data
    coadds = make_coadds(ny=40, nx=36)
    coadds.wcs = brick_wcs(10.0, -5.0, 36, 40)
    write_brick(str(tmp_path), coadds)
    assert load_brick(str(tmp_path), BRICK).shape == (40, 36)


@pytest.fixture()
def s3_bucket(monkeypatch):
    moto = pytest.importorskip("moto")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with moto.mock_aws():
        import boto3

        boto3.client("s3", region_name="us-east-2").create_bucket(
            Bucket="dhs-test", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
        yield "dhs-test"


@pytest.mark.parametrize("scheme", ["s3", "s3a"])
def test_load_brick_from_s3(tmp_path, s3_bucket, scheme):
    import boto3

    truth = make_coadds()
    local = tmp_path / "coadd"
    write_brick(str(local), truth)
    client = boto3.client("s3")
    for path in sorted((local / BRICK).iterdir()):
        if path.name.endswith("psfsize-z.fits.fz"):
            continue  # optional file absent on S3 too
        client.put_object(Bucket=s3_bucket, Key=f"dr10/coadd_cache/{BRICK}/{path.name}", Body=path.read_bytes())
    prefix = f"{scheme}://{s3_bucket}/dr10/coadd_cache"
    got = load_brick(prefix, BRICK)
    assert np.array_equal(got.maskbits, truth.maskbits)
    assert np.array_equal(got.invvar["r"], truth.invvar["r"])
    assert set(got.psfsize) == {"g", "r"}
    assert got.sources["image-g"].startswith(f"{scheme}://")
    client.delete_object(Bucket=s3_bucket, Key=f"dr10/coadd_cache/{BRICK}/legacysurvey-{BRICK}-image-r.fits.fz")
    with pytest.raises(InputError, match=f"legacysurvey-{BRICK}-image-r.fits.fz"):
        load_brick(prefix, BRICK)
