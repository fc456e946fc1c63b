"""The dataset profile: per-split statistics of ALL rows, from four Spark jobs, fused with the
row contract's counters (`profile_and_contract`), and its assembly into the profile document.

Jobs (no row reaches the driver; pixel columns are read only by the row contract's checks):
1. per-split summary (one scan, grouped by region_split, code-generated hash aggregate): counts,
   rates, min/max/mean/std, the physics invariants - and, when the gate runs the row contract in
   the same scan (`profile_and_contract`), every row-contract counter;
1b. arc_snr and magnification quantiles of the ok injections (percentile_approx is an object
   aggregate without code generation: kept out of job 1, on two pre-filtered columns);
2. histograms and COSMOS use (pipeline.gate.histograms; one scan, one hash aggregate, no string
   keys): each row emits one packed key per group of histograms (e.g. theta_E bin x arc_snr bin x
   2-D bin), ~4 keys per injection and 3 per control instead of one exploded struct per
   histogram; the driver marginalises the packed keys back into the per-variable histograms;
3. uniqueness of task_id and LRG leakage (pipeline.gate.identity; one scan, one shuffle): rows
   keyed twice, by xxhash64(task_id) and by lrg_id. A hash seen twice is re-checked exactly on task_id (so a
   64-bit hash collision can never fail the gate nor hide a duplicate).
   Skipped when manifest.json carries the manifest's task identity (pipeline.task_identity): job 1
   then also sums the identity hash of every row, and when the sums and the row count equal the
   manifest's, the rows are the manifest's tasks and share its (exactly computed) duplicates and
   leakage. Any difference runs job 3, which names the offending tasks and LRGs.

Quantiles use `percentile_approx` with accuracy QUANTILE_ACCURACY = 10,000: Spark's
Greenwald-Khanna summary guarantees the returned value's rank is within N / QUANTILE_ACCURACY of
the exact rank, i.e. a rank error <= 1e-4 of the rows (for 2M arc_snr values, <= 200 ranks; the
arc_snr_p50 bands are several percent wide). 100,000 cost ~1.5x the time for a 10x finer rank
that no threshold can see.

Distribution comparisons use the Kolmogorov-Smirnov statistic on binned CDFs (fixed physical bin
edges, so one pass suffices). The binned statistic is a lower bound on the exact one; with 100
bins over each range the resolution is 1% of the range. Each KS value is also given as a ratio
to the alpha = 0.001 critical value for its sample sizes, so one threshold (ratio <= 1) works for
600 rows and for 12M rows alike.

The physics invariants of `pipeline.physics_checks` run on every ok injection row in job 1 as
native Spark column expressions (pipeline.gate.spark_physics). No Python UDF runs on the rows.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import numpy as np
from pyspark.sql import functions as F

from pipeline.contract import PARITY_COLUMNS, PIXEL_COLUMNS
from pipeline.gate import histograms, identity, row_contract, spark_physics
from pipeline.physics_checks import ARC_FLUX_RATIO_RANGE, MAGNIFICATION_RANGE
from pipeline.task_identity import IDENTITY_COLUMNS

QUANTILE_ACCURACY = 10_000
QUANTILES = (5, 25, 50, 75, 95)
#: Kolmogorov critical value c(alpha) for alpha = 0.001: sqrt(-ln(alpha / 2) / 2).
KS_C_ALPHA = math.sqrt(-math.log(0.001 / 2) / 2)


@contextmanager
def _timed(timings: dict | None, job: str):
    """Record the wall seconds of one of the gate's Spark jobs into `timings` (when given)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[job] = round(time.perf_counter() - t0, 2)


