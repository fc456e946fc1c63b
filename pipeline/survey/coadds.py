"""Read (and write) DR10 brick coadds: `legacysurvey-<brick>-<kind>[-<band>].fits.fz`.

This is the reader for the real DR10 files. Each file is a tile-compressed FITS image in HDU 1
(a `CompImageHDU` behind an empty primary HDU), with the brick's TAN WCS in its header. Files
are fetched whole through `pipeline.storage` (local paths, `s3://`, `s3a://`) and decoded from
memory, so no local copy is needed.

`load_brick` raises `InputError` naming the exact file for anything that makes the brick
unusable: a missing file (any band), a corrupt or truncated file (including a failed FITS
checksum when the file carries one), no 2-D image in HDU 1, arrays whose shapes disagree, an
image without a TAN WCS, files whose WCS disagree. It does **not** raise on NaN pixels or
negative/zero inverse variance: those are per-pixel conditions that make single cutouts bad,
and the injection records them on the row (`bad_pixel_frac`, `cutout_ok`).

Compression written by `write_brick` follows legacypipe's choices for DR10 (100x100 tiles):

| kind     | DR10 (legacypipe)            | here                                                      |
|----------|------------------------------|-----------------------------------------------------------|
| image    | RICE_1, qz -1e-4 (absolute)  | RICE_1, SUBTRACTIVE_DITHER_2, quantize_level q = 16       |
| invvar   | RICE_1, qz 16                | RICE_1, absolute step 2^-24 of the maximum, no dither     |
| maskbits | HCOMPRESS_1, lossless int16  | HCOMPRESS_1, lossless int16                               |
| psfsize  | GZIP_2, qz 0 (lossless)      | RICE_1, absolute step 1/1024", no dither (see below)      |

Image quantization bound: each tile stores integers (value / step) with step = sigma_tile / q,
sigma_tile the tile's noise estimated by CFITSIO's rule (MAD of pixel differences), so every
decoded pixel is within step / 2 = sigma_sky / 32 of the written float (rms step / sqrt(12) =
sigma / 55, adding 0.03% to the noise variance); the per-tile step is the file's ZSCALE column.
Pixels exactly 0 survive exactly (SUBTRACTIVE_DITHER_2). The dither sequence comes from a fixed
`dither_seed`, so the same arrays always give the same bytes. DR10's absolute 1e-4 nmgy step is
sigma/20 to sigma/100 at DR10 depths: q = 16 is of the same order.

psfsize: level-9 gzip of the maps took a third of the synthetic survey's run time; RICE on
integers of 1/1024" without dither is 3x faster and exact for maps on that grid (the synthetic
survey rounds its maps to it), within 0.0005" otherwise.

invvar: the synthetic invvar is constant per band except masked zeros, where DR10's q = 16
goes wrong: CFITSIO's noise estimate picks a coarse step on tiles holding a mask edge (measured:
1.7% error). Integers of 2^-24 of the maximum's power of two instead store every value within a
factor 2 of the maximum exactly (the synthetic maps: lossless) and any other to 6e-8 of the
maximum. No GZIP anywhere: Python's gzip stamps the time into each tile, and equal inputs must
give equal bytes.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from pipeline import storage
from pipeline.bands import BANDS
from pipeline.errors import InputError
from pipeline.survey.brick import BrickCoadds
from pipeline.units import NMGY_ZEROPOINT_AB

KINDS = ("image", "invvar", "maskbits", "psfsize")
PER_BAND_KINDS = ("image", "invvar", "psfsize")
#: Image quantization: step = tile noise sigma / IMAGE_QUANTIZE_LEVEL (see module docstring).
IMAGE_QUANTIZE_LEVEL = 16.0
#: psfsize maps are stored as integers of this step (arcsec): exact for maps rounded to it, as
#: the synthetic survey's are, and within half a step (0.0005") for any other map.
PSFSIZE_STEP_ARCSEC = 1.0 / 1024.0
#: Any value in 1..10000 makes the dither, hence the bytes, reproducible.
DEFAULT_DITHER_SEED = 2026
#: Warnings astropy gives for a damaged file instead of raising.
_DAMAGE_MARKERS = ("verification failed", "truncat", "Error validating header", "not a multiple")


def coadd_uri(cache_prefix: str, brickname: str, kind: str, band: str | None = None) -> str:
    """`<prefix>/<brick>/legacysurvey-<brick>-<kind>[-<band>].fits.fz` (kind: image, invvar,
    maskbits, psfsize; a band for every kind but maskbits)."""
    if kind not in KINDS:
        raise ValueError(f"unknown coadd kind {kind!r}; known: {', '.join(KINDS)}")
    if (band is None) == (kind in PER_BAND_KINDS):
        raise ValueError(f"coadd kind {kind!r} {'needs' if kind in PER_BAND_KINDS else 'takes no'} band")
    suffix = f"-{band}" if band else ""
    return storage.join(cache_prefix, brickname, f"legacysurvey-{brickname}-{kind}{suffix}.fits.fz")


def _tile_shape(shape_yx: tuple[int, int]) -> tuple[int, int]:
    """legacypipe's tile choice: 100x100, grown until no partial tile is narrower than 4 pixels."""
    tiles = []
    for n in shape_yx:
        t = 100
        while t <= n and 0 < n % t < 4:
            t += 1
        tiles.append(min(t, n))
    return tuple(tiles)


