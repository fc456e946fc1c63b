"""Storage quantization of the pixel columns: what every writer stores, and its bound.

Float32 sky noise is incompressible (~3.7 bytes per pixel after zstd), so a lossless stamp costs
~66-72 KB (docs/benchmarks.md section 2). DR10's coadds are not lossless either: fpack stores
their images as (dithered) integers of a 1e-4 nmgy step (docs/physics.md; the synthetic survey
uses sigma/16). We round finer than that, and keep float32 (readers load the columns with
pyarrow and a reshape, nothing to decode):

* image and arc: to the nearest multiple of IMAGE_STEP_NMGY = 2^-14 nmgy (6.1e-5 nmgy).
  |stored - rendered| <= 2^-15 nmgy = 3.05e-5 nmgy, for every pixel, exactly (the scaling by a
  power of two and the rounding happen in float32 without error). Against the coadds: DR10
  quantizes its images with an absolute step of 1e-4 nmgy (error up to 5e-5 nmgy, sigma/40 to
  sigma/200 for sky sigmas of 0.002-0.01 nmgy per pixel); our step is 1.6x finer than that, so
  the half-step is sigma/65 to sigma/330 (the synthetic survey: sigma 0.0023 g to 0.011 z per
  pixel, quantized at sigma/16). The variance it adds, step^2/12 = 3.1e-10 nmgy^2, is <= 8e-5 of
  the sky variance at sigma = 0.002 (sigma grows by <= 4e-5 of itself). The same grid for image
  and arc keeps image - arc on the grid. Values >= 2^10 nmgy are already float32
  multiples of a coarser power of two and come back unchanged. Exact zeros stay zero (the arc
  beyond the PSF's reach), NaN/inf pass through (the gate rejects them).
* invvar: to INVVAR_MANTISSA_BITS = 11 significant mantissa bits, round to nearest even:
  |stored - original| <= 2^-12 |original| (relative; sigma changes by <= 2^-13 = 1.2e-4 of
  itself). 0 stays 0 (masked pixels) and nothing positive becomes 0 (subnormals are left as
  they are), so bad-pixel masks are unchanged.
* maskbits: unchanged (integers, lossless).

`quantize_record` is applied where records are built (pipeline.injection.task), so every writer
(Spark step, in-process tests, benchmarks) stores the same values, and the row's scalar metrics
(arc_flux_*, arc_snr, ...) are computed from the unrounded render; `STORAGE_QUANTIZATION` is
written into every dataset's metadata.
"""

from __future__ import annotations

import numpy as np

#: Absolute grid of the image and arc columns, nmgy (a power of two: exact float32 scaling).
IMAGE_STEP_NMGY = 2.0 ** -14
#: Significant mantissa bits kept in invvar (float32 has 23 explicit bits).
INVVAR_MANTISSA_BITS = 11

_DROP_BITS = 23 - INVVAR_MANTISSA_BITS
_SCALE = np.float32(1.0 / IMAGE_STEP_NMGY)
_STEP = np.float32(IMAGE_STEP_NMGY)

#: What the dataset metadata records about the pixel columns (pipeline.dataset.build_metadata).
STORAGE_QUANTIZATION = {
    "version": 1,
    "image": {"method": "absolute grid", "step_nmgy": IMAGE_STEP_NMGY,
              "max_abs_error_nmgy": IMAGE_STEP_NMGY / 2,
              "note": "round to nearest multiple of step; DR10 fpack's own error is <= sigma/32"},
    "arc": {"method": "absolute grid", "step_nmgy": IMAGE_STEP_NMGY,
            "max_abs_error_nmgy": IMAGE_STEP_NMGY / 2,
            "note": "same grid as image; arc_flux_* and arc_snr are computed before rounding"},
    "invvar": {"method": "relative", "mantissa_bits": INVVAR_MANTISSA_BITS,
               "max_rel_error": 2.0 ** -(INVVAR_MANTISSA_BITS + 1), "note": "0 stays 0"},
    "maskbits": {"method": "lossless"},
}


def quantize_image(values: np.ndarray) -> np.ndarray:
    """float32 copy of `values` on the IMAGE_STEP_NMGY grid (|change| <= step/2)."""
    a = np.asarray(values, dtype=np.float32)
    out = np.multiply(a, _SCALE, dtype=np.float32)
    np.rint(out, out=out)
    out *= _STEP
    return out


def quantize_invvar(values: np.ndarray) -> np.ndarray:
    """float32 copy of `values` rounded to INVVAR_MANTISSA_BITS significant bits (relative
    |change| <= 2^-(bits+1)); zeros, NaN and inf unchanged."""
    a = np.ascontiguousarray(values, dtype=np.float32)
    bits = a.view(np.uint32)
    half = np.uint32((1 << (_DROP_BITS - 1)) - 1)
    keep = np.uint32(~((1 << _DROP_BITS) - 1) & 0xFFFFFFFF)
    # round half to even on the kept mantissa; a carry into the exponent is the correct rounding
    rounded = ((bits + half + ((bits >> np.uint32(_DROP_BITS)) & np.uint32(1))) & keep).view(np.float32)
    # non-finite inputs, finite ones that would round up past float32's largest value, and
    # subnormals (which could round to 0 and turn a live pixel into a masked one) stay
    ok = np.isfinite(a) & np.isfinite(rounded) & (np.abs(a) >= np.finfo(np.float32).tiny)
    return np.where(ok, rounded, a)


def quantize_record(record: dict) -> dict:
    """Quantize a contract record's pixel columns in place (None stays None); returns it."""
    for name in ("image", "arc"):
        if record.get(name) is not None:
            record[name] = quantize_image(record[name])
    if record.get("invvar") is not None:
        record["invvar"] = quantize_invvar(record["invvar"])
    return record
