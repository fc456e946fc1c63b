"""quantize_record rounds every pixel column it stores (a mutation that skips one must fail here).

Independent truth: grid membership by exact arithmetic on the float32 values (x / step is an
integer for a power-of-two step) and the kept mantissa bits read off the float32 bit pattern,
not the module's own helpers."""

from __future__ import annotations

import numpy as np

from pipeline.pixels import IMAGE_STEP_NMGY, INVVAR_MANTISSA_BITS, quantize_record

N = 64 * 64


def _record(seed: int = 0, control: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    image = (rng.normal(0, 0.01, 3 * N) + 0.05).astype(np.float32)
    arc = None
    if not control:
        yy, xx = np.mgrid[0:64, 0:64] - 32.0
        ring = np.exp(-0.5 * ((np.hypot(xx, yy) - 6.0) / 1.5) ** 2)
        arc = np.concatenate([f * ring.ravel() for f in (0.003, 0.02, 0.05)]).astype(np.float32)
        arc *= np.float32(1 + 1e-3 * rng.standard_normal(arc.size))  # every low bit in play
    invvar = (2e4 * np.exp(rng.normal(0, 0.3, 3 * N))).astype(np.float32)
    return {"image": image, "arc": arc, "invvar": invvar, "maskbits": np.zeros(N, np.int32)}


def _on_grid(values: np.ndarray, step: float) -> bool:
    q = values.astype(np.float64) / step
    return bool(np.all(q == np.rint(q)))


def test_image_is_rounded_to_its_grid():
    raw = _record(1)
    out = quantize_record({k: (None if v is None else v.copy()) for k, v in raw.items()})
    assert _on_grid(out["image"], IMAGE_STEP_NMGY) and not _on_grid(raw["image"], IMAGE_STEP_NMGY)
    assert np.max(np.abs(out["image"].astype(np.float64) - raw["image"])) <= IMAGE_STEP_NMGY / 2


def test_each_arc_band_is_rounded_to_a_grid_relative_to_its_peak():
    """Each band on a power-of-two grid of at most 2^-11 of its peak (11 relative bits) and never
    coarser than the image's grid; every pixel within half a step of the render."""
    raw = _record(2)
    out = quantize_record({k: (None if v is None else v.copy()) for k, v in raw.items()})
    for b in range(3):
        stored = out["arc"][b * N:(b + 1) * N].astype(np.float64)
        source = raw["arc"][b * N:(b + 1) * N].astype(np.float64)
        step = min(2.0 ** np.floor(np.log2(source.max())) * 2.0 ** -11, IMAGE_STEP_NMGY)
        assert _on_grid(stored, step), b
        assert not _on_grid(source, step), b  # the render was not on it: rounding happened
        assert np.max(np.abs(stored - source)) <= step / 2 * (1 + 1e-9), b


def test_invvar_keeps_only_its_mantissa_bits():
    raw = _record(3)
    out = quantize_record({k: (None if v is None else v.copy()) for k, v in raw.items()})
    dropped = (1 << (23 - INVVAR_MANTISSA_BITS)) - 1
    assert np.all(out["invvar"].view(np.uint32) & np.uint32(dropped) == 0)
    assert np.any(raw["invvar"].view(np.uint32) & np.uint32(dropped) != 0)
    rel = np.abs(out["invvar"].astype(np.float64) - raw["invvar"]) / raw["invvar"]
    assert rel.max() <= 2.0 ** -(INVVAR_MANTISSA_BITS + 1)


def test_a_control_keeps_no_arc_and_maskbits_are_untouched():
    raw = _record(4, control=True)
    out = quantize_record({k: (None if v is None else v.copy()) for k, v in raw.items()})
    assert out["arc"] is None and np.array_equal(out["maskbits"], raw["maskbits"])
