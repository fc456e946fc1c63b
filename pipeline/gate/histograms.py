"""Job 2 of the profile: the histograms (fixed physical bin edges) and COSMOS use, in one scan.

One hash aggregate, no string keys: each row emits one packed key per group of histograms (e.g.
theta_E bin x arc_snr bin x 2-D bin), ~4 keys per injection and 3 per control instead of one
exploded struct per histogram; the driver unpacks the keys back into the per-variable histograms.
COSMOS use is one more keyed entry per ok injection (its cosmos_index).

Fixed edges make one pass enough and let `ks_from_counts` compare two binned samples (the binned
Kolmogorov-Smirnov statistic is a lower bound on the exact one; 100 bins resolve 1% of a range).
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import functions as F

from pipeline.bands import BY_NAME, reference_first

THETA_E_BINS = 20

#: name -> (expression, lo, hi, bins, log10 axis?, which rows). Fixed physical edges.
HISTOGRAMS = {
    **{f"psfsize_{b}": (f"psfsize_{b}", *BY_NAME[b].psfsize_hist_range_arcsec, 100, False, "all")
       for b in reference_first()},
    "psfdepth_r": ("psfdepth_r", 21.0, 26.0, 100, False, "all"),
    "lens_mag_r": ("lens_mag_r", 15.0, 23.0, 100, False, "all"),
    "arc_snr": ("arc_snr", -2.0, 3.0, 50, True, "inj"),
    "magnification": ("magnification", 0.0, 2.5, 50, True, "inj"),
    "cosmos_hlr_arcsec": ("cosmos_hlr_arcsec", 0.0, 4.0, 40, False, "inj"),
}
#: 2-D histograms (x, y) for the report: arc_snr against theta_E and against theta_E / PSF FWHM.
HIST2D = {
    "arc_snr_vs_theta_e": (("theta_e_arcsec", 0.0, 3.0, 15, False), ("arc_snr", -2.0, 3.0, 25, True)),
    "arc_snr_vs_theta_over_psf": (("theta_e_arcsec / psf_fwhm_r", 0.0, 3.0, 15, False), ("arc_snr", -2.0, 3.0, 25, True)),
}
_ALL_ROWS = tuple(name for name, spec in HISTOGRAMS.items() if spec[-1] == "all")
#: Histograms counted together in one packed key per row. Histograms of one group share their
#: rows ("all" or ok injections); the number of distinct packed keys stays small because the
#: members are functions of one or two variables (theta_E and arc_snr in the first group).
HIST_GROUPS = (
    ("inj", ("theta_e", "arc_snr", "arc_snr_vs_theta_e")),
    ("inj", ("arc_snr_vs_theta_over_psf",)),
    ("inj", ("magnification", "cosmos_hlr_arcsec")),
    # the per-row scalars of every row, two to a packed key (the values are 100 bins each)
    *(("all", _ALL_ROWS[i:i + 2]) for i in range(0, len(_ALL_ROWS), 2)),
)
#: Packed key of a null cosmos_index (COSMOS use is counted as one more keyed entry).
_NULL_KEY = -(2**62)


def _bin(expr, lo, hi, nbins, log):
    x = F.expr(expr)
    if log:
        x = F.when(x > 0, F.log10(x)).otherwise(F.lit(lo))  # arc_snr <= 0 lands in the first bin
    b = F.floor((x - F.lit(lo)) / F.lit((hi - lo) / nbins)).cast("int")
    return F.when(F.expr(expr).isNull() | F.isnan(F.expr(expr)), F.lit(None)).otherwise(
        F.greatest(F.lit(0), F.least(F.lit(nbins - 1), b)))


def _hist_specs(run_config) -> dict:
    """histogram name -> (bin Column (NULL where the row has no value), number of bins)."""
    specs = {"theta_e": (_bin("theta_e_arcsec", run_config.theta_e_min_arcsec, run_config.theta_e_max_arcsec,
                              THETA_E_BINS, False), THETA_E_BINS)}
    for name, (expr, lo, hi, nb, log, _) in HISTOGRAMS.items():
        specs[name] = (_bin(expr, lo, hi, nb, log), nb)
    for name, ((ex, xlo, xhi, xn, xlog), (ey, ylo, yhi, yn, ylog)) in HIST2D.items():
        specs[name] = (_bin(ex, xlo, xhi, xn, xlog) * yn + _bin(ey, ylo, yhi, yn, ylog), xn * yn)
    return specs


def count_histograms(df, run_config):
    """Job 2: (hist {split: {name: {"control": [...], "injection": [...]}}},
    reuse {split: {"unique": n, "max_uses": n}})."""
    col = F.col
    inj_ok = (~col("is_control")) & col("cutout_ok")
    specs = _hist_specs(run_config)
    keys = []
    for rows, names in HIST_GROUPS:
        key = F.lit(0).cast("long")
        for name in names:  # mixed radix; bin n (one past the last) marks "no value"
            b, n = specs[name]
            key = key * F.lit(n + 1) + F.coalesce(b, F.lit(n)).cast("long")
        if rows == "inj":
            key = F.when(inj_ok, key)
        keys.append(key)
    keys.append(F.when(inj_ok, F.coalesce(col("cosmos_index").cast("long"), F.lit(_NULL_KEY))))
    counted = (df.select("region_split", col("is_control").alias("ctl"),
                         F.posexplode(F.array(*keys)).alias("g", "k"))
               .where(col("k").isNotNull()).groupBy("region_split", "ctl", "g", "k").count().collect())
    sizes = {name: n for name, (_, n) in specs.items()}
    hist, cosmos = {}, {}
    for r in counted:
        split, g, k, n = r["region_split"], r["g"], r["k"], int(r["count"])
        if g == len(HIST_GROUPS):
            uses = cosmos.setdefault(split, {})
            uses[k] = uses.get(k, 0) + n
            continue
        label = "control" if r["ctl"] else "injection"
        for name in reversed(HIST_GROUPS[g][1]):
            size = sizes[name]
            k, b = divmod(k, size + 1)
            if b < size:
                h = hist.setdefault(split, {}).setdefault(name, {"control": [0] * size, "injection": [0] * size})
                h[label][b] += n
    reuse = {split: {"unique": len(u), "max_uses": max(u.values())} for split, u in cosmos.items()}
    return hist, reuse


def edges(name, run_config) -> dict:
    """The bin edges of histogram `name` as the profile records them beside its counts."""
    if name == "theta_e":
        return {"lo": run_config.theta_e_min_arcsec, "hi": run_config.theta_e_max_arcsec, "log10": False}
    if name in HISTOGRAMS:
        _, lo, hi, _, log, _ = HISTOGRAMS[name]
        return {"lo": lo, "hi": hi, "log10": log}
    (_, xlo, xhi, xn, xlog), (_, ylo, yhi, yn, ylog) = HIST2D[name]
    return {"x": [xlo, xhi, xn, xlog], "y": [ylo, yhi, yn, ylog]}


def ks_from_counts(a, b) -> float:
    """KS statistic between two binned samples (max |CDF_a - CDF_b| at the bin edges)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.sum() == 0 or b.sum() == 0:
        return float("nan")
    return float(np.max(np.abs(np.cumsum(a) / a.sum() - np.cumsum(b) / b.sum())))
