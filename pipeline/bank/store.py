"""The bank's HDF5 format, and the read API the injection uses.

Layout (format_version 1):
  /images            float32 [N, ny, nx]  sky-subtracted HST F814W flux per pixel, nanomaggies
  /catalog/<column>  1-D arrays of length N (see CATALOG_COLUMNS)
  root attributes    format_version, pixel_scale_arcsec, image_units, zero_point_ab,
                     hlr_filter_arcsec [lo, hi], stamp_shape, created_by
Total source flux is `images[i].sum()` (flux per pixel, *not* surface brightness: the injection
divides by pixel_scale_arcsec**2 when it hands the stamp to lenstronomy INTERPOL).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import InputError

FORMAT_VERSION = 1
REQUIRED_ATTRS = ("format_version", "pixel_scale_arcsec", "image_units", "zero_point_ab", "hlr_filter_arcsec")
#: column -> (dtype, unit, meaning)
CATALOG_COLUMNS = {
    "ident": ("S", "", "catalogue IDENT of the galaxy"),
    "origin": ("S", "", "catalogue file and row the galaxy came from"),
    "flux_nmgy": ("f8", "nmgy", "sum of the stamp after sky subtraction"),
    "mag_f814w": ("f8", "AB mag", "F814W magnitude from flux_nmgy"),
    "hlr_arcsec": ("f8", "arcsec", "half-light radius measured on the stamp (circular apertures)"),
    "hlr_arcsec_catalog": ("f8", "arcsec", "catalogue (Sersic fit) half-light radius; nan if none"),
    "pixel_scale_arcsec_source": ("f8", "arcsec/pixel", "pixel scale of the catalogue stamp before resampling"),
    "flux_fraction_in_stamp": ("f8", "", "flux_nmgy over the galaxy's flux on its full catalogue stamp (<1: cropped)"),
    "hlr_arcsec_in_stamp": ("f8", "arcsec", "half-light radius of the light inside the bank stamp (truncated)"),
    "mag_f814w_catalog": ("f8", "AB mag", "catalogue MAG (F814W mag_auto); nan if none"),
    "zphot": ("f8", "", "photometric redshift from the catalogue; nan if none"),
}
#: columns every bank has; the others are optional for readers
REQUIRED_COLUMNS = ("ident", "flux_nmgy", "hlr_arcsec")


@dataclass
class CosmosBank:
    path: str
    images: np.ndarray  # float32 [N, ny, nx], nanomaggies per pixel
    pixel_scale_arcsec: float
    hlr_arcsec: np.ndarray
    flux_nmgy: np.ndarray
    ident: np.ndarray
    hlr_filter_arcsec: tuple[float, float]
    checksum: str  # sha256 of the file
    #: optional catalogue columns (nan when the bank has none)
    hlr_in_stamp_arcsec: np.ndarray | None = None
    zphot: np.ndarray | None = None

    def column(self, name: str) -> np.ndarray:
        """An optional per-galaxy column as float64, nan-filled when the bank lacks it."""
        v = {"hlr_in_stamp_arcsec": self.hlr_in_stamp_arcsec, "zphot": self.zphot}[name]
        return np.full(self.n, np.nan) if v is None else v

    @property
    def n(self) -> int:
        return int(self.images.shape[0])

    def image(self, index: int) -> np.ndarray:
        """The stamp of galaxy `index` (flux per pixel, nmgy). Raises InputError when out of range."""
        if not 0 <= int(index) < self.n:
            raise InputError(f"{self.path}: cosmos_index", f"index {index} out of range: the bank holds {self.n} galaxies")
        return self.images[int(index)]


def file_sha256(path: str | Path) -> str:
    """The bank file's sha256 (pipeline.storage.sha256, the project's one file hash)."""
    from pipeline.storage import sha256  # noqa: PLC0415

    return sha256(str(path))


def open_bank(path: str | Path) -> CosmosBank:
    """Read a whole bank into memory (production: 20,000 x 96 x 96 float32 = 737 MB... see
    docs; the demo bank is a few MB). Raises InputError naming the file for any format problem."""
    import h5py  # noqa: PLC0415 - executors import lazily

    path = str(path)
    if not Path(path).is_file():
        raise InputError(path, "no such COSMOS bank file")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(path, f"not an HDF5 COSMOS bank ({exc})") from None
    with fh:
        missing = [a for a in REQUIRED_ATTRS if a not in fh.attrs]
        if missing:
            raise InputError(path, f"bank is missing attribute(s) {missing}")
        if int(fh.attrs["format_version"]) != FORMAT_VERSION:
            raise InputError(path, f"bank format_version {fh.attrs['format_version']} != {FORMAT_VERSION}")
        if "images" not in fh or "catalog" not in fh:
            raise InputError(path, "bank needs datasets /images and /catalog")
        cat = fh["catalog"]
        absent = [c for c in REQUIRED_COLUMNS if c not in cat]
        if absent:
            raise InputError(path, f"bank catalog is missing column(s) {absent}")
        images = np.asarray(fh["images"][...], dtype=np.float32)
        if images.ndim != 3 or images.shape[0] == 0:
            raise InputError(path, f"/images must be [N>0, ny, nx], got shape {images.shape}")
        wrong_len = {c: cat[c].shape for c in REQUIRED_COLUMNS if cat[c].shape != (images.shape[0],)}
        if wrong_len:
            raise InputError(path, f"catalog column(s) {wrong_len} do not have one entry per image ({images.shape[0]})")
        if not float(fh.attrs["pixel_scale_arcsec"]) > 0:
            raise InputError(path, f"pixel_scale_arcsec attribute must be > 0, got {fh.attrs['pixel_scale_arcsec']}")
        bank = CosmosBank(
            path=path,
            images=images,
            pixel_scale_arcsec=float(fh.attrs["pixel_scale_arcsec"]),
            hlr_arcsec=np.asarray(cat["hlr_arcsec"][...], dtype=np.float64),
            flux_nmgy=np.asarray(cat["flux_nmgy"][...], dtype=np.float64),
            ident=np.asarray(cat["ident"][...]).astype(str),
            hlr_filter_arcsec=tuple(float(v) for v in fh.attrs["hlr_filter_arcsec"]),
            checksum="",
            hlr_in_stamp_arcsec=(np.asarray(cat["hlr_arcsec_in_stamp"][...], dtype=np.float64)
                                 if "hlr_arcsec_in_stamp" in cat else None),
            zphot=np.asarray(cat["zphot"][...], dtype=np.float64) if "zphot" in cat else None,
        )
    if not np.all(np.isfinite(bank.images)):
        raise InputError(path, "bank images contain NaN or infinite pixels")
    bank.checksum = file_sha256(path)
    return bank


def write_bank(
    out_path: str | Path,
    images: np.ndarray,
    catalog: dict[str, np.ndarray],
    *,
    pixel_scale_arcsec: float,
    hlr_filter_arcsec: tuple[float, float],
    created_by: str,
    extra_attrs: dict | None = None,
) -> str:
    """Write a format_version-1 bank (layout in the module docstring) and return its sha256.

    `images` are flux per pixel in nanomaggies; `catalog` maps CATALOG_COLUMNS names to arrays
    of length N (the required ones must be present, unknown names are refused so a typo cannot
    silently create a column nobody reads). Each catalog dataset carries `unit` and
    `description` attributes. The file is written beside its destination and renamed into
    place, so a reader never sees half a bank."""
    import os  # noqa: PLC0415

    import h5py  # noqa: PLC0415

    from pipeline.units import NMGY_ZEROPOINT_AB  # noqa: PLC0415

    out_path = Path(out_path)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3 or images.shape[0] == 0:
        raise InputError(str(out_path), f"a bank needs images [N>0, ny, nx], got shape {images.shape}")
    if not np.all(np.isfinite(images)):
        raise InputError(str(out_path), "refusing to write NaN or infinite pixels into a bank")
    unknown = sorted(set(catalog) - set(CATALOG_COLUMNS))
    if unknown:
        raise InputError(str(out_path), f"unknown catalog column(s) {unknown}; known: {list(CATALOG_COLUMNS)}")
    absent = [c for c in REQUIRED_COLUMNS if c not in catalog]
    if absent:
        raise InputError(str(out_path), f"catalog is missing required column(s) {absent}")
    n = images.shape[0]
    for name, values in catalog.items():
        if len(values) != n:
            raise InputError(str(out_path), f"catalog column {name} has {len(values)} entries for {n} images")
    lo, hi = (float(v) for v in hlr_filter_arcsec)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as fh:
            fh.attrs["format_version"] = FORMAT_VERSION
            fh.attrs["pixel_scale_arcsec"] = float(pixel_scale_arcsec)
            fh.attrs["image_units"] = "nanomaggies per pixel (flux, not surface brightness)"
            fh.attrs["zero_point_ab"] = float(NMGY_ZEROPOINT_AB)
            fh.attrs["hlr_filter_arcsec"] = np.array([lo, hi], dtype=np.float64)
            fh.attrs["stamp_shape"] = np.array(images.shape[1:], dtype=np.int64)
            fh.attrs["created_by"] = str(created_by)
            for key, value in (extra_attrs or {}).items():
                fh.attrs[key] = value
            ds = fh.create_dataset("images", data=images, compression="gzip", compression_opts=4, shuffle=True, chunks=(1, *images.shape[1:]))
            ds.attrs["unit"] = "nmgy"
            grp = fh.create_group("catalog")
            for name, values in catalog.items():
                kind, unit, meaning = CATALOG_COLUMNS[name]
                arr = np.asarray(values).astype("S") if kind == "S" else np.asarray(values, dtype=kind)
                col = grp.create_dataset(name, data=arr)
                col.attrs["unit"] = unit
                col.attrs["description"] = meaning
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return file_sha256(out_path)
