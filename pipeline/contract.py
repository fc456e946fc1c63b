"""The Phase 4c data contract: one row per manifest task (SPEC section 7).

This module is the single source of truth for column names, types, units and which columns are
null for control rows. The injection core builds records with these keys, the Spark steps derive
their schema from it, and the gate's pandera contract checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from pipeline import bands as _bands

#: Stamp geometry: bands first, then rows (y), then columns (x); C order. The bands and their
#: order are the band table's (pipeline.bands).
BANDS = _bands.BANDS
STAMP_SIZE_PIX = 64
PIXEL_LAYOUT = {
    "array_order": "C",
    "shape": [len(BANDS), STAMP_SIZE_PIX, STAMP_SIZE_PIX],
    "axes": ["band", "y", "x"],
    "band_order": list(BANDS),
    "dtype": "float32 (image, invvar, arc); int32 (maskbits, shape [y, x])",
    "axis_convention": (
        "pixel [y, x] = [0, 0] is the cutout's first row and column as stored in the DR10 brick "
        "(FITS pixel order, y along NAXIS2). The LRG's WCS position is at pixel centre "
        "(x, y) = (32, 32) after rounding to the nearest brick pixel. Lens-plane offsets "
        "*_x_arcsec / *_y_arcsec are measured from the stamp centre (32, 32) along +x and +y "
        "pixel axes (DR10 TAN WCS: +x is towards decreasing RA, +y towards increasing Dec)."
    ),
    "image_units": "nanomaggies per pixel",
    "invvar_units": "1 / nanomaggies^2",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    unit: str
    doc: str
    nullable: bool = False
    #: Null for control rows and set for every ok injection row.
    injection_only: bool = False


_F64 = pa.float64()
_F32_STAMP = pa.list_(pa.float32(), len(BANDS) * STAMP_SIZE_PIX * STAMP_SIZE_PIX)
_I32_MASK = pa.list_(pa.int32(), STAMP_SIZE_PIX * STAMP_SIZE_PIX)


def _per_band(name: str, type_: pa.DataType, unit: str, doc: str, nullable: bool = False,
              injection_only: bool = False) -> tuple[Column, ...]:
    """One column per band of the table, in band order: name and doc templates with {b}."""
    return tuple(Column(name.format(b=b), type_, unit, doc.format(b=b), nullable, injection_only) for b in BANDS)


COLUMNS: tuple[Column, ...] = (
    # identity
    Column("task_id", pa.string(), "", "unique task id from the manifest"),
    Column("run_id", pa.string(), "", "id of the Phase 4c run that produced the row"),
    Column("variant", pa.string(), "", "dataset variant, e.g. v5_cosmos_production"),
    Column("experiment_id", pa.string(), "", "experiment id, e.g. train_stamp64_bandsgrz_cosmos"),
    Column("pipeline_version", pa.string(), "", "version of this package that rendered the row"),
    Column("task_seed", pa.int64(), "", "per-task seed frozen in the manifest"),
    # place
    Column("region_split", pa.string(), "", "train / val / test; partition key"),
    Column("region_id", pa.int64(), "", "sky region the LRG belongs to; a region lives in one split"),
    Column("brickname", pa.string(), "", "DR10 brick holding the LRG"),
    Column("lrg_id", pa.int64(), "", "LRG id from the Phase 3 table"),
    Column("ra", _F64, "deg", "LRG right ascension (ICRS)"),
    Column("dec", _F64, "deg", "LRG declination (ICRS)"),
    # conditions
    Column("lens_mag_r", _F64, "AB mag", "LRG r-band magnitude"),
    *_per_band("psfsize_{b}", _F64, "arcsec FWHM", "survey PSF FWHM in {b} at the stamp centre"),
    Column("psfdepth_r", _F64, "AB mag", "r-band 5-sigma point-source depth at the LRG"),
    # label
    Column("is_control", pa.bool_(), "", "true: the cutout with no injection"),
    Column("lens_model", pa.string(), "", "SIE for injections, CONTROL for controls"),
    # lens
    Column("theta_e_arcsec", _F64, "arcsec", "SIE Einstein radius", True, True),
    Column("lens_e1", _F64, "", "SIE ellipticity component e1 (lenstronomy convention)", True, True),
    Column("lens_e2", _F64, "", "SIE ellipticity component e2", True, True),
    Column("shear_gamma1", _F64, "", "external shear gamma1", True, True),
    Column("shear_gamma2", _F64, "", "external shear gamma2", True, True),
    Column("lens_x_arcsec", _F64, "arcsec", "lens centre offset from stamp centre along +x", True, True),
    Column("lens_y_arcsec", _F64, "arcsec", "lens centre offset from stamp centre along +y", True, True),
    # source
    Column("cosmos_index", pa.int64(), "", "row of the COSMOS bank used as the source", True, True),
    Column("cosmos_hlr_arcsec", _F64, "arcsec", "intrinsic (unlensed) half-light radius of the galaxy, measured on its whole catalogue stamp (the radius the bank's hlr filter means)", True, True),
    Column("cosmos_hlr_in_stamp_arcsec", _F64, "arcsec", "half-light radius of the light inside the bank stamp that was lensed (truncated); null for banks without it", True),
    Column("src_x_arcsec", _F64, "arcsec", "source-plane position relative to the lens centre, +x", True, True),
    Column("src_y_arcsec", _F64, "arcsec", "source-plane position relative to the lens centre, +y", True, True),
    Column("src_phi_rad", _F64, "rad", "source rotation angle", True, True),
    Column("src_dmag", _F64, "mag", "source r magnitude minus lens r magnitude (unlensed)", True, True),
    *_per_band("src_mag_{b}", _F64, "AB mag", "unlensed source {b} magnitude", True, True),
    Column("src_mag_f814w", _F64, "AB mag", "the galaxy's own F814W magnitude, from its clean bank stamp; null if unknown", True),
    Column("src_redshift", _F64, "", "redshift the source colours were taken at (catalogue zphot clipped to the colour table, or drawn); null for the lens_relative model", True),
    Column("src_sed", pa.string(), "", "colour template (Im, Scd; pipeline.bank.colours); null for the lens_relative model", True),
    Column("src_brightening_mag", _F64, "mag", "how much brighter than the galaxy itself the source was made (physical model: the config's src_brightening_mag, 0 by default; lens_relative: F814W - r)", True),
    # rendering
    *_per_band("psf_fwhm_{b}", _F64, "arcsec", "Moffat FWHM used for {b}", True, True),
    Column("moffat_beta", _F64, "", "Moffat beta used", True, True),
    Column("magnification", _F64, "", "lensed / unlensed source flux, noiseless, before PSF", True, True),
    *_per_band("arc_flux_{b}", _F64, "nmgy", "arc flux inside the stamp, {b}", True, True),
    Column("arc_snr", _F64, "", "r-band arc SNR, the seed's definition (section 6.1): sum over every good pixel of the stamp", True, True),
    Column("arc_snr_footprint", _F64, "", "r-band arc SNR over the good pixels of the arc's footprint (arc >= 10% of its peak)", True, True),
    Column("arc_snr_peak", _F64, "", "max per-pixel r-band arc SNR over unmasked pixels", True, True),
    Column("arc_masked_frac", _F64, "", "fraction of r-band arc flux on masked pixels", True, True),
    # quality
    Column("cutout_ok", pa.bool_(), "", "false: the task could not be rendered; see cutout_error"),
    Column("cutout_error", pa.string(), "", "reason the task failed; null when cutout_ok", True),
    Column("bad_pixel_frac", _F64, "", "fraction of stamp pixels with invvar <= 0 or bad maskbits", True),
    # pixels
    Column("image", _F32_STAMP, "nmgy/pixel", "LRG cutout plus arc, [band, y, x]; on the 2^-14 nmgy grid (pipeline.pixels)", True),
    Column("invvar", _F32_STAMP, "1/nmgy^2", "inverse variance, [band, y, x]; 10 significant bits (pipeline.pixels)", True),
    Column("arc", _F32_STAMP, "nmgy/pixel", "the injected arc alone (PSF-convolved), [band, y, x]; quantized as pipeline.pixels says", True, True),
    Column("maskbits", _I32_MASK, "bits", "DR10 maskbits, [y, x]", True),
)

COLUMN_NAMES = tuple(c.name for c in COLUMNS)
INJECTION_ONLY = tuple(c.name for c in COLUMNS if c.injection_only)
PIXEL_COLUMNS = ("image", "invvar", "arc", "maskbits")
#: Observing conditions a control and an injection must share in distribution (else a CNN learns
#: the label from them): each band's PSF size (reference band first), depth and lens magnitude.
PARITY_COLUMNS = (*(f"psfsize_{b}" for b in _bands.reference_first()), "psfdepth_r", "lens_mag_r")
SCALAR_COLUMNS = tuple(c.name for c in COLUMNS if c.name not in PIXEL_COLUMNS)
BY_NAME = {c.name: c for c in COLUMNS}


def arrow_schema(include_pixels: bool = True) -> pa.Schema:
    """Arrow schema of the output rows, with units and docs in each field's metadata."""
    cols = COLUMNS if include_pixels else tuple(c for c in COLUMNS if c.name not in PIXEL_COLUMNS)
    return pa.schema(
        [
            pa.field(c.name, c.type, nullable=True, metadata={"unit": c.unit, "doc": c.doc})
            for c in cols
        ]
    )