def _invvar_step(invvar: np.ndarray) -> float:
    """Quantization step for invvar: 2^-24 of the largest finite |value|'s power of two. Every
    float32 within a factor 2 of the maximum is then an exact multiple: lossless for them."""
    finite = np.abs(invvar[np.isfinite(invvar)])
    top = float(finite.max()) if finite.size else 0.0
    if top == 0.0:
        return 1.0
    return 2.0 ** (math.frexp(top)[1] - 24)


def encode_coadd(
    array: np.ndarray,
    header: fits.Header,
    kind: str,
    *,
    quantize_level: float = IMAGE_QUANTIZE_LEVEL,
    dither_seed: int = DEFAULT_DITHER_SEED,
) -> bytes:
    """One coadd as `.fits.fz` bytes: empty primary HDU + compressed image in HDU 1, with FITS
    checksums so a damaged copy is detected on read."""
    if kind not in KINDS:
        raise ValueError(f"unknown coadd kind {kind!r}")
    tiles = _tile_shape(array.shape)
    if kind == "image":
        hdu = fits.CompImageHDU(
            np.asarray(array, dtype=np.float32), header=header, compression_type="RICE_1",
            tile_shape=tiles, quantize_level=quantize_level, quantize_method=2, dither_seed=dither_seed,
        )
    elif kind == "maskbits":
        data = np.asarray(array)
        if data.min(initial=0) < np.iinfo(np.int16).min or data.max(initial=0) > np.iinfo(np.int16).max:
            raise ValueError("maskbits do not fit in int16")
        hdu = fits.CompImageHDU(data.astype(np.int16), header=header, compression_type="HCOMPRESS_1",
                                tile_shape=tiles, hcomp_scale=0)
    elif kind == "psfsize":
        # integers of PSFSIZE_STEP_ARCSEC without dither: exact for maps on that grid
        hdu = fits.CompImageHDU(np.asarray(array, dtype=np.float32), header=header, compression_type="RICE_1",
                                tile_shape=tiles, quantize_level=-PSFSIZE_STEP_ARCSEC, quantize_method=-1)
    else:  # invvar
        data = np.asarray(array, dtype=np.float32)
        hdu = fits.CompImageHDU(data, header=header, compression_type="RICE_1", tile_shape=tiles,
                                quantize_level=-_invvar_step(data), quantize_method=-1)
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    # Checksums go on the compressed table as stored. astropy's own `checksum=True` stamps the
    # time into the card comments; a fixed comment keeps equal inputs byte-identical.
    with fits.open(io.BytesIO(buf.getvalue()), disable_image_compression=True) as hdul:
        for stored in hdul:
            stored.add_checksum(when="HDU checksum")
        out = io.BytesIO()
        hdul.writeto(out)
    return out.getvalue()


