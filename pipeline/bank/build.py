"""Build the COSMOS source bank (HDF5, see store.py) from GalSim real-galaxy catalogues.

Per galaxy: read and verify its stamp (galsim_catalog), subtract NOISE_MEAN, convert HST counts/s
to nanomaggies, measure its circular half-light radius on the *whole* catalogue stamp (the galaxy's
size, comparable with the catalogue's Sersic value; the 96x96 bank stamp would truncate the
largest galaxies: this is the radius the hlr filter means), clean it (measure.clean_galaxy: sky
noise and neighbours outside the galaxy's grown segmentation set to 0, and the HST noise inside it
that is not significant at any wavelet scale removed: measure.clean_galaxy_denoised), resample
flux-conservingly to the bank pixel scale when it differs, put the centroid at the stamp centre,
crop or zero-pad to the bank stamp, and apply the hlr filter. The bank records the flux of the
clean bank stamp (the injection's normalisation) and its magnitude, the fraction of the galaxy's
flux inside the bank stamp and the half-light radius of the light inside it (truncation).

Centring convention: the flux-weighted centroid ends up within half a pixel of the geometric
centre ((n-1)/2, (n-1)/2) of the bank stamp. At the bank's own pixel scale the stamp is only
shifted by whole pixels, so its pixels (and their noise) are the catalogue's own; resampling
places the centroid exactly. Padding is 0, the sky level of a sky-subtracted stamp.
"""

from __future__ import annotations

import time
from functools import partial
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.bank._pool import ordered_map
from pipeline.bank.galsim_catalog import DEFAULT_FLUX_RTOL, load_stamps, read_catalog
from pipeline.bank.measure import clean_galaxy, clean_galaxy_denoised, half_light_radius_in_stamp_arcsec, measure_galaxy
from pipeline.bank.store import write_bank
from pipeline.errors import InputError
from pipeline.units import HST_COUNTS_PER_S_TO_NMGY, HST_F814W_ZEROPOINT_AB, nmgy_to_mag

#: relative pixel-scale difference below which no resampling is done (catalogues print 0.03)
SAME_SCALE_RTOL = 1e-6


@dataclass(frozen=True)
class KeptGalaxy:
    index: int  # position in the bank
    ident: str
    origin: str  # "<catalogue file> row <r> HDU <h>"
    hlr_arcsec: float
    hlr_arcsec_catalog: float
    flux_nmgy: float
    mag_f814w: float
    note: str | None = None


@dataclass(frozen=True)
class LeftOutGalaxy:
    ident: str
    origin: str
    reason: str


@dataclass
class BuildReport:
    out_path: str
    catalogs: list[str]
    kept: list[KeptGalaxy] = field(default_factory=list)
    left_out: list[LeftOutGalaxy] = field(default_factory=list)
    seconds: float = 0.0
    checksum: str = ""

    def lines(self) -> list[str]:
        """Human-readable report: every galaxy kept and every one left out, with reasons."""
        out = [f"bank {self.out_path}: {len(self.kept)} kept, {len(self.left_out)} left out, {self.seconds:.1f} s, sha256 {self.checksum}"]
        for k in self.kept:
            cat = f"{k.hlr_arcsec_catalog:.3f}" if np.isfinite(k.hlr_arcsec_catalog) else "n/a"
            extra = f"  [{k.note}]" if k.note else ""
            out.append(
                f"  kept     {k.ident:>10} {k.origin}: hlr {k.hlr_arcsec:.3f}\" (catalogue {cat}), "
                f"flux {k.flux_nmgy:.3f} nmgy, mag {k.mag_f814w:.2f}{extra}"
            )
        for lo in self.left_out:
            out.append(f"  left out {lo.ident:>10} {lo.reason}")
        return out


def overlap_matrix(n_in: int, n_out: int, start_in_pix: float, ratio: float) -> np.ndarray:
    """W[j, i] = fraction of input pixel i that falls in output pixel j, along one axis.

    Output pixel j spans input coordinates [start + j*ratio, start + (j+1)*ratio] (input pixel i
    spans [i-0.5, i+0.5]); ratio = output/input pixel size. Each input pixel's flux is spread
    by overlap length, so the total is conserved wherever the output covers the input."""
    out_lo = start_in_pix + np.arange(n_out)[:, None] * ratio
    in_lo = np.arange(n_in)[None, :] - 0.5
    overlap = np.minimum(out_lo + ratio, in_lo + 1.0) - np.maximum(out_lo, in_lo)
    return np.clip(overlap, 0.0, None)


