"""Reader for GalSim "real galaxy" catalogue files (COSMOS 25.2/23.5 samples, AEGIS and alike).

A sample is three kinds of FITS file side by side (see data/hst_galaxies/README.md):
  <name>.fits        table, one row per galaxy: IDENT, GAL_FILENAME, GAL_HDU, PIXEL_SCALE,
                     NOISE_MEAN (sky pedestal), NOISE_VARIANCE, stamp_flux (sum of the stamp), MAG...
  <name>_fits.fits   optional parametric fits; hlr[:, 0] is the circularised Sersic half-light
                     radius in arcsec (flux_radius there is in 0.03" *pixels*, never used here)
  GAL_FILENAME       images, one galaxy per HDU, HST counts/s

GAL_HDU is not trusted blindly: every stamp's pixel sum is checked against stamp_flux, because a
real sample (cosmos_23.5_subset) ships with both rows saying GAL_HDU=2 while the images sit in
HDUs 1 and 2 in catalogue order. A mismatching row is retried at its catalogue-order HDU (the
k-th image HDU of its file for the k-th row naming that file) and repaired with a warning when
that matches; otherwise the row is rejected.

Problems with a whole file raise InputError naming the file; problems with a row are returned as a
`StampResult` with `problem` set, naming file, row and HDU, and the caller decides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import InputError

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("IDENT", "GAL_FILENAME", "GAL_HDU", "PIXEL_SCALE", "NOISE_MEAN")
#: float32 stamps summed in float64 agree with stamp_flux to ~1e-7 of the summed |pixels|;
#: anything beyond this is a different image or a modified one.
FLUX_MATCH_RTOL = 1e-4
#: Default loose tolerance: a stamp that no other HDU explains and whose sum is within this
#: fraction of stamp_flux is kept with a note (two real AEGIS stamps are 0.7% and 5.7% below
#: their stamp_flux, apparently trimmed after the catalogue was made).
DEFAULT_FLUX_RTOL = 0.1


@dataclass(frozen=True)
class CatalogRow:
    catalog_path: str
    row: int
    ident: str
    image_path: str
    gal_hdu: int
    pixel_scale_arcsec: float
    noise_mean: float  # counts/s per pixel
    noise_variance: float  # (counts/s)^2 per pixel; nan when the column is absent
    stamp_flux: float  # counts/s; nan when the column is absent
    mag: float  # catalogue F814W AB magnitude; nan when absent
    hlr_arcsec_catalog: float  # from <name>_fits.fits hlr[:,0]; nan when none
    zphot: float = float("nan")  # from <name>_fits.fits zphot; nan when none

    @property
    def origin(self) -> str:
        return f"{Path(self.catalog_path).name} row {self.row}"


@dataclass(frozen=True)
class StampResult:
    row: CatalogRow
    image: np.ndarray | None  # raw stamp, counts/s, float64; None when rejected
    hdu: int  # HDU the image was taken from (or was looked for)
    problem: str | None = None  # rejection reason naming file, row and HDU
    note: str | None = None  # kept, but something the report must show (repair, loose flux)


def fits_catalog_path(catalog_path: str | Path) -> Path:
    """`<name>.fits` -> `<name>_fits.fits` (GalSim's parametric-fit companion)."""
    p = Path(catalog_path)
    return p.with_name(p.name[: -len(".fits")] + "_fits.fits") if p.name.endswith(".fits") else p.with_name(p.name + "_fits.fits")


def _open_fits(path: Path, what: str):
    from astropy.io import fits  # noqa: PLC0415

    if not path.is_file():
        raise InputError(str(path), f"no such {what} file")
    try:
        hdul = fits.open(path, memmap=False)
        _ = len(hdul)  # forces astropy to read every header now, where errors are clear
    except Exception as exc:  # astropy raises OSError, ValueError, VerifyError... for non-FITS
        raise InputError(str(path), f"not a readable FITS {what} file ({exc})") from None
    return hdul


def _table(path: Path, what: str):
    from astropy.io import fits  # noqa: PLC0415

    with _open_fits(path, what) as hdul:
        tables = [h for h in hdul if isinstance(h, fits.BinTableHDU)]
        if not tables:
            raise InputError(str(path), f"{what} has no binary table HDU")
        return tables[0].data.copy()


def read_fits_hlr(fits_path: str | Path) -> dict[str, float]:
    """IDENT -> circularised Sersic hlr (arcsec) from a `_fits.fits` file."""
    path = Path(fits_path)
    data = _table(path, "GalSim parametric-fit catalogue")
    names = {n.upper(): n for n in data.columns.names}
    missing = [c for c in ("IDENT", "HLR") if c not in names]
    if missing:
        raise InputError(str(path), f"parametric-fit catalogue is missing column(s) {missing}")
    hlr = np.asarray(data[names["HLR"]], dtype=np.float64)
    hlr0 = hlr[:, 0] if hlr.ndim == 2 else hlr
    return {str(i).strip(): float(h) if h > 0 else float("nan") for i, h in zip(data[names["IDENT"]], hlr0)}


def read_fits_zphot(fits_path: str | Path) -> dict[str, float]:
    """IDENT -> photometric redshift from a `_fits.fits` file ({} when it has no zphot column)."""
    path = Path(fits_path)
    data = _table(path, "GalSim parametric-fit catalogue")
    names = {n.upper(): n for n in data.columns.names}
    if "ZPHOT" not in names or "IDENT" not in names:
        return {}
    z = np.asarray(data[names["ZPHOT"]], dtype=np.float64)
    return {str(i).strip(): float(v) if np.isfinite(v) and v >= 0 else float("nan")
            for i, v in zip(data[names["IDENT"]], z)}


def read_catalog(catalog_path: str | Path) -> list[CatalogRow]:
    """Rows of a GalSim real-galaxy catalogue, with the `_fits.fits` hlr joined on IDENT.
    Image paths are resolved next to the catalogue; they are not opened here."""
    path = Path(catalog_path)
    data = _table(path, "GalSim real-galaxy catalogue")
    names = {n.upper(): n for n in data.columns.names}
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise InputError(str(path), f"catalogue is missing required column(s) {missing}")
    if len(data) == 0:
        raise InputError(str(path), "catalogue has no rows")

    def col(name, default=np.nan):
        key = names.get(name.upper())
        return data[key] if key is not None else np.full(len(data), default)

    fits_path = fits_catalog_path(path)
    hlr_by_ident = read_fits_hlr(fits_path) if fits_path.is_file() else {}
    z_by_ident = read_fits_zphot(fits_path) if fits_path.is_file() else {}
    rows = []
    for i in range(len(data)):
        ident = str(col("IDENT")[i]).strip()
        rows.append(
            CatalogRow(
                catalog_path=str(path),
                row=i,
                ident=ident,
                image_path=str(path.parent / str(col("GAL_FILENAME")[i]).strip()),
                gal_hdu=int(col("GAL_HDU")[i]),
                pixel_scale_arcsec=float(col("PIXEL_SCALE")[i]),
                noise_mean=float(col("NOISE_MEAN")[i]),
                noise_variance=float(col("NOISE_VARIANCE")[i]),
                stamp_flux=float(col("stamp_flux")[i]),
                mag=float(col("MAG")[i]),
                hlr_arcsec_catalog=hlr_by_ident.get(ident, float("nan")),
                zphot=z_by_ident.get(ident, float("nan")),
            )
        )
    return rows


def catalog_has_images(catalog_path: str | Path) -> bool:
    """True when every image file the catalogue names exists (GalSim ships some catalogues,
    like the 23.5 example, without their images)."""
    return all(Path(r.image_path).is_file() for r in read_catalog(catalog_path))


def _image_hdus(hdul) -> list[int]:
    return [i for i, h in enumerate(hdul) if getattr(h, "is_image", False) and h.data is not None and h.data.ndim == 2]


def _flux_tolerance(image: np.ndarray) -> float:
    return FLUX_MATCH_RTOL * float(np.abs(image).sum())


def _stamp_at(hdul, hdu: int, where: str) -> tuple[np.ndarray | None, str | None]:
    if not 0 <= hdu < len(hdul):
        return None, f"{where}: GAL_HDU {hdu} is past the last HDU ({len(hdul) - 1})"
    h = hdul[hdu]
    if not getattr(h, "is_image", False) or h.data is None:
        return None, f"{where}: HDU {hdu} is a {type(h).__name__} without image data, not a galaxy stamp"
    data = np.asarray(h.data, dtype=np.float64)
    if data.ndim != 2:
        return None, f"{where}: HDU {hdu} holds a {data.ndim}-D array, not a 2-D stamp"
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        return None, f"{where}: HDU {hdu} has {bad} NaN/infinite pixel(s)"
    return data, None


def load_stamps(rows: list[CatalogRow], *, flux_rtol: float = DEFAULT_FLUX_RTOL) -> list[StampResult]:
    """Read each row's stamp, verifying it against stamp_flux (see module docstring).

    A missing or unreadable image file raises InputError naming it (it breaks every row that
    uses it); everything else is per row."""
    by_file: dict[str, list[CatalogRow]] = {}
    for r in rows:
        by_file.setdefault(r.image_path, []).append(r)
    results: dict[tuple[str, int], StampResult] = {}
    for image_path, file_rows in by_file.items():
        path = Path(image_path)
        if not path.is_file():
            first = file_rows[0]
            raise InputError(
                str(path),
                f"image file named by {Path(first.catalog_path).name} (GAL_FILENAME of {len(file_rows)} row(s), "
                f"first row {first.row}) does not exist",
            )
        with _open_fits(path, "galaxy image") as hdul:
            image_hdus = _image_hdus(hdul)
            for rank, r in enumerate(file_rows):
                results[(r.catalog_path, r.row)] = _verify_row(r, hdul, image_hdus, rank, flux_rtol)
    return [results[(r.catalog_path, r.row)] for r in rows]


def _verify_row(r: CatalogRow, hdul, image_hdus: list[int], rank: int, flux_rtol: float) -> StampResult:
    fname = Path(r.image_path).name
    where = f"{Path(r.catalog_path).name} row {r.row} (IDENT {r.ident}) -> {fname}"
    image, problem = _stamp_at(hdul, r.gal_hdu, where)
    if not np.isfinite(r.stamp_flux):
        # Nothing to verify against: the stamp is taken on trust and the report says so.
        if problem:
            return StampResult(r, None, r.gal_hdu, problem)
        return StampResult(r, image, r.gal_hdu, note="no stamp_flux column: GAL_HDU not verified")
    if image is not None and abs(image.sum() - r.stamp_flux) <= _flux_tolerance(image):
        return StampResult(r, image, r.gal_hdu)

    order_hdu = image_hdus[rank] if rank < len(image_hdus) else None
    if order_hdu is not None and order_hdu != r.gal_hdu:
        alt, _ = _stamp_at(hdul, order_hdu, where)
        if alt is not None and abs(alt.sum() - r.stamp_flux) <= _flux_tolerance(alt):
            found = f"sum {image.sum():.6g}" if image is not None else (problem or "no stamp")
            msg = (
                f"{where}: GAL_HDU={r.gal_hdu} does not hold this galaxy ({found} vs stamp_flux "
                f"{r.stamp_flux:.6g}); HDU {order_hdu} (catalogue order) matches stamp_flux: repaired to HDU {order_hdu}"
            )
            log.warning(msg)
            return StampResult(r, alt, order_hdu, note=f"GAL_HDU repaired {r.gal_hdu} -> {order_hdu}")

    if image is None:
        return StampResult(r, None, r.gal_hdu, problem)
    rel = image.sum() / r.stamp_flux - 1.0 if r.stamp_flux != 0 else np.inf
    if abs(rel) <= flux_rtol:
        note = (
            f"stamp sum {image.sum():.6g} is {100 * rel:+.2f}% off stamp_flux {r.stamp_flux:.6g} "
            f"(within flux_rtol {flux_rtol:g}, no other HDU matches): kept"
        )
        log.warning("%s: HDU %d %s", where, r.gal_hdu, note)
        return StampResult(r, image, r.gal_hdu, note=note)
    return StampResult(
        r,
        None,
        r.gal_hdu,
        f"{where}: HDU {r.gal_hdu} flux mismatch: stamp sum {image.sum():.6g} vs stamp_flux {r.stamp_flux:.6g} "
        f"({100 * rel:+.2f}%), and the catalogue-order HDU {order_hdu} does not match either",
    )
