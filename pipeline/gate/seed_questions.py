"""Answers to the seed review's section 10 questions that data can answer, from the dataset itself.

The seed (../shared/seed/phase4c_production_review.md) asked reviewers questions about numbers
that were measured on 3 files per split. Here each data question is answered from this dataset's
profile (every row, pipeline.gate.profile) and, where the profile holds no such statistic, from a
bounded sample of ok injection rows (`sample`, a pandas DataFrame; its size is stated in the
answer). Questions about the literature or about choices (Q5, Q7, Q11-Q15, Q17, Q18, Q20) are not
data questions and are not answered here.

`answer_seed_questions(profile, sample, ...)` returns
    {"questions": [{"id", "question", "answer", "values", "seed", "source"}], "sample_rows": n}
JSON-serialisable; the report renders it, validation.json can store it as is.

Sample columns used (any may be missing; the answer then says what could not be measured):
    arc_snr, arc_masked_frac, theta_e_arcsec, psf_fwhm_r, src_dmag, magnification,
    footprint_touches_edge (bool: the arc's footprint reaches the stamp's outer pixel ring).
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.bands import reference_first
from pipeline.contract import PARITY_COLUMNS, STAMP_SIZE_PIX
from pipeline.injection.metrics import FOOTPRINT_PEAK_FRACTION, arc_footprint
from pipeline.units import DR10_PIXSCALE_ARCSEC

#: The seed's section 9 numbers (3 files per split), for comparison.
SEED_ARC_SNR = {
    "train": {"mean": 7.33, "p5": 0.0, "p25": 2.1, "p50": 4.26, "p75": 8.77, "p95": 23.97,
              "gt_1_pct": 89.2, "gt_10_pct": 21.5},
    "val": {"mean": 7.49, "p5": 0.554, "p25": 1.9, "p50": 4.03, "p75": 8.3, "p95": 24.96,
            "gt_1_pct": 89.7, "gt_10_pct": 19.9},
    "test": {"mean": 7.26, "p5": 0.416, "p25": 2.16, "p50": 4.22, "p75": 8.43, "p95": 24.06,
             "gt_1_pct": 90.6, "gt_10_pct": 20.2},
}
SEED_ROWS = {"train": 2_261_200, "val": 5_529_200, "test": 3_961_200}
SEED_COSMOS_HLR_ARCSEC = (0.926, 4.602)
SEED_BANK_HLR_FILTER_ARCSEC = (0.1, 1.0)
SEED_PSFSIZE_R_ARCSEC = (0.9, 1.6)
#: Half the stamp's width: the largest radius fully inside the 64 x 64 stamp.
STAMP_HALF_WIDTH_ARCSEC = STAMP_SIZE_PIX / 2 * DR10_PIXSCALE_ARCSEC
#: theta_E / PSF FWHM above which a lens counts as resolved (an edge of histograms.HIST2D's 0.2-wide bins).
RESOLVED_RATIO = 1.0

SPLIT_ORDER = ("train", "val", "test")


def footprint_touches_edge(arc_r, peak_fraction: float = FOOTPRINT_PEAK_FRACTION) -> bool:
    """True when the arc's footprint (as arc_snr_footprint uses it) reaches the stamp's outermost pixels:
    part of the arc may then lie outside the stamp."""
    fp = arc_footprint(np.asarray(arc_r, dtype=np.float64), peak_fraction)
    return bool(fp[0, :].any() or fp[-1, :].any() or fp[:, 0].any() or fp[:, -1].any())


def _splits(profile):
    return sorted(profile["splits"], key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, str(s)))


def _f(x, nd=3):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return round(float(x), nd)


def _pct(x, nd=1):
    return None if x is None else round(100 * float(x), nd)


def _fmt(x, nd=2):
    return "n/a" if x is None else f"{x:.{nd}f}"


def _hist2d_x_marginal(profile, name):
    """(x bin edges, injection counts per x bin summed over splits) of a profile 2-D histogram."""
    total, spec = None, None
    for hs in profile.get("histograms", {}).values():
        h = hs.get(name)
        if not h:
            continue
        spec = h
        c = np.asarray(h["injection"], float)
        total = c if total is None else total + c
    if total is None:
        return None, None, None
    (xlo, xhi, xn, _), (ylo, yhi, yn, ylog) = spec["x"], spec["y"]
    grid = total.reshape(xn, yn)
    return np.linspace(xlo, xhi, xn + 1), grid, (ylo, yhi, yn, ylog)


def _grid_median(counts, ylo, yhi, yn, ylog):
    """Median of the y variable (bin centre) from 1-D counts over y bins."""
    n = counts.sum()
    if not n:
        return None
    k = int(np.searchsorted(np.cumsum(counts), n / 2))
    c = ylo + (k + 0.5) * (yhi - ylo) / yn
    return 10**c if ylog else c


def _col(sample, name):
    if sample is None or name not in getattr(sample, "columns", ()):
        return None
    v = np.asarray(sample[name], dtype=float)
    return v[np.isfinite(v)] if v.size else v


def q1_q16_arc_snr(profile):
    values, seed = {}, {}
    lines = []
    for split in _splits(profile):
        s = profile["splits"][split]
        v = {"mean": _f(s.get("arc_snr_mean")), **{f"p{q}": _f(s.get(f"arc_snr_p{q}")) for q in (5, 25, 50, 75, 95)},
             "gt_1_pct": _pct(s.get("arc_snr_gt1_frac")), "gt_10_pct": _pct(s.get("arc_snr_gt10_frac")),
             "injections": s.get("injections_ok"),
             # not the seed's quantity: shown beside it, never compared with the seed's figures
             "footprint": {**{f"p{q}": _f(s.get(f"arc_snr_footprint_p{q}")) for q in (5, 25, 50, 75, 95)},
                           "gt_1_pct": _pct(s.get("arc_snr_footprint_gt1_frac"))},
             "peak_gt_1_pct": _pct(s.get("arc_snr_peak_gt1_frac"))}
        values[split] = v
        seed[split] = SEED_ARC_SNR.get(split)
        ref = SEED_ARC_SNR.get(split, {})
        lines.append(f"{split}: mean {_fmt(v['mean'])} (seed {ref.get('mean', 'n/a')}), median {_fmt(v['p50'])} "
                     f"(seed {ref.get('p50', 'n/a')}), >1 {_fmt(v['gt_1_pct'], 1)}% (seed {ref.get('gt_1_pct', 'n/a')}%), "
                     f">10 {_fmt(v['gt_10_pct'], 1)}% (seed {ref.get('gt_10_pct', 'n/a')}%)")
    return values, seed, lines


def q1(profile, sample):
    values, seed, lines = q1_q16_arc_snr(profile)
    snr, th, dm = _col(sample, "arc_snr"), _col(sample, "theta_e_arcsec"), _col(sample, "src_dmag")
    extra = ""
    if snr is not None and th is not None and dm is not None and len(snr) == len(th) == len(dm):
        sel = (np.abs(th - 1.0) <= 0.15) & (np.abs(dm - 2.0) <= 0.5)
        values["theta_e_1_dmag_2"] = {"n": int(sel.sum()),
                                      "median_arc_snr": _f(np.median(snr[sel])) if sel.any() else None}
        extra = (f" The seed's example, theta_E 1.0+-0.15\" with a source 2+-0.5 mag fainter than the lens: "
                 f"{int(sel.sum())} such lenses in the sample" + (
                     f", median arc_snr {_fmt(values['theta_e_1_dmag_2']['median_arc_snr'])}." if sel.any() else
                     " (the run config's source magnitudes do not reach it)."))
    answer = ("arc_snr of the ok injections, every row (seed: 3 files per split). " + "; ".join(lines) + "." + extra)
    return answer, values, seed, "profile" + (" + sample" if extra else "")


def _median_ratio_text(values, seed) -> str:
    ratios = [v["p50"] / seed[k]["p50"] for k, v in values.items()
              if v.get("p50") is not None and (seed.get(k) or {}).get("p50")]
    if not ratios:
        return ""
    return f"Our median is {min(ratios):.2g}-{max(ratios):.2g}x the seed's. "


def q16(profile, sample):
    values, seed, _ = q1_q16_arc_snr(profile)
    parts = []
    for split, v in values.items():
        ref = seed.get(split) or {}
        parts.append(f"{split}: P5/P25/P50/P75/P95 = " + "/".join(_fmt(v[f"p{q}"]) for q in (5, 25, 50, 75, 95))
                     + " (seed " + "/".join(str(ref.get(f"p{q}", "n/a")) for q in (5, 25, 50, 75, 95)) + ")")
    fp = [f"{split}: " + "/".join(_fmt(v["footprint"][f"p{q}"]) for q in (5, 25, 50, 75, 95))
          + f", peak pixel SNR > 1 in {_fmt(v['peak_gt_1_pct'], 1)}%" for split, v in values.items()]
    answer = ("arc_snr as the seed defines it (whole stamp, every good pixel, r band), on every ok injection row "
              "(rank error <= rows/10,000). " + "; ".join(parts) + ". "
              + _median_ratio_text(values, seed) +
              "Where and why they differ: the brightness model differs. With the physical source model each source "
              "has its own galaxy's F814W magnitude (no brightening unless the run config says so, recorded per row) "
              "and template colours at its redshift, so the arc_snr distribution follows the bank's galaxies, not a "
              "target; the seed's source magnitudes were not tied to its galaxies (its section 10 asks about a source "
              "'2 mag fainter than the lens'), so its percentiles are a comparison, not a target. A whole-stamp SNR "
              "also counts the noise of ~4,000 sky pixels, so it is small for any compact arc. The footprint SNR "
              "(arc_snr_footprint, a detectability measure, "
              "not the seed's quantity) P5/P25/P50/P75/P95: " + "; ".join(fp) + ". "
              "The physics behind them is checked row by row by the gate (arc flux = source flux x magnification, "
              "magnification range), so the faint end is not a unit bug if those checks pass (see Q19).")
    return answer, values, seed, "profile"


def q2(profile, sample):
    frac_lt1 = {split: _pct(1 - s["arc_snr_gt1_frac"]) if s.get("arc_snr_gt1_frac") is not None else None
                for split, s in ((k, profile["splits"][k]) for k in _splits(profile))}
    values = {"arc_snr_lt1_pct": frac_lt1}
    snr, masked, dm = _col(sample, "arc_snr"), _col(sample, "arc_masked_frac"), _col(sample, "src_dmag")
    why = ""
    if snr is not None and masked is not None and len(snr) == len(masked):
        low = snr < 1
        n_low = int(low.sum())
        values["sample_lt1"] = n_low
        if n_low:
            mostly_masked = float(np.mean(masked[low] > 0.5))
            values["lt1_mostly_masked_pct"] = _pct(mostly_masked)
            values["lt1_median_masked_frac"] = _f(np.median(masked[low]))
            values["all_median_masked_frac"] = _f(np.median(masked))
            why = (f" Of the {n_low} sample arcs with arc_snr < 1, {_fmt(values['lt1_mostly_masked_pct'], 1)}% have more "
                   f"than half their flux on masked pixels (median masked fraction {_fmt(values['lt1_median_masked_frac'])} "
                   f"vs {_fmt(values['all_median_masked_frac'])} for all arcs)")
            if dm is not None and len(dm) == len(snr):
                values["lt1_median_src_dmag"] = _f(np.median(dm[low]))
                values["all_median_src_dmag"] = _f(np.median(dm))
                why += (f"; their median source is {_fmt(values['lt1_median_src_dmag'])} mag fainter than its lens "
                        f"(all arcs: {_fmt(values['all_median_src_dmag'])} mag)")
            why += ". So the low-SNR arcs are mainly " + (
                "masked" if mostly_masked > 0.5 else "faint (not masked)") + " ones."
        else:
            why = " No sample arc has arc_snr < 1."
    answer = ("Share of ok injections with arc_snr < 1: " + ", ".join(f"{k} {_fmt(v, 1)}%" for k, v in frac_lt1.items())
              + " (seed ~10%)." + why + " Filtering them is a training choice; the label stays true (a lens is there).")
    return answer, values, {"arc_snr_lt1_pct": {k: round(100 - v["gt_1_pct"], 1) for k, v in SEED_ARC_SNR.items()}}, \
        "profile" + (" + sample" if why else "")


def q3(profile, sample):
    lo_f, hi_f = (profile.get("method") or {}).get("hlr_filter_arcsec", SEED_BANK_HLR_FILTER_ARCSEC)
    values = {}
    for split in _splits(profile):
        s = profile["splits"][split]
        values[split] = {"min": _f(s.get("cosmos_hlr_min")), "max": _f(s.get("cosmos_hlr_max")),
                         "mean": _f(s.get("cosmos_hlr_mean")),
                         "outside_filter_pct": _pct(s.get("hlr_out_of_filter_frac"))}
    mins = [v["min"] for v in values.values() if v["min"] is not None]
    maxs = [v["max"] for v in values.values() if v["max"] is not None]
    inside = bool(mins and maxs and min(mins) >= lo_f and max(maxs) <= hi_f)
    answer = (f"cosmos_hlr_arcsec here is the intrinsic (unlensed) half-light radius measured on the bank stamp: "
              f"range {_fmt(min(mins) if mins else None)}-{_fmt(max(maxs) if maxs else None)}\" over all splits, "
              f"{'inside' if inside else 'OUTSIDE'} the bank filter {lo_f}-{hi_f}\" "
              f"(rows outside: " + ", ".join(f"{k} {_fmt(v['outside_filter_pct'], 2)}%" for k, v in values.items()) + "). "
              "The seed's 0.926-4.6\" cannot be intrinsic radii of a 0.1-1.0\" bank: it was another quantity (a "
              "lensed or pixel-unit size) under an intrinsic name. The gate now fails any row outside the filter.")
    return answer, values, {"cosmos_hlr_arcsec": list(SEED_COSMOS_HLR_ARCSEC),
                            "bank_filter_arcsec": list(SEED_BANK_HLR_FILTER_ARCSEC)}, "profile"


def q4(profile, sample):
    edges, grid, yspec = _hist2d_x_marginal(profile, "arc_snr_vs_theta_over_psf")
    values = {}
    if grid is None:
        return "Not measurable: the profile has no theta_E / PSF histogram.", values, {}, "profile"
    per_x = grid.sum(axis=1)
    n = per_x.sum()
    resolved = float(per_x[edges[:-1] >= RESOLVED_RATIO].sum() / n) if n else None
    values["resolved_pct"] = _pct(resolved)
    values["injections"] = int(n)
    # coarse bins of theta_E / FWHM (edges on the histogram's 0.2-wide bins): share of lenses and
    # median arc_snr in each
    coarse = [(0.0, 0.6), (0.6, 1.0), (1.0, 1.4), (1.4, 2.0), (2.0, math.inf)]
    bins = []
    for lo, hi in coarse:
        sel = (edges[:-1] >= lo - 1e-9) & (edges[:-1] < hi - 1e-9)
        c = per_x[sel].sum()
        bins.append({"theta_over_fwhm": f"{lo}-{hi if math.isfinite(hi) else ''}".rstrip("-") + ("+" if not math.isfinite(hi) else ""),
                     "pct": _pct(c / n) if n else None,
                     "median_arc_snr": _f(_grid_median(grid[sel].sum(axis=0), *yspec))})
    values["bins"] = bins
    answer = (f"{_fmt(values['resolved_pct'], 1)}% of the ok injections have theta_E / PSF FWHM(r) > 1 (all splits, every row; "
              f"the seed estimated ~60%). By theta_E / FWHM: " + "; ".join(
                  f"{b['theta_over_fwhm']}: {_fmt(b['pct'], 1)}% (median arc_snr {_fmt(b['median_arc_snr'], 1)})" for b in bins)
              + ". Unresolved lenses are kept: the classifier must learn that a blended arc is still a lens; a "
                "theta_E / FWHM cut can be applied at training time from these columns.")
    return answer, values, {"resolved_pct_estimate": 60, "psfsize_r_arcsec": list(SEED_PSFSIZE_R_ARCSEC)}, "profile"


def q6(profile, sample):
    masked = _col(sample, "arc_masked_frac")
    values = {"footprint_peak_fraction": FOOTPRINT_PEAK_FRACTION}
    if masked is not None and len(masked):
        values.update({"sample_rows": int(len(masked)), "mean_masked_pct": _pct(np.mean(masked), 2),
                       "median_masked_pct": _pct(np.median(masked), 2),
                       "p95_masked_pct": _pct(np.percentile(masked, 95), 2),
                       "any_masked_pct": _pct(np.mean(masked > 0)),
                       "over_half_masked_pct": _pct(np.mean(masked > 0.5), 2)})
        lost = (f" Arc flux lost to masks (arc_masked_frac, {len(masked)} sample rows): mean {_fmt(values['mean_masked_pct'])}%, "
                f"median {_fmt(values['median_masked_pct'])}%, P95 {_fmt(values['p95_masked_pct'])}%; "
                f"{_fmt(values['any_masked_pct'], 1)}% of arcs lose some flux, {_fmt(values['over_half_masked_pct'])}% lose more than half.")
    else:
        lost = " arc_masked_frac was not sampled."
    answer = ("arc_snr is the seed's definition: sum(arc x g) / sqrt(sum(var x g)) in r, var = 1/invvar, g = every good "
              "pixel of the 64 x 64 stamp (invvar > 0 and no DR10 BAD_MASKBITS bit); it is a whole-stamp aperture SNR, "
              "not the literature's usual detectability measure (which is a matched filter or an SNR over the arc's "
              "pixels, e.g. Holloway et al. 2023: pixels with per-pixel SNR > 1), because it adds the noise of "
              "every sky-only pixel. arc_snr_footprint is the same sum over the footprint only: pixels where the "
              f"noiseless PSF-convolved r-band arc >= {FOOTPRINT_PEAK_FRACTION:.0%} of its own peak "
              "(pipeline/injection/metrics.py). Both are on every row." + lost)
    return answer, values, {"seed_definition": "sum(arc[good]) / sqrt(sum(var[good])) over the whole stamp"}, \
        "definition + sample" if masked is not None else "definition"


def q8(profile, sample):
    values = {}
    worst = 0.0
    for split in _splits(profile):
        s = profile["splits"][split]
        v = {"control_pct": _pct(s.get("control_frac")), "configured_pct": _pct(s.get("control_frac_configured"))}
        for c in PARITY_COLUMNS:
            r = s.get(f"parity_{c}_ks_ratio")
            v[f"{c}_ks_ratio"] = _f(r)
            if r is not None:
                worst = max(worst, r)
        values[split] = v
    values["max_ks_ratio"] = _f(worst)
    answer = ("Controls per split: " + ", ".join(f"{k} {_fmt(v['control_pct'], 1)}% (configured {_fmt(v['configured_pct'], 0)}%)"
                                               for k, v in values.items() if isinstance(v, dict))
              + ". Control vs injection parity (binned KS as a ratio to its alpha = 0.001 critical value; > 1 means a "
                "distribution a CNN could use as a shortcut): " + "; ".join(
                  f"{k}: PSF " + ", ".join(f"{b} {_fmt(v[f'psfsize_{b}_ks_ratio'])}" for b in reference_first())
                  + f", depth r {_fmt(v['psfdepth_r_ks_ratio'])}, lens mag r {_fmt(v['lens_mag_r_ks_ratio'])}"
                  for k, v in values.items() if isinstance(v, dict))
              + f". Largest ratio {_fmt(values['max_ks_ratio'])}: "
              + ("no parity shortcut detected." if worst <= 1 else "a parity shortcut is present (the gate fails it).")
              + " Controls and injections use disjoint LRGs (unpaired), checked on every row.")
    return answer, values, {"control_pct": {"train": 50.1, "val": 51.5, "test": 50.1}}, "profile"


def q9(profile, sample):
    tmax = max((s.get("theta_e_max") or 0) for s in profile["splits"].values()) or None
    values = {"theta_e_max_arcsec": _f(tmax), "stamp_half_width_arcsec": _f(STAMP_HALF_WIDTH_ARCSEC)}
    edge = None
    if sample is not None and "footprint_touches_edge" in getattr(sample, "columns", ()):
        e = np.asarray(sample["footprint_touches_edge"], dtype=bool)
        if e.size:
            edge = float(e.mean())
            values.update({"sample_rows": int(e.size), "edge_pct": _pct(edge, 2), "edge_rows": int(e.sum())})
    answer = (f"The stamp is 64 x 0.262\" = 16.8\" wide: half-width {STAMP_HALF_WIDTH_ARCSEC:.2f}\" against theta_E up to "
              f"{_fmt(tmax)}\", so an Einstein ring with its PSF wings (a few arcsec) fits with room for the lens's "
              "surroundings. ")
    if edge is not None:
        answer += (f"Arcs whose footprint reaches the stamp's outer pixel ring: {values['edge_rows']} of {values['sample_rows']} "
                   f"sampled ({_fmt(values['edge_pct'])}%)" + (" - the stamp is large enough." if edge < 0.01 else
                                                               " - some arcs are cut by the stamp edge."))
    else:
        answer += "Footprint-at-edge was not sampled."
    return answer, values, {"theta_e_max_arcsec": 2.5, "stamp_half_width_arcsec": 8.38}, \
        "profile + sample" if edge is not None else "profile"


def q10(profile, sample):
    values = {split: {"rows": profile["splits"][split]["rows"],
                      "injections_ok": profile["splits"][split].get("injections_ok")} for split in _splits(profile)}
    total = profile["all"]["rows"]
    values["total_rows"] = total
    answer = ("Rows per split (every row counted, nothing estimated): " + ", ".join(
        f"{k} {v['rows']:,} ({v['injections_ok']:,} ok injections)" for k, v in values.items() if isinstance(v, dict))
        + f"; total {total:,}. The seed's production run: train 2,261,200, val 5,529,200, test 3,961,200 "
          "(~11.75M, estimated from 3 files per split; val larger than train).")
    return answer, values, {"rows": dict(SEED_ROWS), "total": sum(SEED_ROWS.values())}, "profile"


def q19(profile, sample, results=None, failures=None):
    results = results or []
    failures = list(failures or [])
    failed = [r["name"] for r in results if not r.get("success")]
    drift = [r for r in results if str(r.get("name", "")).startswith("drift_")]
    drift_failed = [r["name"] for r in drift if not r.get("success")]
    leak = profile["all"].get("lrg_in_multiple_splits", 0) + profile["all"].get("lrg_control_and_injection", 0)
    values = {"passed": not failures, "failures": failures, "failed_expectations": failed,
              "expectations": len(results), "drift_checked": bool(drift), "drift_failed": drift_failed,
              "leakage_lrgs": leak}
    if failures:
        answer = (f"YES: {len(failures)} red flag(s) fired - " + "; ".join(failures[:8])
                  + (" ..." if len(failures) > 8 else "") + ". The gate refuses promotion; do not train on this dataset.")
    else:
        answer = (f"NO red flag: all {len(results)} expectations and the row contract passed "
                  + ("(including drift against the last promoted profile)" if drift else
                     "(no reference profile given, so no drift check ran)")
                  + f"; LRG leakage {leak}. The dataset may be promoted.")
    return answer, values, {}, "gate results"


QUESTIONS = (
    ("Q1", "Is the arc_snr distribution realistic (mean, median, >1, >10)?", q1),
    ("Q2", "Why do ~10% of injections have arc_snr < 1?", q2),
    ("Q3", "COSMOS half-light radii 0.9-4.6\" from a 0.1-1.0\" bank?", q3),
    ("Q4", "What fraction of lenses is resolved (theta_E / PSF FWHM > 1)?", q4),
    ("Q6", "How is arc_snr computed; how much arc flux do masks remove?", q6),
    ("Q8", "Controls vs injections: balance and parity of PSF, depth, lens mag", q8),
    ("Q9", "Is the 64x64 stamp large enough for theta_E up to 2.5\"?", q9),
    ("Q10", "How many stamps per split?", q10),
    ("Q16", "arc_snr percentiles against the seed's", q16),
    ("Q19", "Any red flag that says do not train?", q19),
)


def answer_seed_questions(profile: dict, sample=None, *, results: list | None = None,
                          failures: list | None = None) -> dict:
    """Answers to the seed's data questions (see module doc). `results`/`failures` are the gate's."""
    out = []
    for qid, question, fn in QUESTIONS:
        if fn is q19:
            answer, values, seed, source = fn(profile, sample, results, failures)
        else:
            answer, values, seed, source = fn(profile, sample)
        out.append({"id": qid, "question": question, "answer": answer, "values": values, "seed": seed,
                    "source": source})
    n = 0 if sample is None else int(len(sample))
    return {"questions": out, "sample_rows": n,
            "seed_document": "phase4c_production_review.md section 10 (numbers: sections 4 and 9)"}
