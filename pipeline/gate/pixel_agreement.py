"""Every row agrees with its own pixels: the gate recomputes each recorded per-row quantity that the
row's stored pixels and conditions determine, on every row, and counts the rows that disagree.

- pixel-derived scalars (arc_flux_<band>, arc_snr, arc_snr_peak, arc_masked_frac, bad_pixel_frac,
  and whatever else `pipeline.injection.metrics.pixel_quantities` defines): recomputed by THAT
  function from the stored arc, invvar and maskbits, in the band order the dataset's metadata
  declares. The injection records them from the same stored pixels with the same function, so
  the only legitimate difference is floating-point summation order: agreement is demanded to
  REL_TOL relative (plus ABS_TOL_NMGY absolute for values near zero), far below any physical
  effect and far above the last-bit differences between CPUs and numpy builds;
- the PSF actually used: psf_fwhm_<band> must be the survey's PSF at the stamp centre
  (psfsize_<band>, from the brick's map) rounded to the kernel grid, i.e. within
  FWHM_STEP_ARCSEC / 2 of it (a g/z swap or a PSF taken from the wrong band fails); these are
  plain column rules, counted in the gate's fused scan with the row contract
  (`psf_disagreement_predicates`);
- the band order: the metadata's declared band order must be the contract's (readers and every
  per-band column assume it); the per-band fluxes recomputed in the declared order catch pixels
  written in another order.

Check names: `pixels_agree:<quantity>` (row contract) and `pixels_agree:psf_fwhm_<band>`; each
failing check names example task_ids.

Runs as one Spark job over the pixel columns (mapInArrow: numpy on the executors; only the
disagreeing rows' (check, task_id) pairs are aggregated, so nothing large reaches the driver).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from pipeline.contract import BANDS, STAMP_SIZE_PIX
from pipeline.injection.metrics import pixel_quantities
from pipeline.injection.psf import FWHM_STEP_ARCSEC

#: Relative agreement demanded between a recorded and a recomputed pixel-derived quantity.
REL_TOL = 1e-9
#: Absolute slack for quantities near zero (nmgy for fluxes; dimensionless otherwise).
ABS_TOL_NMGY = 1e-12
#: psf_fwhm_<band> is psfsize_<band> rounded to the kernel grid: at most half a step away.
PSF_TOL_ARCSEC = FWHM_STEP_ARCSEC / 2 * (1 + 1e-9)
_INPUT = ("task_id", "is_control", "cutout_ok", "arc", "invvar", "maskbits")


def agree(recorded: float | None, recomputed: float) -> bool:
    """Both NaN, or within REL_TOL relative / ABS_TOL_NMGY absolute. A null recorded value
    disagrees with any recomputed number (the row contract reports nulls by name too)."""
    if recorded is None:
        return False
    if math.isnan(recomputed) or math.isnan(recorded):
        return math.isnan(recomputed) and math.isnan(recorded)
    return abs(recorded - recomputed) <= ABS_TOL_NMGY + REL_TOL * max(abs(recorded), abs(recomputed))


def row_disagreements(row: dict, bands: tuple[str, ...] = BANDS) -> list[str]:
    """Names of the pixel-derived quantities on which `row` (a contract record with flat pixel
    arrays) contradicts its own pixels. Only rows with cutout_ok carry pixels to check."""
    if not row.get("cutout_ok") or row.get("invvar") is None or row.get("maskbits") is None:
        return []
    nb, n = len(bands), STAMP_SIZE_PIX
    invvar = np.asarray(row["invvar"], dtype=np.float32)
    maskbits = np.asarray(row["maskbits"], dtype=np.int32)
    if invvar.size != nb * n * n or maskbits.size != n * n:
        return []  # wrong lengths: the row contract's pixel_length checks name them
    arc = row.get("arc")
    arc = None if arc is None or row.get("is_control") else np.asarray(arc, dtype=np.float32)
    if arc is not None and arc.size != nb * n * n:
        return []
    quantities = pixel_quantities(None if arc is None else arc.reshape(nb, n, n), invvar.reshape(nb, n, n),
                                  maskbits.reshape(n, n), bands)
    return [name for name, value in quantities.items()
            if name in row and not agree(_float(row[name]), float(value))]


def _float(v):
    return None if v is None else float(v)


def _list_rows(col: pa.Array):
    """A list column as (values ndarray, offsets ndarray, valid mask)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return (col.values.to_numpy(zero_copy_only=False), col.offsets.to_numpy(),
            col.is_valid().to_numpy(zero_copy_only=False))