def profile_and_contract(df, *, run_config, hlr_filter_arcsec, files_per_split: dict | None = None,
                         include_pixels: bool = True, n_examples: int = 3, manifest_identity: dict | None = None,
                         timings: dict | None = None):
    """(ContractResult, profile) with the row contract's counters fused into the profile's jobs:
    job 1 counts every contract check per split in the same scan as the summary, job 3 checks
    task_id uniqueness with the LRG leakage. Same results as row_contract.check_row_contract.

    `manifest_identity` (manifest.json's `identity`, pipeline.task_identity.manifest_identity):
    when given, job 1 also fingerprints the rows' task identities and job 3 runs only if they
    differ from the manifest's (see the module docstring).

    `timings`, when given, receives the wall seconds of each Spark job (benchmarks/gate_bench.py)."""
    schema_errors = row_contract.schema_errors(df, include_pixels)
    if row_contract.KEY_COLUMNS - set(df.columns):
        return row_contract.ContractResult(False, -1, schema_errors, {}), None
    if set(IDENTITY_COLUMNS) - set(df.columns):
        manifest_identity = None
    preds = row_contract.row_predicates(run_config, df.columns)
    contract_aggs = [F.sum(v.cast("long")).alias(f"__c{i}") for i, v in enumerate(preds.values())]
    summary = _summary(df, hlr_filter_arcsec, contract_aggs + (identity.identity_sums() if manifest_identity else []),
                       timings=timings)
    rows = sum(int(s["rows"]) for s in summary.values())
    scalar = _scalar_frame(df)
    with _timed(timings, "2_histograms_cosmos"):
        hist, reuse = histograms.count_histograms(scalar, run_config)
    uniq = identity.identity_from_manifest(summary, rows, manifest_identity)
    checked = {"checked_by": "manifest fingerprint" if uniq else "exact shuffle",
               "matches_manifest": (uniq is not None) if manifest_identity else None}
    if uniq is None:
        with _timed(timings, "3_unique_task_id_lrg_leakage"):
            uniq = identity.uniqueness_and_leakage(scalar, n_examples=n_examples)
    counts = [sum(int(s[f"__c{i}"] or 0) for s in summary.values()) for i in range(len(preds))]
    contract = row_contract.contract_result(
        df, schema_errors, preds, counts, rows=rows,
        dup_rows=uniq["dup_rows"], dup_examples=uniq["dup_examples"], n_examples=n_examples)
    if contract.rows == 0:
        return contract, None
    prof = _assemble(summary, hist, reuse, uniq, run_config=run_config,
                     hlr_filter_arcsec=hlr_filter_arcsec, files_per_split=files_per_split)
    prof["all"]["task_identity"] = checked
    return contract, prof


# --- job 1 and 1b: the per-split summary and quantiles ----------------------------------------


def summary_aggs(hlr_filter_arcsec) -> list:
    """Job 1's per-split aggregates (the profile's part)."""
    col = F.col
    inj_ok = (~col("is_control")) & col("cutout_ok")
    snr = F.when(inj_ok, col("arc_snr"))
    snr_fp = F.when(inj_ok, col("arc_snr_footprint"))
    theta = F.when(inj_ok, col("theta_e_arcsec"))

    def frac_gt(t, x=snr):
        return F.sum(F.when(x > t, 1).otherwise(0)) / F.count(x)

    def n_failing(ok):
        return F.sum((inj_ok & ~ok).cast("int"))

    phys = spark_physics.physics_ok(hlr_filter_arcsec)
    return [
        F.count(F.lit(1)).alias("rows"),
        F.sum(col("cutout_ok").cast("int")).alias("cutout_ok_rows"),
        F.sum(col("is_control").cast("int")).alias("control_rows"),
        F.sum(inj_ok.cast("int")).alias("injections_ok"),
        F.min(snr).alias("arc_snr_min"), F.max(snr).alias("arc_snr_max"),
        F.mean(snr).alias("arc_snr_mean"), F.stddev(snr).alias("arc_snr_std"),
        frac_gt(1).alias("arc_snr_gt1_frac"), frac_gt(10).alias("arc_snr_gt10_frac"),
        frac_gt(50).alias("arc_snr_gt50_frac"),
        # the footprint SNR (metrics.py) beside the seed's, and the share of arcs with a pixel
        # above 1 sigma (a peak below 1 is invisible pixel by pixel)
        F.min(snr_fp).alias("arc_snr_footprint_min"), F.max(snr_fp).alias("arc_snr_footprint_max"),
        F.mean(snr_fp).alias("arc_snr_footprint_mean"),
        frac_gt(1, snr_fp).alias("arc_snr_footprint_gt1_frac"), frac_gt(10, snr_fp).alias("arc_snr_footprint_gt10_frac"),
        frac_gt(1, F.when(inj_ok, col("arc_snr_peak"))).alias("arc_snr_peak_gt1_frac"),
        F.min(theta).alias("theta_e_min"), F.max(theta).alias("theta_e_max"), F.mean(theta).alias("theta_e_mean"),
        F.min("psfsize_r").alias("psfsize_r_min"), F.max("psfsize_r").alias("psfsize_r_max"),
        F.mean("psfsize_r").alias("psfsize_r_mean"),
        F.min(F.when(inj_ok, col("cosmos_hlr_arcsec"))).alias("cosmos_hlr_min"),
        F.max(F.when(inj_ok, col("cosmos_hlr_arcsec"))).alias("cosmos_hlr_max"),
        F.mean(F.when(inj_ok, col("cosmos_hlr_arcsec"))).alias("cosmos_hlr_mean"),
        F.min(F.when(inj_ok, col("magnification"))).alias("magnification_min"),
        F.max(F.when(inj_ok, col("magnification"))).alias("magnification_max"),
        n_failing(phys["magnification"]).alias("mag_bad"),
        n_failing(phys["arc_flux"]).alias("flux_bad"),
        n_failing(phys["hlr"]).alias("hlr_bad"),
    ]


