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
* arc: per band, to the nearest multiple of step_b = min(ARC_STEP_NMGY, 2^(e_b - 1 - ARC_REL_BITS)),
  ARC_STEP_NMGY = 2^-14 nmgy (the image's grid), ARC_REL_BITS = 11, e_b the binary exponent of the
  band's largest |value| (peak = f 2^e_b, 0.5 <= f < 1): a grid relative to the arc's own peak,
  |stored - rendered| <= 2^-12 x peak (and <= 2^-15 nmgy for the brightest arcs, peak >= 0.5 nmgy,
  which share the image's grid). Why relative (issue 16): a noise-free arc has no noise to hide a
  grid in, and an absolute grid is coarse for faint arcs: on the absolute 2^-18 grid the faintest
  demo arcs (arc_snr ~1) were up to 2.1% L1 from the supersampling-8 render, and on 2^-14 a faint
  arc lost its PSF wings altogether (7.2% L1). Relative to the peak, every stored arc is as exact
  as every other: 0.10-0.16% L1 from lenstronomy's supersampling-8 sub-grid render on arcs with
  arc_snr 0.16-0.45 (tests/test_injection_render.py, render error included). 11 bits rather than
  more: the physical source model's arcs are brighter than the old prior's, and the worst storage
  case must stay <= 40 KB per stamp (docs/benchmarks.md section 2; arc bytes per stamp on the
  bench fixtures: absolute 2^-18 3.43 KB, 12 bits 3.10 KB, 11 bits 2.67 KB).
  The step is a power of two (exact float32 arithmetic) and follows from the STORED band itself:
  step_of_stored_arc(stored band) returns it (when rounding lifts the peak to 2^e_b, the band is
  re-rounded on the doubled step, so the stored peak's exponent always names the step). Exact
  zeros stay zero (the arc beyond the PSF's reach); pixels below step / 2 become 0. Every arc step
  divides the image's 2^-14, so image - arc stays on the image's grid.
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
#: Coarsest grid of the arc column, nmgy: the image's (module docstring).
ARC_STEP_NMGY = 2.0 ** -14
#: Bits below an arc band's peak that its grid resolves (module docstring).
ARC_REL_BITS = 11
#: Significant mantissa bits kept in invvar (float32 has 23 explicit bits).
INVVAR_MANTISSA_BITS = 10

_DROP_BITS = 23 - INVVAR_MANTISSA_BITS

#: What the dataset metadata records about the pixel columns (pipeline.dataset.build_metadata).
STORAGE_QUANTIZATION = {
    "version": 3,
    "image": {"method": "absolute grid", "step_nmgy": IMAGE_STEP_NMGY,
              "max_abs_error_nmgy": IMAGE_STEP_NMGY / 2,
              "note": "round to nearest multiple of step; DR10 fpack's own error is <= sigma/32"},
    "arc": {"method": "per band: grid min(step_nmgy, 2^(e - 1 - rel_bits)), e = exponent of the band's max |value|",
            "step_nmgy": ARC_STEP_NMGY, "rel_bits": ARC_REL_BITS,
            "max_abs_error_nmgy": ARC_STEP_NMGY / 2, "max_error_over_band_peak": 2.0 ** -(ARC_REL_BITS + 1),
            "coarsest_step_nmgy": ARC_STEP_NMGY,
            "note": "step_of_stored_arc(band) re-derives each band's step from the stored values; "
                    "arc_flux_* and arc_snr are computed from the stored values"},
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


def step_of_stored_arc(band: np.ndarray) -> float:
    """The grid step of one band of a stored arc (module docstring), from its own values."""
    a = np.asarray(band, dtype=np.float32)
    finite = a[np.isfinite(a)]
    peak = float(np.abs(finite).max()) if finite.size else 0.0
    if peak == 0.0:
        return ARC_STEP_NMGY
    e = np.frexp(np.float32(peak))[1]
    return float(min(ARC_STEP_NMGY, 2.0 ** (int(e) - 1 - ARC_REL_BITS)))


def _quantize_arc_band(band: np.ndarray) -> np.ndarray:
    step = step_of_stored_arc(band)
    out = _to_grid(band, step)
    # rounding can lift the peak to the next power of two; the stored band must name its step
    while step_of_stored_arc(out) != step:
        step = step_of_stored_arc(out)
        out = _to_grid(out, step)
    return out


def quantize_arc(values: np.ndarray, pixels_per_band: int | None = None) -> np.ndarray:
    """float32 copy of `values` ([band, y, x] flat, or one band), each band on its own grid
    (module docstring: |change| <= step_b / 2 <= min(2^-19 nmgy, 2^-15 x the band's peak)).
    pixels_per_band defaults to the contract's 64 x 64 when the size is a multiple of it."""
    a = np.asarray(values, dtype=np.float32)
    if pixels_per_band is None:
        from pipeline.contract import STAMP_SIZE_PIX  # noqa: PLC0415

        n2 = STAMP_SIZE_PIX * STAMP_SIZE_PIX
        pixels_per_band = n2 if a.size % n2 == 0 and a.size > 0 else max(a.size, 1)
    bands = a.reshape(-1, pixels_per_band)
    return np.concatenate([_quantize_arc_band(b) for b in bands]).reshape(a.shape)


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
