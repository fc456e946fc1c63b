"""The band table: everything the pipeline knows per photometric band, in ONE place (issue 18).

Adding a band = one `Band(...)` entry in `BAND_TABLE` (plus its data: the survey's coadds and
psfsize maps in that band, and the LRG table's psfsize_<band>). Everything per band derives from
this table:

| what | where it is derived |
|---|---|
| the band order of stamps, `BANDS` | `pipeline.contract.BANDS` / `PIXEL_LAYOUT` / stamp sizes, `pipeline.config` (allowed bands, `parse_bands`) |
| per-band contract columns (psfsize_, src_mag_, psf_fwhm_, arc_flux_), in the contract's order | `pipeline.contract.COLUMNS` (`band_columns`) |
| per-band manifest columns and source magnitudes from (g - r, r - z) | `pipeline.manifest` (`MANIFEST_COLUMNS`, `_draw_injections`: `band_magnitudes`) |
| per-band task columns | `pipeline.injection.task` (`TASK_COLUMNS`, `PARAM_COLUMNS`) |
| survey file names (`legacysurvey-<brick>-<kind>-<band>.fits.fz`) | `pipeline.survey.coadds` (default bands of `load_brick`) |
| LRG table columns (psfsize_<band> required; mag_, psfdepth_ optional) | `pipeline.survey.lrg_table` |
| synthetic survey (PSF range, depth offset and scatter, saturation bits, star and LRG colours) | `pipeline.survey.synth` |
| DR10 per-band maskbits (SATUR_<band>, ALLMASK_<band>) | `pipeline.survey.maskbits` (`SATUR`, `ALLMASK`, `BAD_MASKBITS`) |
| gallery colour composite (RGB channel, weight) | `pipeline.gallery` |
| the band the r-band quantities are measured in | `REFERENCE_BAND` (arc_snr and friends: `pipeline.injection.metrics`) |

Magnitudes are AB and fluxes nanomaggies in every band (zero point 22.5, `pipeline.units`): no
per-band zero point exists in this pipeline.

Colours: a band's magnitude is written in the colour basis the manifest draws (g - r, r - z):
mag_band = mag_r + colour_gr x (g - r) + colour_rz x (r - z), applied by `band_magnitudes` to
sources (manifest), synthetic LRGs and stars. The terms of g, r, z are exactly (1, 0), (0, 0),
(0, -1), so their magnitudes are the same floating-point operations as before the table.

Tests that add a band (tests/test_bands.py) call `use_band_table` in a fresh interpreter before
any other pipeline module is imported: every module above derives its per-band names at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np


@dataclass(frozen=True)
class Band:
    #: one lower-case letter, as DR10 file names and column suffixes spell it
    name: str
    #: DR10 maskbits of this band (legacysurvey.org/dr10/bitmasks): saturated / every exposure
    #: masked; pipeline.survey.maskbits names them SATUR_<B> / ALLMASK_<B> and counts them bad
    satur_bit: int
    allmask_bit: int
    #: mag_band = mag_r + colour_gr (g - r) + colour_rz (r - z) (sources, synthetic LRGs and stars)
    colour_gr: float
    colour_rz: float
    #: synthetic survey: PSF FWHM range at the brick centres (arcsec, corners within +-8% more)
    synth_fwhm_range_arcsec: tuple[float, float]
    #: synthetic survey: 5-sigma depth at the brick centre minus r's (mag)
    synth_depth_offset_mag: float
    #: synthetic survey: Normal sigma (mag) of this band's depth scatter; None = no draw (the
    #: reference band, whose depth IS the drawn depth)
    synth_depth_scatter_mag: float | None
    #: gallery composite: the display channel ("R", "G", "B"; None = not shown) and its weight
    gallery_channel: str | None
    gallery_weight: float
    #: the gate's PSF-size histogram (fixed physical edges, arcsec; 100 bins): wide enough for the
    #: band's DR10 seeing
    psfsize_hist_range_arcsec: tuple[float, float] = (0.5, 3.0)

    # --- column names -------------------------------------------------------------------
    def col(self, template: str) -> str:
        """A per-band column name: template with {b} replaced by the band ("psfsize_{b}")."""
        return template.format(b=self.name)


#: The band whose quantities the single-band columns hold (lens_mag_r, psfdepth_r, arc_snr, ...).
REFERENCE_BAND = "r"


def build_band_table(extra: Iterable[Band] = ()) -> tuple[Band, ...]:
    """The survey's bands, in stamp order (the contract's band order), plus `extra` appended."""
    return (
        Band("g", satur_bit=1 << 2, allmask_bit=1 << 5, colour_gr=1.0, colour_rz=0.0,
             synth_fwhm_range_arcsec=(1.2, 2.0), synth_depth_offset_mag=0.4, synth_depth_scatter_mag=0.08,
             gallery_channel="B", gallery_weight=2.2, psfsize_hist_range_arcsec=(0.5, 3.5)),
        Band("r", satur_bit=1 << 3, allmask_bit=1 << 6, colour_gr=0.0, colour_rz=0.0,
             synth_fwhm_range_arcsec=(0.9, 1.7), synth_depth_offset_mag=0.0, synth_depth_scatter_mag=None,
             gallery_channel="G", gallery_weight=1.4),
        Band("z", satur_bit=1 << 4, allmask_bit=1 << 7, colour_gr=0.0, colour_rz=-1.0,
             synth_fwhm_range_arcsec=(0.8, 1.6), synth_depth_offset_mag=-1.0, synth_depth_scatter_mag=0.08,
             gallery_channel="R", gallery_weight=1.0),
        *extra,
    )


BAND_TABLE: tuple[Band, ...] = ()
BANDS: tuple[str, ...] = ()
BY_NAME: dict[str, Band] = {}


def use_band_table(table: Iterable[Band]) -> None:
    """Set the band table (module import does it with build_band_table()). Only before any other
    pipeline module is imported (they derive their per-band names at import): tests adding a band
    call it first thing in a fresh interpreter."""
    global BAND_TABLE, BANDS, BY_NAME
    table = tuple(table)
    names = [b.name for b in table]
    if len(set(names)) != len(names) or REFERENCE_BAND not in names:
        raise ValueError(f"band table needs unique names including {REFERENCE_BAND!r}, got {names}")
    BAND_TABLE, BANDS, BY_NAME = table, tuple(names), {b.name: b for b in table}


use_band_table(build_band_table())


def band(name: str) -> Band:
    return BY_NAME[name]


def reference_first(bands: Iterable[str] | None = None) -> tuple[str, ...]:
    """The bands with REFERENCE_BAND first, then the others in table order (r, g, z): the order
    of the gate's per-band histograms, parity checks and their text."""
    names = tuple(BANDS if bands is None else bands)
    return (REFERENCE_BAND, *[b for b in names if b != REFERENCE_BAND])


def band_columns(template: str, bands: Iterable[str] | None = None) -> tuple[str, ...]:
    """template ("psfsize_{b}") for every band, in table order (or in `bands`' order)."""
    return tuple(template.format(b=b) for b in (BANDS if bands is None else bands))


def band_magnitudes(mag_r, gr, rz, bands: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Each band's magnitude from r and the colours (g - r, r - z): mag_r + colour_gr gr +
    colour_rz rz, a term left out when its coefficient is 0 (and a coefficient of +-1 is an exact
    addition / subtraction), so g = r + gr, r = r, z = r - rz exactly as before the table."""
    out = {}
    for name in (BANDS if bands is None else bands):
        b = BY_NAME[name]
        m = mag_r
        for coeff, colour in ((b.colour_gr, gr), (b.colour_rz, rz)):
            if coeff == 1.0:
                m = m + colour
            elif coeff == -1.0:
                m = m - colour
            elif coeff != 0.0:
                m = m + coeff * colour
        out[name] = m
    return out


def per_band(values: Mapping[str, object], bands: Iterable[str] | None = None) -> list:
    """[values[b] for b in the table's bands] (a helper for band-ordered lists)."""
    return [values[b] for b in (BANDS if bands is None else bands)]