def split_quantiles(df) -> dict:
    """Job 1b: arc_snr and magnification quantiles of the ok injection rows, per split.
    percentile_approx is an object aggregate: Spark runs it without code generation, so it gets a
    job of its own on two pre-filtered columns instead of slowing job 1's ~90 aggregates down."""
    col = F.col
    rows = (df.where((~col("is_control")) & col("cutout_ok"))
            .groupBy("region_split")
            .agg(F.percentile_approx("arc_snr", [q / 100 for q in QUANTILES], QUANTILE_ACCURACY).alias("arc_snr_q"),
                 F.percentile_approx("arc_snr_footprint", [q / 100 for q in QUANTILES],
                                     QUANTILE_ACCURACY).alias("arc_snr_footprint_q"),
                 F.percentile_approx("magnification", 0.5, QUANTILE_ACCURACY).alias("magnification_p50"))
            .collect())
    return {r["region_split"]: r.asDict() for r in rows}


def _summary(df, hlr_filter_arcsec, extra_aggs=(), timings: dict | None = None) -> dict:
    """Jobs 1 and 1b: {split: aggregates}."""
    with _timed(timings, "1_contract_counters_summary"):
        summary = {r["region_split"]: r.asDict() for r in
                   df.groupBy("region_split").agg(*summary_aggs(hlr_filter_arcsec), *extra_aggs).collect()}
    with _timed(timings, "1b_quantiles"):
        quantiles = split_quantiles(_scalar_frame(df))
    for split, s in summary.items():
        q = quantiles.get(split, {})
        s["arc_snr_q"] = q.get("arc_snr_q")
        s["arc_snr_footprint_q"] = q.get("arc_snr_footprint_q")
        s["magnification_p50"] = q.get("magnification_p50")
    return summary


def _scalar_frame(df):
    """`df` without its pixel columns (jobs 1b, 2 and 3 read scalars only)."""
    return df.select(*[c for c in df.columns if c not in PIXEL_COLUMNS])


# --- the profile document ---------------------------------------------------------------------


