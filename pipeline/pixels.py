"""Storage quantization of the pixel columns: what every writer stores, and its bound.

Float32 sky noise is incompressible (~3.7 bytes per pixel after zstd), so a lossless stamp costs
~66-72 KB (docs/benchmarks.md section 2). DR10's coadds are not lossless either: fpack stores
their images as (dithered) integers of a 1e-4 nmgy step (docs/physics.md; the synthetic survey
uses sigma/16). We round finer than that, and keep float32 (readers load the columns with
pyarrow and a reshape, nothing to decode):

* image: to the nearest multiple of IMAGE_STEP_NMGY = 2^-14 nmgy (6.1e-5 nmgy).
  |stored - rendered| <= 2^-15 nmgy = 3.05e-5 nmgy, for every pixel, exactly (the scaling by a
  power of two and the rounding happen in float32 without error). Against the coadds: DR10
  quantizes its images with an absolute step of 1e-4 nmgy (error up to 5e-5 nmgy, sigma/40 to
  sigma/200 for sky sigmas of 0.002-0.01 nmgy per pixel); our step is 1.6x finer than that, so
  the half-step is sigma/65 to sigma/330 (the synthetic survey: sigma 0.0023 g to 0.011 z per
  pixel, quantized at sigma/16). The variance it adds, step^2/12 = 3.1e-10 nmgy^2, is <= 8e-5 of
  the sky variance at sigma = 0.002 (sigma grows by <= 4e-5 of itself).
  Values >= 2^10 nmgy are already float32 multiples of a coarser power of two and come back
  unchanged. NaN/inf pass through (the gate rejects them).
* arc: to the nearest multiple of ARC_STEP_NMGY = 2^-18 nmgy (3.8e-6 nmgy, 16x finer than the
  image's), |stored - rendered| <= 2^-19 nmgy = 1.9e-6 nmgy per pixel. The arc has no noise to
  hide a coarse grid in: on the image's grid a faint arc lost its PSF wings (pixels below 3e-5
  nmgy became 0) and the stored r-band arc was 1.0% (median) to 7.2% (worst of 40 bench stamps)
  L1 away from lenstronomy's supersampling-8 render, against 0.05% / 0.27% before rounding;
  on this grid (docs/benchmarks.md section 1 gives the measured figures) it stays inside the
  1% target. The image grid is a multiple of the arc grid, so image - arc stays on the arc grid.
  Exact zeros stay zero (the arc beyond the PSF's reach).
* invvar: to INVVAR_MANTISSA_BITS = 10 significant mantissa bits, round to nearest even:
  |stored - original| <= 2^-11 |original| (relative; sigma changes by <= 2^-12 = 2.4e-4 of
  itself). 10 rather than 11 bits pays for the finer arc grid in the worst case measured (an
  invvar that varies pixel to pixel: 39.5 KB per stamp with 10 bits, 40.7 KB with 11). 0 stays 0 (masked pixels) and nothing positive becomes 0 (subnormals are left as
  they are), so bad-pixel masks are unchanged.
* maskbits: unchanged (integers, lossless).

`quantize_record` is applied where records are built (pipeline.injection.task), so every writer
(Spark step, in-process tests, benchmarks) stores the same values, and the row's pixel-derived
scalars (arc_flux_*, arc_snr, ...) are then computed from the stored pixels (so the gate can
recompute them from the row); `STORAGE_QUANTIZATION` is
written into every dataset's metadata.
"""

from __future__ import annotations

import numpy as np

#: Absolute grid of the image column, nmgy (a power of two: exact float32 scaling).
IMAGE_STEP_NMGY = 2.0 ** -14
#: Absolute grid of the arc column, nmgy (noise-free: finer, see the module docstring).
ARC_STEP_NMGY = 2.0 ** -18
#: Significant mantissa bits kept in invvar (float32 has 23 explicit bits).
INVVAR_MANTISSA_BITS = 10

_DROP_BITS = 23 - INVVAR_MANTISSA_BITS

#: What the dataset metadata records about the pixel columns (pipeline.dataset.build_metadata).
STORAGE_QUANTIZATION = {
    "version": 2,
    "image": {"method": "absolute grid", "step_nmgy": IMAGE_STEP_NMGY,
              "max_abs_error_nmgy": IMAGE_STEP_NMGY / 2,
              "note": "round to nearest multiple of step; DR10 fpack's own error is <= sigma/32"},
    "arc": {"method": "absolute grid", "step_nmgy": ARC_STEP_NMGY,
            "max_abs_error_nmgy": ARC_STEP_NMGY / 2,
            "note": "16x finer than image (noise-free); arc_flux_* and arc_snr are computed from the stored values"},
    "invvar": {"method": "relative", "mantissa_bits": INVVAR_MANTISSA_BITS,
               "max_rel_error": 2.0 ** -(INVVAR_MANTISSA_BITS + 1), "note": "0 stays 0"},
    "maskbits": {"method": "lossless"},
}


def _to_grid(values: np.ndarray, step: float) -> np.ndarray:
    a = np.asarray(values, dtype=np.float32)
    out = np.multiply(a, np.float32(1.0 / step), dtype=np.float32)
    np.rint(out, out=out)
    out *= np.float32(step)
    return out


def quantize_image(values: np.ndarray) -> np.ndarray:
    """float32 copy of `values` on the IMAGE_STEP_NMGY grid (|change| <= step/2)."""
    return _to_grid(values, IMAGE_STEP_NMGY)


def quantize_arc(values: np.ndarray) -> np.ndarray:
    """float32 copy of `values` on the ARC_STEP_NMGY grid (|change| <= step/2)."""
    return _to_grid(values, ARC_STEP_NMGY)


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
    if record.get("image") is not None:
        record["image"] = quantize_image(record["image"])
    if record.get("arc") is not None:
        record["arc"] = quantize_arc(record["arc"])
    if record.get("invvar") is not None:
        record["invvar"] = quantize_invvar(record["invvar"])
    return record