def write_brick(
    cache_prefix: str,
    coadds: BrickCoadds,
    headers: dict[str, fits.Header] | None = None,
    *,
    quantize_level: float = IMAGE_QUANTIZE_LEVEL,
    dither_seed: int = DEFAULT_DITHER_SEED,
) -> dict[str, int]:
    """Write a brick's coadds under `cache_prefix` in the DR10 layout; returns {uri: bytes}.

    Every file gets the brick WCS (from `coadds.wcs`) plus `headers[kind]` cards if given."""
    wcs_header = coadds.wcs.to_header()
    # astropy writes PC + CDELT; DR10 writes CD. Keep the CD form so our files read like theirs.
    cd = coadds.wcs.wcs.cd if coadds.wcs.wcs.has_cd() else coadds.wcs.pixel_scale_matrix
    for key in ("PC1_1", "PC1_2", "PC2_1", "PC2_2", "CDELT1", "CDELT2"):
        wcs_header.remove(key, ignore_missing=True)
    for (i, j), value in np.ndenumerate(cd):
        wcs_header[f"CD{i + 1}_{j + 1}"] = float(value)
    written = {}
    files = [("maskbits", None, coadds.maskbits)]
    for band in coadds.bands:
        files += [("image", band, coadds.image[band]), ("invvar", band, coadds.invvar[band])]
        if band in coadds.psfsize:
            files.append(("psfsize", band, coadds.psfsize[band]))
    units = {"image": "nanomaggy", "invvar": "1/nanomaggy^2", "psfsize": "arcsec", "maskbits": ""}
    for kind, band, array in files:
        header = wcs_header.copy()
        header["BRICKNAM"] = coadds.brickname
        if band:
            header["BAND"] = band
        if units[kind]:
            header["BUNIT"] = units[kind]
        if kind == "image":
            header["MAGZERO"] = (NMGY_ZEROPOINT_AB, "AB mag of 1 nanomaggy")
        for card in (headers or {}).get(kind, fits.Header()).cards:
            header[card.keyword] = (card.value, card.comment)
        uri = coadd_uri(cache_prefix, coadds.brickname, kind, band)
        data = encode_coadd(array, header, kind, quantize_level=quantize_level, dither_seed=dither_seed)
        storage.write_bytes(uri, data)
        written[uri] = len(data)
    return written


def read_coadd(uri: str) -> tuple[np.ndarray, fits.Header]:
    """The 2-D array in HDU 1 of a coadd file and its header. InputError naming `uri` when the
    file is missing, unreadable, damaged, or holds no 2-D image in HDU 1."""
    raw = storage.read_bytes(uri)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(io.BytesIO(raw), memmap=False, checksum=True, lazy_load_hdus=False) as hdul:
                if len(hdul) < 2:
                    raise InputError(uri, f"no HDU 1: the file has {len(hdul)} HDU; DR10 coadds keep the "
                                          "compressed image in HDU 1")
                hdu = hdul[1]
                if not isinstance(hdu, (fits.CompImageHDU, fits.ImageHDU)):
                    raise InputError(uri, f"HDU 1 is a {type(hdu).__name__}, not a (compressed) image")
                data = hdu.data
                header = hdu.header.copy()
        except InputError:
            raise
        except Exception as exc:  # astropy raises many types for damaged files
            raise InputError(uri, f"corrupt or truncated FITS file ({type(exc).__name__}: {exc})") from None
    damage = [str(w.message).strip() for w in caught if any(m in str(w.message) for m in _DAMAGE_MARKERS)]
    if damage:
        raise InputError(uri, f"corrupt or truncated FITS file ({damage[0].splitlines()[0]})")
    if data is None:
        raise InputError(uri, "HDU 1 holds no data")
    if data.ndim != 2:
        raise InputError(uri, f"HDU 1 image is {data.ndim}-D with shape {data.shape}; a coadd is 2-D")
    if not np.issubdtype(data.dtype, np.number):
        raise InputError(uri, f"HDU 1 holds non-numeric data ({data.dtype})")
    return data, header