def _assemble(summary, hist, reuse, leak, *, run_config, hlr_filter_arcsec, files_per_split) -> dict:
    lo_t, hi_t = run_config.theta_e_min_arcsec, run_config.theta_e_max_arcsec
    splits = {}
    for split in sorted(summary, key=str):
        s = summary[split]
        rows, inj = s["rows"], s["injections_ok"]
        h = hist.get(split, {})
        q = s["arc_snr_q"] or [None] * len(QUANTILES)
        q_fp = s.get("arc_snr_footprint_q") or [None] * len(QUANTILES)
        d = {
            "rows": rows,
            "files": (files_per_split or {}).get(split),
            "cutout_ok_rate": s["cutout_ok_rows"] / rows,
            "control_frac": s["control_rows"] / rows,
            "control_frac_configured": run_config.control_frac.get(split),
            "injections_ok": inj,
            **{k: s[k] for k in ("arc_snr_min", "arc_snr_max", "arc_snr_mean", "arc_snr_std")},
            **{f"arc_snr_p{p}": v for p, v in zip(QUANTILES, q)},
            **{f"arc_snr_footprint_p{p}": v for p, v in zip(QUANTILES, q_fp)},
            **{k: s.get(k) for k in ("arc_snr_footprint_min", "arc_snr_footprint_max", "arc_snr_footprint_mean",
                                     "arc_snr_footprint_gt1_frac", "arc_snr_footprint_gt10_frac",
                                     "arc_snr_peak_gt1_frac")},
            **{k: s[k] for k in ("arc_snr_gt1_frac", "arc_snr_gt10_frac", "arc_snr_gt50_frac",
                                 "theta_e_min", "theta_e_max", "theta_e_mean",
                                 "psfsize_r_min", "psfsize_r_max", "psfsize_r_mean",
                                 "cosmos_hlr_min", "cosmos_hlr_max", "cosmos_hlr_mean",
                                 "magnification_min", "magnification_max", "magnification_p50")},
        }
        if d["control_frac_configured"] is not None:
            d["control_frac_deviation"] = abs(d["control_frac"] - d["control_frac_configured"])
        # theta_E flatness: binned KS against uniform on the configured range
        th = np.asarray(h.get("theta_e", {}).get("injection", [0] * histograms.THETA_E_BINS), float)
        n_th = th.sum()
        if n_th:
            ks = histograms.ks_from_counts(th, np.ones(histograms.THETA_E_BINS))
            d["theta_e_ks"] = ks
            d["theta_e_ks_ratio"] = ks / (KS_C_ALPHA / math.sqrt(n_th))
            d["theta_e_hist_max_rel_dev"] = float(np.max(np.abs(th / n_th * histograms.THETA_E_BINS - 1)))
        # COSMOS diversity
        if split in reuse:
            d["cosmos_unique"] = reuse[split]["unique"]
            d["cosmos_max_reuse_frac"] = reuse[split]["max_uses"] / inj if inj else None
        # physics invariants, as fractions of ok injection rows
        if inj:
            d["magnification_out_of_range_frac"] = s["mag_bad"] / inj
            d["arc_flux_ratio_out_of_range_frac"] = s["flux_bad"] / inj
            d["hlr_out_of_filter_frac"] = s["hlr_bad"] / inj
        # control / injection parity
        ratios = []
        for c in PARITY_COLUMNS:
            hc = h.get(c)
            if not hc:
                continue
            a, b = np.asarray(hc["control"], float), np.asarray(hc["injection"], float)
            if a.sum() and b.sum():
                ks = histograms.ks_from_counts(a, b)
                crit = KS_C_ALPHA * math.sqrt((a.sum() + b.sum()) / (a.sum() * b.sum()))
                d[f"parity_{c}_ks"] = ks
                d[f"parity_{c}_ks_ratio"] = ks / crit
                ratios.append(ks / crit)
        if ratios:
            d["parity_max_ks_ratio"] = max(ratios)
        splits[split] = {k: (_r(v) if isinstance(v, float) else v) for k, v in d.items()}

    total_rows = sum(s["rows"] for s in splits.values())
    return {
        "splits": splits,
        "all": {
            "rows": total_rows,
            "files": sum((files_per_split or {}).values()) if files_per_split else None,
            "lrg_in_multiple_splits": int(leak["multi_split"] or 0),
            "lrg_in_multiple_splits_examples": list(leak["multi_ex"] or []),
            "lrg_control_and_injection": int(leak["shared"] or 0),
            "lrg_control_and_injection_examples": list(leak["shared_ex"] or []),
        },
        "histograms": {split: {k: dict(v, **histograms.edges(k, run_config)) for k, v in h.items()} for split, h in hist.items()},
        "method": {
            "quantile_accuracy": QUANTILE_ACCURACY,
            "quantile_rank_error": f"<= rows / {QUANTILE_ACCURACY}",
            "ks": f"binned KS; ratio = KS / critical value at alpha=0.001 (c={KS_C_ALPHA:.3f})",
            "hlr_filter_arcsec": list(hlr_filter_arcsec),
            "magnification_range": list(MAGNIFICATION_RANGE),
            "arc_flux_ratio_range": list(ARC_FLUX_RATIO_RANGE),
            "theta_e_range_arcsec": [lo_t, hi_t],
        },
    }


def _r(x, nd=6):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else round(float(x), nd)