def _disagreement_batches(batches, *, bands, scalar_names):
    """mapInArrow body: one output row (check, task_id) per disagreeing quantity of a row."""
    for batch in batches:
        names = batch.schema.names
        pix = {c: _list_rows(batch.column(names.index(c))) for c in ("arc", "invvar", "maskbits")}
        scal = {c: batch.column(names.index(c)).to_pylist() for c in ("task_id", "is_control", "cutout_ok", *scalar_names)}
        checks, ids = [], []
        for i in range(batch.num_rows):
            row = {c: scal[c][i] for c in scal}
            for c, (values, offsets, valid) in pix.items():
                row[c] = values[offsets[i]:offsets[i + 1]] if valid[i] else None
            for name in row_disagreements(row, bands):
                checks.append(f"pixels_agree:{name}")
                ids.append(row["task_id"])
        yield pa.RecordBatch.from_arrays([pa.array(checks, pa.string()), pa.array(ids, pa.string())],
                                         names=["check", "task_id"])


def psf_disagreement_predicates(columns) -> dict:
    """`pixels_agree:psf_fwhm_<band>` -> Spark Column, true on an ok injection whose PSF used
    (psf_fwhm_<band>) is not the survey's PSF at the stamp centre (psfsize_<band>) rounded to the
    kernel grid, or is missing. Evaluated with the row contract's rules in the gate's fused scan."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    present = set(columns)
    inj_ok = (~F.col("is_control")) & F.col("cutout_ok")
    preds = {}
    for b in BANDS:
        used, survey = f"psf_fwhm_{b}", f"psfsize_{b}"
        if used in present and survey in present:
            preds[f"pixels_agree:{used}"] = inj_ok & (
                F.col(used).isNull() | F.col(survey).isNull()
                | ~(F.abs(F.col(used) - F.col(survey)) <= F.lit(PSF_TOL_ARCSEC)))
    return preds


def declared_band_order(metadata: dict) -> tuple[str, ...]:
    """The band order the dataset's metadata declares (the contract's when it declares none)."""
    layout = (metadata or {}).get("pixel_layout") or {}
    order = layout.get("band_order")
    return tuple(order) if isinstance(order, list) and order else BANDS


def pixel_agreement(df, *, metadata: dict, n_examples: int = 3) -> dict:
    """{check name: {"failed_rows", "examples"}} for every pixel-derived quantity and the band order
    (zeros included, so a passing dataset shows what was checked). `df` has the contract's columns."""
    from functools import partial  # noqa: PLC0415

    from pyspark.sql import functions as F  # noqa: PLC0415
    from pyspark.sql import types as T  # noqa: PLC0415

    from pipeline.injection.metrics import PIXEL_DERIVED_SCALARS  # noqa: PLC0415

    bands = declared_band_order(metadata)
    out: dict[str, dict] = {}
    if bands != BANDS:
        out["pixels_agree:band_order"] = {
            "failed_rows": -1, "examples": [],
            "problem": f"the metadata declares band order {list(bands)}; the contract's (and every reader's) is {list(BANDS)}"}
    scalar_names = [c for c in (*[f"arc_flux_{b}" for b in BANDS], *PIXEL_DERIVED_SCALARS) if c in df.columns]
    if not set(_INPUT) - set(df.columns):
        schema = T.StructType([T.StructField("check", T.StringType()), T.StructField("task_id", T.StringType())])
        bad = (df.select(*_INPUT, *scalar_names)
               .mapInArrow(partial(_disagreement_batches, bands=bands, scalar_names=scalar_names), schema)
               .groupBy("check")
               .agg(F.count(F.lit(1)).alias("n"), F.slice(F.collect_list("task_id"), 1, n_examples).alias("ex"))
               .collect())
        found = {r["check"]: (int(r["n"]), list(r["ex"])) for r in bad}
        for name in scalar_names:
            n, ex = found.pop(f"pixels_agree:{name}", (0, []))
            out[f"pixels_agree:{name}"] = {"failed_rows": n, "examples": ex}
        for check, (n, ex) in found.items():  # a quantity the contract does not list (still a failure)
            out[check] = {"failed_rows": n, "examples": ex}
    return out
