"""Per-stamp arc metrics (SPEC section 6): arc_snr, arc_snr_footprint, arc_snr_peak,
arc_masked_frac, bad_pixel_frac.

Two SNRs, named for what they are:

* arc_snr is the SEED's quantity (phase4c_production_review.md section 6.1), so that the seed's
  percentiles compare like with like: the sum runs over EVERY good pixel of the stamp,
      arc_snr = sum(arc * g) / sqrt(sum(var * g)),  var = 1 / invvar,  g = good pixels.
  It is a whole-stamp (aperture of 64 x 64 pixels) SNR: the noise of every good pixel enters,
  whether the arc reaches it or not, so it is well below what a matched filter would see.
* arc_snr_footprint is the same sum restricted to the arc's footprint (m = footprint & good), a
  better detectability measure (it is 2.4-4.5x arc_snr on the demo priors). Footprint (exact
  definition): the pixels where the noiseless, PSF-convolved r-band arc is at least
  FOOTPRINT_PEAK_FRACTION (10%) of its own maximum. Why this one: it depends only on the
  noiseless model (not on the noise, the LRG or the mask), so the same arc gives the same
  footprint in any stamp; it follows the arc's shape (a ring, a pair of images) rather than a
  circle; and it keeps the bright parts of every image while dropping the faint PSF wings, where
  a pixel adds more noise than signal (for a Gaussian image the sum/sqrt(N) optimum is near 28% of
  the peak; 10% keeps more of the flux at a small cost in SNR, so counter-images down to a tenth
  of the main image's peak still count).

Good pixels: pipeline.survey.maskbits.good_pixels (positive finite invvar, no BAD_MASKBITS bit).

  arc_snr_peak    = max over footprint & good of arc * sqrt(invvar)
  arc_masked_frac = positive r-band arc flux on NOT-good pixels / positive r-band arc flux (whole
                    stamp). Positive part only: a lensed arc can have slightly negative pixels
                    (HST noise in a bank stamp), which would push a plain flux ratio outside [0, 1].
  bad_pixel_frac  = fraction of the stamp's [y, x] pixels that are not good in at least one band
                    (a pixel unusable in any band is unusable for a grz classifier)

When no pixel is good (or every footprint pixel is masked), the SNRs concerned are 0 (nothing
measurable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.bands import REFERENCE_BAND
from pipeline.survey.maskbits import good_pixels

#: Footprint threshold, as a fraction of the r-band arc's peak.
FOOTPRINT_PEAK_FRACTION = 0.10


@dataclass(frozen=True)
class ArcMetrics:
    #: seed definition: every good pixel of the stamp
    arc_snr: float
    #: footprint & good pixels
    arc_snr_footprint: float
    arc_snr_peak: float
    arc_masked_frac: float
    footprint_pixels: int


def arc_footprint(arc_r: np.ndarray, peak_fraction: float = FOOTPRINT_PEAK_FRACTION) -> np.ndarray:
    """Boolean map: arc >= peak_fraction x max(arc). Empty if the arc has no positive pixel."""
    peak = float(np.max(arc_r))
    if not peak > 0:
        return np.zeros(arc_r.shape, dtype=bool)
    return arc_r >= peak_fraction * peak


def arc_metrics(arc_r: np.ndarray, invvar_r: np.ndarray, maskbits: np.ndarray,
                peak_fraction: float = FOOTPRINT_PEAK_FRACTION) -> ArcMetrics:
    """r-band arc metrics for one stamp (arrays [y, x]; arc in nmgy/pixel, invvar in 1/nmgy^2)."""
    arc = np.asarray(arc_r, dtype=np.float64)
    invvar = np.asarray(invvar_r, dtype=np.float64)
    good = good_pixels(invvar, maskbits)
    snr = float(arc[good].sum() / np.sqrt((1.0 / invvar[good]).sum())) if good.any() else 0.0
    m = arc_footprint(arc, peak_fraction) & good
    if m.any():
        var = 1.0 / invvar[m]
        snr_footprint = float(arc[m].sum() / np.sqrt(var.sum()))
        snr_peak = float(np.max(arc[m] * np.sqrt(invvar[m])))
    else:
        snr_footprint, snr_peak = 0.0, 0.0
    positive = np.clip(arc, 0.0, None)
    total = float(positive.sum())
    masked = float(positive[~good].sum() / total) if total > 0 else float("nan")
    return ArcMetrics(arc_snr=snr, arc_snr_footprint=snr_footprint, arc_snr_peak=snr_peak, arc_masked_frac=masked, footprint_pixels=int(m.sum()))


def bad_pixel_frac(invvar: np.ndarray, maskbits: np.ndarray) -> float:
    """Fraction of [y, x] pixels that are bad in at least one band (invvar [nb, y, x])."""
    good_all = np.all([good_pixels(iv, maskbits) for iv in np.asarray(invvar)], axis=0)
    return float(1.0 - good_all.mean())


def arc_fluxes(arcs: np.ndarray) -> list[float]:
    """Arc flux in the stamp per band (nmgy), summed in float64."""
    return [float(np.asarray(a, dtype=np.float64).sum()) for a in arcs]


#: The per-row columns that the row's own stored pixels determine (`pixel_quantities`). The
#: injection records them from the stored pixels and the gate recomputes them from the same
#: pixels (pipeline.gate.pixel_agreement), so a row whose numbers contradict its pixels is caught.
PIXEL_DERIVED_SCALARS = ("arc_snr", "arc_snr_footprint", "arc_snr_peak", "arc_masked_frac", "bad_pixel_frac")


def pixel_quantities(arc: np.ndarray | None, invvar: np.ndarray, maskbits: np.ndarray,
                     bands: tuple[str, ...] | list[str]) -> dict[str, float]:
    """Every per-row quantity that a row's stored pixels determine, by name.

    arc and invvar are [band, y, x] in the order `bands` (the dataset's declared band order), maskbits
    [y, x]. Controls (arc None) get bad_pixel_frac only; injections also arc_flux_<band> per band
    and the r-band arc metrics. This is the one definition: the injection calls it on the pixels it
    stores and the gate calls it again on the pixels it reads."""
    invvar = np.asarray(invvar)
    out = {"bad_pixel_frac": bad_pixel_frac(invvar, maskbits)}
    if arc is None:
        return out
    arc = np.asarray(arc)
    for band, flux in zip(bands, arc_fluxes(arc)):
        out[f"arc_flux_{band}"] = flux
    if REFERENCE_BAND in bands:
        r = list(bands).index(REFERENCE_BAND)
        m = arc_metrics(arc[r], invvar[r], maskbits)
        out.update(arc_snr=m.arc_snr, arc_snr_footprint=m.arc_snr_footprint, arc_snr_peak=m.arc_snr_peak,
                   arc_masked_frac=m.arc_masked_frac)
    return out