def recentre(
    image: np.ndarray,
    centroid_xy_pix: tuple[float, float],
    in_scale_arcsec: float,
    out_scale_arcsec: float,
    stamp_size_pix: int,
) -> np.ndarray:
    """The bank stamp: `image` (flux per pixel) resampled to out_scale, centroid at the centre,
    cropped or zero-padded to stamp_size_pix square. See module docstring for the convention."""
    n = int(stamp_size_pix)
    half = (n - 1) / 2.0
    cx, cy = centroid_xy_pix
    if abs(in_scale_arcsec / out_scale_arcsec - 1.0) <= SAME_SCALE_RTOL:
        out = np.zeros((n, n), dtype=np.float64)
        # Output pixel j shows input pixel j + shift; round so the centroid lands within 0.5 px.
        sy, sx = int(np.round(cy - half)), int(np.round(cx - half))
        ny, nx = image.shape
        y0, y1 = max(0, -sy), min(n, ny - sy)
        x0, x1 = max(0, -sx), min(n, nx - sx)
        if y1 > y0 and x1 > x0:
            out[y0:y1, x0:x1] = image[y0 + sy : y1 + sy, x0 + sx : x1 + sx]
        return out
    ratio = out_scale_arcsec / in_scale_arcsec
    # Output centre (n/2 pixels from its edge) sits on the centroid.
    wy = overlap_matrix(image.shape[0], n, cy - (n / 2.0) * ratio, ratio)
    wx = overlap_matrix(image.shape[1], n, cx - (n / 2.0) * ratio, ratio)
    return wy @ image @ wx.T


def _process(stamp, *, stamp_size_pix, pixel_scale_arcsec, hlr_min_arcsec, hlr_max_arcsec, denoise=True):
    """(bank stamp, catalogue values) or (None, reason) for one verified stamp."""
    row = stamp.row
    where = f"HDU {stamp.hdu}"
    if not (np.isfinite(row.pixel_scale_arcsec) and row.pixel_scale_arcsec > 0):
        return None, f"{where}: PIXEL_SCALE {row.pixel_scale_arcsec} is not a positive number"
    if not np.isfinite(row.noise_mean):
        return None, f"{where}: NOISE_MEAN {row.noise_mean} is not finite"
    flux_img = (stamp.image - row.noise_mean) * HST_COUNTS_PER_S_TO_NMGY
    noise_sigma = None
    if np.isfinite(row.noise_variance) and row.noise_variance > 0:
        noise_sigma = float(np.sqrt(row.noise_variance)) * HST_COUNTS_PER_S_TO_NMGY
    m = measure_galaxy(flux_img, row.pixel_scale_arcsec, noise_sigma=noise_sigma)
    if not np.isfinite(m.hlr_arcsec):
        return None, f"{where}: no galaxy detected at the stamp centre (half-light radius not measurable)"
    if not hlr_min_arcsec <= m.hlr_arcsec <= hlr_max_arcsec:
        return None, f"{where}: measured hlr {m.hlr_arcsec:.3f} arcsec outside the filter [{hlr_min_arcsec:g}, {hlr_max_arcsec:g}]"
    # the source the injection lenses: the galaxy alone (sky noise and neighbours outside its
    # grown segmentation set to 0, measure.clean_galaxy), denoised inside it
    # (measure.clean_galaxy_denoised, pipeline.bank.denoise), and its flux measured on that
    try:
        clean_img, _ = clean_galaxy_denoised(flux_img) if denoise else clean_galaxy(flux_img)
    except InputError as exc:
        return None, f"{where}: cannot denoise: {exc}"

    bank_img = recentre(clean_img, (m.centroid_x_pix, m.centroid_y_pix), row.pixel_scale_arcsec, pixel_scale_arcsec, stamp_size_pix)
    flux_nmgy = float(bank_img.sum())
    if not flux_nmgy > 0:
        return None, f"{where}: bank stamp flux {flux_nmgy:.4g} nmgy is not positive"
    values = {
        "flux_nmgy": flux_nmgy,
        "mag_f814w": nmgy_to_mag(flux_nmgy),
        "hlr_arcsec": m.hlr_arcsec,
        "hlr_arcsec_in_stamp": half_light_radius_in_stamp_arcsec(bank_img, pixel_scale_arcsec),
        "hlr_arcsec_catalog": row.hlr_arcsec_catalog,
        "mag_f814w_catalog": row.mag,
        "zphot": row.zphot,
        "pixel_scale_arcsec_source": row.pixel_scale_arcsec,
        "flux_fraction_in_stamp": flux_nmgy / m.total_flux if m.total_flux > 0 else float("nan"),
    }
    return bank_img.astype(np.float32), values