def _tan_wcs(header: fits.Header, uri: str, required: bool) -> WCS | None:
    ctypes = (str(header.get("CTYPE1", "")), str(header.get("CTYPE2", "")))
    if not any(ctypes):
        if required:
            raise InputError(uri, "no WCS in the HDU 1 header (CTYPE1/CTYPE2 missing)")
        return None
    if not (ctypes[0].startswith("RA--") and ctypes[0].endswith("TAN")
            and ctypes[1].startswith("DEC-") and ctypes[1].endswith("TAN")):
        raise InputError(uri, f"WCS is {ctypes[0]!r}/{ctypes[1]!r}; DR10 coadds use RA---TAN/DEC--TAN")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except Exception as exc:
            raise InputError(uri, f"unreadable WCS ({exc})") from None
    if not np.all(np.isfinite(wcs.pixel_scale_matrix)) or np.linalg.det(wcs.pixel_scale_matrix) == 0:
        raise InputError(uri, "WCS has a singular or missing CD matrix")
    return wcs


def _same_wcs(a: WCS, b: WCS) -> bool:
    return (np.allclose(a.wcs.crval, b.wcs.crval, rtol=0, atol=1e-9)
            and np.allclose(a.wcs.crpix, b.wcs.crpix, rtol=0, atol=1e-6)
            and np.allclose(a.pixel_scale_matrix, b.pixel_scale_matrix, rtol=1e-9, atol=0))


def load_brick(
    cache_prefix: str,
    brickname: str,
    bands=BANDS,
    with_psfsize: bool = True,
) -> BrickCoadds:
    """Read one brick's coadds (image, invvar per band; maskbits; psfsize per band when present).

    Returns float32 image/invvar/psfsize and int32 maskbits, [y, x] in FITS pixel order, and the
    TAN WCS of the first band's image. Works for any brick size (DR10: 3600 x 3600). See the
    module docstring for what raises InputError and what is deliberately left to the rows."""
    bands = tuple(bands)
    if not bands:
        raise InputError(f"{cache_prefix}/{brickname}", "no bands requested")
    sources: dict[str, str] = {}
    image: dict[str, np.ndarray] = {}
    invvar: dict[str, np.ndarray] = {}
    psfsize: dict[str, np.ndarray] = {}
    ref: dict = {}

    def take(kind: str, band: str | None, required: bool = True):
        uri = coadd_uri(cache_prefix, brickname, kind, band)
        if not required and not storage.exists(uri):
            return None
        data, header = read_coadd(uri)
        wcs = _tan_wcs(header, uri, required=(kind == "image"))
        if not ref:
            ref.update(uri=uri, shape=data.shape, wcs=wcs)
        elif data.shape != ref["shape"]:
            raise InputError(uri, f"shape {data.shape} disagrees with {ref['shape']} of {ref['uri']}")
        elif wcs is not None and not _same_wcs(wcs, ref["wcs"]):
            raise InputError(uri, f"WCS disagrees with the WCS of {ref['uri']}")
        key = f"{kind}-{band}" if band else kind
        sources[key] = uri
        return data

    for band in bands:
        image[band] = take("image", band).astype(np.float32, copy=False)
    for band in bands:
        invvar[band] = take("invvar", band).astype(np.float32, copy=False)
    maskbits = take("maskbits", None)
    if not np.issubdtype(maskbits.dtype, np.integer):
        raise InputError(sources["maskbits"], f"maskbits must be integers, got {maskbits.dtype}")
    maskbits = maskbits.astype(np.int32, copy=False)
    if with_psfsize:
        for band in bands:
            data = take("psfsize", band, required=False)
            if data is not None:
                psfsize[band] = data.astype(np.float32, copy=False)
    return BrickCoadds(brickname=brickname, wcs=ref["wcs"], image=image, invvar=invvar,
                       maskbits=maskbits, psfsize=psfsize, sources=sources)
