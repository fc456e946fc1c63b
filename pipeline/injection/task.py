"""One manifest task -> one output row (pipeline.contract), never an exception for a row problem.

Record layout: exactly the keys of contract.COLUMN_NAMES. Scalars are Python values (None for
null), pixel arrays flat numpy arrays in [band, y, x] C order (float32; maskbits int32 [y, x]).

Pixels are stored quantized (pipeline.pixels), applied here so every writer stores the same
values. The scalars that the pixels determine (arc_flux_<band>, arc_snr, arc_snr_peak,
arc_masked_frac, bad_pixel_frac: metrics.pixel_quantities) are computed from the STORED pixels,
after that rounding, so the gate can recompute each of them from the row and demand agreement up
to floating-point summation order; magnification and the PSF come from the render.

* Control (is_control): image, invvar and maskbits are the brick cutout (image and invvar
  quantized, maskbits bit for bit); arc and every lens/source/rendering column are None.
* Injection: image = quantized (cutout image + arc) (float32 sum), invvar and maskbits as for a
  control, arc the quantized PSF-convolved arc alone. Every parameter needed to re-render the
  arc from the bank is on the row:
  - lens_x_arcsec / lens_y_arcsec are the lens centre actually used, relative to the stamp centre:
    the manifest's jitter PLUS the LRG's sub-pixel offset from its nearest pixel (cutout.dx_pix *
    0.262"), so the mass sits on the LRG's light rather than on a pixel centre;
  - the PSF is ONE object per task (psf.psf_for_task: the run config's psf_model class, built from
    each band's survey FWHM at the stamp centre: the brick's psfsize map at the centre pixel when
    the brick has one, else the manifest's psfsize_<band>); the render uses it and it writes its own
    columns (psf.PSFModel.row_columns): psf_fwhm_<band> is the FWHM the kernel was built with,
    rounded to 0.01" (psf.FWHM_STEP_ARCSEC), moffat_beta the Moffat's beta; psfsize_<band> on the
    row is the unrounded survey value;
  - cosmos_hlr_arcsec is the bank's measured intrinsic half-light radius of that galaxy.
* Failure (RowError, or any unexpected exception while cutting or rendering): cutout_ok=False,
  cutout_error=reason, every pixel column and every rendering output None (an injection row with
  an image but no arc would be a mislabelled negative). The manifest's lens/source parameters stay
  on the row so the failure can be reproduced.

Deterministic: no random numbers here (all randomness is frozen in the manifest), so the same
task, brick and bank give a bit-identical record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from pipeline.bands import REFERENCE_BAND, band_columns
from pipeline.bank.store import CosmosBank
from pipeline.config import RunConfig
from pipeline.contract import BY_NAME, COLUMN_NAMES
from pipeline.errors import InputError, RowError
from pipeline.injection.cutout import Cutout, cutout_at
from pipeline.injection.metrics import pixel_quantities
from pipeline.injection.psf import psf_for_task
from pipeline.injection.render import LensParams, SourcePlacement, render_arc
from pipeline.pixels import quantize_record
from pipeline.survey.brick import BrickCoadds
from pipeline.units import DR10_PIXSCALE_ARCSEC, mag_to_nmgy

#: Columns copied from the manifest task onto every row (converted to the contract's type).
TASK_COLUMNS = (
    "task_id", "task_seed", "region_split", "region_id", "brickname", "lrg_id", "ra", "dec",
    "lens_mag_r", *band_columns("psfsize_{b}"), "psfdepth_r", "is_control", "lens_model",
)
#: Lens and source parameters frozen in the manifest (null for controls).
PARAM_COLUMNS = (
    "theta_e_arcsec", "lens_e1", "lens_e2", "shear_gamma1", "shear_gamma2", "lens_x_arcsec",
    "lens_y_arcsec", "cosmos_index", "cosmos_hlr_arcsec", "src_x_arcsec", "src_y_arcsec",
    "src_phi_rad", "src_dmag", *band_columns("src_mag_{b}"),
)
#: Source-model columns frozen in the manifest that may be null (older manifests, or the
#: lens_relative model): copied when present, never required.
OPTIONAL_PARAM_COLUMNS = ("src_mag_f814w", "src_redshift", "src_sed", "src_brightening_mag")


@dataclass(frozen=True)
class RunContext:
    run_id: str
    pipeline_version: str
    config: RunConfig


def _is_null(value: Any) -> bool:
    """None, NaN (how pandas stores a null float) or pandas.NA."""
    if value is None or type(value).__name__ == "NAType":
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _convert(name: str, value: Any) -> Any:
    """A manifest value as the Python type of the contract column (None for null / NaN)."""
    if _is_null(value):
        return None
    kind = str(BY_NAME[name].type)
    if kind in ("double", "float"):
        return float(value)
    if kind in ("int64", "int32"):
        return int(value)
    if kind == "bool":
        return bool(value)
    return str(value)


def _base_record(task: Mapping, ctx: RunContext) -> dict:
    record = dict.fromkeys(COLUMN_NAMES)
    for name in TASK_COLUMNS + PARAM_COLUMNS + OPTIONAL_PARAM_COLUMNS:
        record[name] = _convert(name, task.get(name))
    record["run_id"] = ctx.run_id
    record["pipeline_version"] = ctx.pipeline_version
    record["variant"] = ctx.config.variant
    record["experiment_id"] = ctx.config.experiment_id
    if record["is_control"] is None:
        record["is_control"] = False
    return record


def failed_record(task: Mapping, reason: str, ctx: RunContext) -> dict:
    """The row of a task that could not be rendered (e.g. its brick could not be loaded)."""
    record = _base_record(task, ctx)
    record["cutout_ok"] = False
    record["cutout_error"] = str(reason)
    return record


def _psf_fwhm(cut: Cutout, task: Mapping, band: str) -> float:
    value = cut.psfsize.get(band)
    if value is None:
        value = _convert(f"psfsize_{band}", task.get(f"psfsize_{band}"))
    if value is None or not value > 0:
        raise RowError(f"no PSF size for band {band}: no positive psfsize map value at the centre pixel "
                       f"and psfsize_{band} missing in the manifest")
    return float(value)


def _render_injection(record: dict, task: Mapping, cut: Cutout, bank: CosmosBank, ctx: RunContext) -> None:
    cfg = ctx.config
    missing = [k for k in PARAM_COLUMNS if k != "cosmos_hlr_arcsec" and record[k] is None]
    if missing:
        raise RowError(f"injection task lacks parameter(s) {missing}")
    try:
        stamp = bank.image(record["cosmos_index"])
    except InputError as exc:
        raise RowError(exc.problem) from None
    lens_x = record["lens_x_arcsec"] + cut.dx_pix * DR10_PIXSCALE_ARCSEC
    lens_y = record["lens_y_arcsec"] + cut.dy_pix * DR10_PIXSCALE_ARCSEC
    lens = LensParams(record["theta_e_arcsec"], record["lens_e1"], record["lens_e2"],
                      record["shear_gamma1"], record["shear_gamma2"], lens_x, lens_y)
    source = SourcePlacement(record["src_x_arcsec"], record["src_y_arcsec"], record["src_phi_rad"])
    bands = cut.bands
    psf = psf_for_task(cfg, {b: _psf_fwhm(cut, task, b) for b in bands})
    flux = [mag_to_nmgy(record[f"src_mag_{b}"]) for b in bands]
    out = render_arc(stamp, bank.pixel_scale_arcsec, lens, source, flux, psf,
                     n_pix=cut.image.shape[-1], pixel_scale_arcsec=DR10_PIXSCALE_ARCSEC,
                     supersampling=cfg.supersampling)
    if REFERENCE_BAND not in bands:
        raise RowError(f"arc_snr is defined on the {REFERENCE_BAND} band, which this run does not render")
    record.update(
        lens_x_arcsec=float(lens_x), lens_y_arcsec=float(lens_y),
        cosmos_hlr_arcsec=float(bank.hlr_arcsec[record["cosmos_index"]]),
        cosmos_hlr_in_stamp_arcsec=_convert("cosmos_hlr_in_stamp_arcsec",
                                            bank.column("hlr_in_stamp_arcsec")[record["cosmos_index"]]),
        magnification=out.magnification,
    )
    record.update(psf.row_columns())  # psf_fwhm_<band> (the kernels' FWHMs) and the model's parameters
    record["image"] = (cut.image + out.arcs).ravel()
    record["arc"] = out.arcs.ravel()


def inject_task(task: Mapping, brick: BrickCoadds, bank: CosmosBank, ctx: RunContext) -> dict:
    """Render one manifest task into one contract row. Never raises for a row-level problem."""
    try:
        record = _base_record(task, ctx)
    except Exception as exc:  # a malformed task still yields a row
        return failed_record({k: task.get(k) for k in ("task_id", "lrg_id", "brickname")},
                             f"malformed task: {type(exc).__name__}: {exc}", ctx)
    try:
        if record["ra"] is None or record["dec"] is None:
            raise RowError("task has no ra/dec")
        cut = cutout_at(brick, record["ra"], record["dec"], ctx.config.stamp_size_pix, ctx.config.bands)
        for b in cut.bands:  # the survey's PSF at the stamp centre, when the brick has the map
            if cut.psfsize.get(b) is not None:
                record[f"psfsize_{b}"] = cut.psfsize[b]
        if not record["is_control"]:
            _render_injection(record, task, cut, bank, ctx)
        else:
            record["image"] = cut.image.ravel()
        record["invvar"] = cut.invvar.ravel()
        record["maskbits"] = cut.maskbits.ravel()
        record["cutout_ok"] = True
        record["cutout_error"] = None
        quantize_record(record)
        n = cut.image.shape[-1]
        stored_arc = None if record["arc"] is None else record["arc"].reshape(len(cut.bands), n, n)
        record.update(pixel_quantities(stored_arc, record["invvar"].reshape(len(cut.bands), n, n),
                                       cut.maskbits, cut.bands))
        return record
    except RowError as exc:
        return failed_record(task, str(exc), ctx)
    except Exception as exc:  # noqa: BLE001 - one bad row must not kill a brick's worth of rows
        return failed_record(task, f"unexpected {type(exc).__name__} while rendering: {exc}", ctx)


def inject_brick_tasks(tasks: Iterable[Mapping], brick: BrickCoadds, bank: CosmosBank, ctx: RunContext) -> list[dict]:
    """Every task of one brick (the Spark step loads each brick once and calls this)."""
    return [inject_task(task, brick, bank, ctx) for task in tasks]