def build_bank(
    catalogs: list[str | Path],
    out_path: str | Path,
    *,
    stamp_size_pix: int = 96,
    pixel_scale_arcsec: float = 0.03,
    hlr_min_arcsec: float = 0.1,
    hlr_max_arcsec: float = 1.0,
    strict: bool = False,
    flux_rtol: float = DEFAULT_FLUX_RTOL,
    denoise: bool = True,
) -> BuildReport:
    """Build an HDF5 bank from GalSim real-galaxy catalogue files; see the module docstring.

    Whole-file problems raise InputError naming the file. A row that cannot be used is left out
    with its reason in the report. strict=True raises InputError on the first such row instead,
    and also on a row that was only kept by a guess (GAL_HDU repaired, stamp_flux matched only
    within flux_rtol).
    denoise=False keeps the HST noise inside the galaxy's segmentation (the bank before the
    denoising of docs/physics.md, "Clean sources"; for comparisons only).
    A bank that would hold no galaxy is an InputError."""
    t0 = time.perf_counter()
    if not catalogs:
        raise InputError("catalogs", "no catalogue given")
    if int(stamp_size_pix) < 8:
        raise InputError("stamp_size_pix", f"must be at least 8, got {stamp_size_pix}")
    if not pixel_scale_arcsec > 0:
        raise InputError("pixel_scale_arcsec", f"must be > 0, got {pixel_scale_arcsec}")
    if not 0 <= hlr_min_arcsec < hlr_max_arcsec:
        raise InputError("hlr filter", f"need 0 <= hlr_min < hlr_max, got [{hlr_min_arcsec}, {hlr_max_arcsec}]")
    report = BuildReport(out_path=str(out_path), catalogs=[str(c) for c in catalogs])
    images: list[np.ndarray] = []
    columns: dict[str, list] = {"ident": [], "origin": []}
    # Read every catalogue before any stamp, so a broken file fails fast.
    all_rows = [read_catalog(c) for c in catalogs]
    process = partial(_process, stamp_size_pix=stamp_size_pix, pixel_scale_arcsec=pixel_scale_arcsec,
                      hlr_min_arcsec=hlr_min_arcsec, hlr_max_arcsec=hlr_max_arcsec, denoise=bool(denoise))
    for rows in all_rows:
        stamps = list(load_stamps(rows, flux_rtol=flux_rtol))
        # measuring is per stamp and pure: done in a pool, then taken in catalogue order
        measured = iter(ordered_map(process, [s for s in stamps if s.problem is None]))
        for stamp in stamps:
            origin = f"{stamp.row.origin} HDU {stamp.hdu}"
            if stamp.problem is None:
                bank_img, values = next(measured)
                reason = f"{stamp.row.origin} {values}" if bank_img is None else None
            else:
                reason = stamp.problem
            if strict and reason is None and stamp.note is not None:
                # strict accepts only rows that verify exactly: a repaired GAL_HDU or a loose
                # stamp_flux match is a guess, however good.
                reason = f"{stamp.row.origin} HDU {stamp.hdu}: {stamp.note}"
            if reason is not None:
                if strict:
                    raise InputError(stamp.row.catalog_path, f"strict build: {reason}")
                report.left_out.append(LeftOutGalaxy(stamp.row.ident, origin, reason))
                continue
            report.kept.append(
                KeptGalaxy(
                    index=len(images),
                    ident=stamp.row.ident,
                    origin=origin,
                    hlr_arcsec=values["hlr_arcsec"],
                    hlr_arcsec_catalog=values["hlr_arcsec_catalog"],
                    flux_nmgy=values["flux_nmgy"],
                    mag_f814w=values["mag_f814w"],
                    note=stamp.note,
                )
            )
            images.append(bank_img)
            columns["ident"].append(stamp.row.ident)
            columns["origin"].append(origin)
            for key, value in values.items():
                columns.setdefault(key, []).append(value)
    if not images:
        reasons = "; ".join(lo.reason for lo in report.left_out[:5])
        raise InputError(str(out_path), f"no galaxy survived, refusing to write an empty bank (first reasons: {reasons})")
    report.checksum = write_bank(
        out_path,
        np.stack(images),
        {k: np.asarray(v) for k, v in columns.items()},
        pixel_scale_arcsec=pixel_scale_arcsec,
        hlr_filter_arcsec=(hlr_min_arcsec, hlr_max_arcsec),
        created_by="pipeline.bank.build.build_bank",
        extra_attrs={
            "source_catalogs": np.array([Path(c).name for c in catalogs], dtype="S"),
            "source_zero_point_ab": HST_F814W_ZEROPOINT_AB,
            "counts_per_s_to_nmgy": HST_COUNTS_PER_S_TO_NMGY,
        },
    )
    report.seconds = time.perf_counter() - t0
    return report
