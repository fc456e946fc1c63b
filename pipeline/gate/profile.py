"""The dataset profile: per-split statistics of ALL rows, from four Spark jobs.

Jobs (no row reaches the driver; pixel columns are read only by the row contract's checks):
1. per-split summary (one scan, grouped by region_split, code-generated hash aggregate): counts,
   rates, min/max/mean/std, the physics invariants - and, when the gate runs the row contract in
   the same scan (`profile_and_contract`), every row-contract counter;
1b. arc_snr and magnification quantiles of the ok injections (percentile_approx is an object
   aggregate without code generation: kept out of job 1, on two pre-filtered columns);
2. histograms and COSMOS use (one scan, one hash aggregate, no string keys): each row emits one
   packed key per group of histograms (e.g. theta_E bin x arc_snr bin x 2-D bin), ~4 keys per
   injection and 3 per control instead of one exploded struct per histogram; the driver
   marginalises the packed keys back into the per-variable histograms (same bins as before);
3. uniqueness of task_id and LRG leakage (one scan, one shuffle): rows keyed twice, by
   xxhash64(task_id) and by lrg_id. A hash seen twice is re-checked exactly on task_id (so a
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

The physics invariants of `pipeline.physics_checks` run on every ok injection row as native Spark
column expressions (`spark_*` below) that mirror the numpy functions operation by operation, with
the same constants; tests/test_gate_physics_spark.py proves they agree (nan, inf, null, bounds,
the seed's 1/1111 bug). No Python UDF runs on the rows.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.physics_checks import (
    ARC_FLUX_RATIO_RANGE,
    MAGNIFICATION_RANGE,
    NMGY_ZEROPOINT_AB,
    RATIO_DECIMALS,
)

QUANTILE_ACCURACY = 10_000
QUANTILES = (5, 25, 50, 75, 95)
#: Kolmogorov critical value c(alpha) for alpha = 0.001: sqrt(-ln(alpha / 2) / 2).
KS_C_ALPHA = math.sqrt(-math.log(0.001 / 2) / 2)
THETA_E_BINS = 20
PARITY_COLUMNS = ("psfsize_r", "psfsize_g", "psfsize_z", "psfdepth_r", "lens_mag_r")

#: name -> (expression, lo, hi, bins, log10 axis?, which rows). Fixed physical edges.
HISTOGRAMS = {
    "psfsize_r": ("psfsize_r", 0.5, 3.0, 100, False, "all"),
    "psfsize_g": ("psfsize_g", 0.5, 3.5, 100, False, "all"),
    "psfsize_z": ("psfsize_z", 0.5, 3.0, 100, False, "all"),
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
#: Histograms counted together in one packed key per row (job 2). Histograms of one group share
#: their rows ("all" or ok injections); the number of distinct packed keys stays small because
#: the members are functions of one or two variables (theta_E and arc_snr in the first group).
HIST_GROUPS = (
    ("inj", ("theta_e", "arc_snr", "arc_snr_vs_theta_e")),
    ("inj", ("arc_snr_vs_theta_over_psf",)),
    ("inj", ("magnification", "cosmos_hlr_arcsec")),
    ("all", ("psfsize_r", "psfsize_g")),
    ("all", ("psfsize_z", "psfdepth_r")),
    ("all", ("lens_mag_r",)),
)
#: Packed key of a null cosmos_index (job 2 counts COSMOS use as one more keyed entry).
_NULL_KEY = -(2**62)

# --- physics invariants as Spark column expressions -------------------------------------------
# They mirror pipeline.physics_checks operation by operation (same constants, same order of
# floating-point operations). Spark semantics handled explicitly:
# - NaN compares greater than every number in Spark SQL (numpy: every comparison with nan is
#   false), so finiteness is tested first, as numpy's np.isfinite does;
# - x / 0 is NULL in Spark (an error under ANSI mode; numpy: +-inf or nan, which fail
#   np.isfinite): the division is guarded and its NULL fails the check;
# - a NULL input is nan for the numpy functions (pandas na_value=nan): it fails the check.

_INF = float("inf")


def _finite(x):
    from pyspark.sql import functions as F

    return x.isNotNull() & ~F.isnan(x) & (x != F.lit(_INF)) & (x != F.lit(-_INF))


def _within(x, lo, hi):
    """np.isfinite(x) & (x >= lo) & (x <= hi) with NULL as nan; never NULL."""
    from pyspark.sql import functions as F

    x = x.cast("double")
    return F.coalesce(_finite(x) & (x >= F.lit(float(lo))) & (x <= F.lit(float(hi))), F.lit(False))


def spark_source_flux_nmgy(src_mag):
    """physics_checks.source_flux_nmgy: 10 ** ((NMGY_ZEROPOINT_AB - src_mag) / 2.5)."""
    from pyspark.sql import functions as F

    return F.pow(F.lit(10.0), (F.lit(float(NMGY_ZEROPOINT_AB)) - src_mag.cast("double")) / F.lit(2.5))


def spark_arc_flux_ratio(arc_flux_nmgy, src_mag, magnification):
    """physics_checks.arc_flux_ratio: arc flux / (source flux x magnification); NULL where numpy
    gives +-inf or nan from a zero denominator."""
    from pyspark.sql import functions as F

    expected = spark_source_flux_nmgy(src_mag) * magnification.cast("double")
    return F.when(expected != F.lit(0.0), arc_flux_nmgy.cast("double") / expected)


def spark_flux_is_consistent(ratio, bounds=ARC_FLUX_RATIO_RANGE):
    """physics_checks.flux_is_consistent: the ratio rounded to RATIO_DECIMALS by the same correctly
    rounded operations (x * 1e9, rint, / 1e9), so a boundary row gets one verdict on every CPU."""
    from pyspark.sql import functions as F

    scale = F.lit(10.0 ** RATIO_DECIMALS)
    return _within(F.rint(ratio.cast("double") * scale) / scale, *bounds)


def spark_magnification_is_physical(magnification, bounds=MAGNIFICATION_RANGE):
    """physics_checks.magnification_is_physical."""
    return _within(magnification, *bounds)


def spark_hlr_in_bank_filter(hlr_arcsec, hlr_filter_arcsec):
    """physics_checks.hlr_in_bank_filter."""
    lo, hi = hlr_filter_arcsec
    return _within(hlr_arcsec, lo, hi)


def physics_ok(hlr_filter_arcsec) -> dict:
    """invariant -> Spark Column, true where the row satisfies it (on the contract's columns)."""
    from pyspark.sql import functions as F

    col = F.col
    return {
        "magnification": spark_magnification_is_physical(col("magnification")),
        "arc_flux": spark_flux_is_consistent(
            spark_arc_flux_ratio(col("arc_flux_r"), col("src_mag_r"), col("magnification"))),
        "hlr": spark_hlr_in_bank_filter(col("cosmos_hlr_arcsec"), hlr_filter_arcsec),
    }


def _bin(expr, lo, hi, nbins, log):
    from pyspark.sql import functions as F

    x = F.expr(expr)
    if log:
        x = F.when(x > 0, F.log10(x)).otherwise(F.lit(lo))  # arc_snr <= 0 lands in the first bin
    b = F.floor((x - F.lit(lo)) / F.lit((hi - lo) / nbins)).cast("int")
    return F.when(F.expr(expr).isNull() | F.isnan(F.expr(expr)), F.lit(None)).otherwise(
        F.greatest(F.lit(0), F.least(F.lit(nbins - 1), b)))


def ks_from_counts(a, b) -> float:
    """KS statistic between two binned samples (max |CDF_a - CDF_b| at the bin edges)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.sum() == 0 or b.sum() == 0:
        return float("nan")
    return float(np.max(np.abs(np.cumsum(a) / a.sum() - np.cumsum(b) / b.sum())))


def _r(x, nd=6):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else round(float(x), nd)


def _summary_aggs(hlr_filter_arcsec) -> list:
    """Job 1's per-split aggregates (the profile's part)."""
    from pyspark.sql import functions as F

    col = F.col
    inj_ok = (~col("is_control")) & col("cutout_ok")
    snr = F.when(inj_ok, col("arc_snr"))
    snr_fp = F.when(inj_ok, col("arc_snr_footprint"))
    theta = F.when(inj_ok, col("theta_e_arcsec"))

    def frac_gt(t, x=snr):
        return F.sum(F.when(x > t, 1).otherwise(0)) / F.count(x)

    def n_failing(ok):
        return F.sum((inj_ok & ~ok).cast("int"))

    phys = physics_ok(hlr_filter_arcsec)
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


def _quantiles(df) -> dict:
    """Job 1b: arc_snr and magnification quantiles of the ok injection rows, per split.
    percentile_approx is an object aggregate: Spark runs it without code generation, so it gets a
    job of its own on two pre-filtered columns instead of slowing job 1's ~90 aggregates down."""
    from pyspark.sql import functions as F

    col = F.col
    rows = (df.where((~col("is_control")) & col("cutout_ok"))
            .groupBy("region_split")
            .agg(F.percentile_approx("arc_snr", [q / 100 for q in QUANTILES], QUANTILE_ACCURACY).alias("arc_snr_q"),
                 F.percentile_approx("arc_snr_footprint", [q / 100 for q in QUANTILES],
                                     QUANTILE_ACCURACY).alias("arc_snr_footprint_q"),
                 F.percentile_approx("magnification", 0.5, QUANTILE_ACCURACY).alias("magnification_p50"))
            .collect())
    return {r["region_split"]: r.asDict() for r in rows}


def _summary(df, hlr_filter_arcsec, extra_aggs=()) -> dict:
    """Jobs 1 and 1b: {split: aggregates}."""
    summary = {r["region_split"]: r.asDict() for r in
               df.groupBy("region_split").agg(*_summary_aggs(hlr_filter_arcsec), *extra_aggs).collect()}
    quantiles = _quantiles(_scalar_frame(df))
    for split, s in summary.items():
        q = quantiles.get(split, {})
        s["arc_snr_q"] = q.get("arc_snr_q")
        s["arc_snr_footprint_q"] = q.get("arc_snr_footprint_q")
        s["magnification_p50"] = q.get("magnification_p50")
    return summary


def _hist_specs(run_config) -> dict:
    """histogram name -> (bin Column (NULL where the row has no value), number of bins)."""
    specs = {"theta_e": (_bin("theta_e_arcsec", run_config.theta_e_min_arcsec, run_config.theta_e_max_arcsec,
                              THETA_E_BINS, False), THETA_E_BINS)}
    for name, (expr, lo, hi, nb, log, _) in HISTOGRAMS.items():
        specs[name] = (_bin(expr, lo, hi, nb, log), nb)
    for name, ((ex, xlo, xhi, xn, xlog), (ey, ylo, yhi, yn, ylog)) in HIST2D.items():
        specs[name] = (_bin(ex, xlo, xhi, xn, xlog) * yn + _bin(ey, ylo, yhi, yn, ylog), xn * yn)
    return specs


def _histograms(df, run_config):
    """Job 2: (hist {split: {name: {"control": [...], "injection": [...]}}},
    reuse {split: {"unique": n, "max_uses": n}})."""
    from pyspark.sql import functions as F

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


#: Bits of the per-LRG mask in job 3: one per known split (any other non-null split name
#: shares bit 8; the row rule region_split_known fails such rows anyway), one per role.
_SPLIT_BITS = {"train": 1, "val": 2, "test": 4}
_OTHER_SPLIT_BIT, _CONTROL_BIT, _INJECTION_BIT = 8, 16, 32


def _uniqueness_and_leakage(df, *, leakage: bool = True, n_examples: int = 3) -> dict:
    """Job 3: duplicate task_id rows (exact) and, with `leakage`, LRGs in several splits and
    LRGs that are both a control and an injection host, in ONE shuffle.

    Each row enters twice: keyed (0, xxhash64(task_id)) and (1, lrg_id) with a small bit mask of
    its split and role. One hash aggregate counts the rows per key and ORs the masks: a task key
    counted twice is a duplicate candidate, an LRG whose mask has two split bits is in two splits,
    one with both role bits is both a control and a host. The shuffled row is (kind, key, count,
    mask): 4 fixed-width fields, where min/max pairs of split hashes and roles took 6 (and a
    min/max over the split *string* had made it a sort aggregate, ~100 s on 12M rows). A hash
    seen twice is re-checked exactly on task_id, so a 64-bit collision can neither fail the gate
    nor hide a duplicate."""
    from pyspark.sql import functions as F

    col = F.col
    h = F.xxhash64(col("task_id"))
    if leakage:
        split_bit = F.coalesce(
            F.when(col("region_split").isNull(), F.lit(0)),
            *[F.when(col("region_split") == F.lit(s), F.lit(b)) for s, b in _SPLIT_BITS.items()],
            F.lit(_OTHER_SPLIT_BIT))
        role_bit = F.coalesce(F.when(col("is_control"), F.lit(_CONTROL_BIT)).otherwise(
            F.when(~col("is_control"), F.lit(_INJECTION_BIT))), F.lit(0))
        entries = F.array(
            F.struct(F.lit(0).alias("kind"), h.alias("key"), F.lit(0).alias("m")),
            F.struct(F.lit(1).alias("kind"), col("lrg_id").cast("long").alias("key"),
                     (split_bit.bitwiseOR(role_bit)).alias("m")))
        per_key = (df.select(F.inline(entries)).groupBy("kind", "key")
                   .agg(F.count(F.lit(1)).alias("n"), F.expr("bit_or(m)").alias("m")))
        splits_in = F.bit_count(col("m").bitwiseAND(F.lit(15)))
        multi = (col("kind") == 1) & (splits_in > 1)
        both_roles = _CONTROL_BIT | _INJECTION_BIT
        shared = (col("kind") == 1) & (col("m").bitwiseAND(F.lit(both_roles)) == F.lit(both_roles))
        row = per_key.agg(
            F.sum(F.when((col("kind") == 0) & (col("n") > 1), col("n"))).alias("dup_hash_rows"),
            F.sum(multi.cast("int")).alias("multi_split"),
            F.sum(shared.cast("int")).alias("shared"),
            F.slice(F.collect_list(F.when(multi, col("key"))), 1, n_examples).alias("multi_ex"),
            F.slice(F.collect_list(F.when(shared, col("key"))), 1, n_examples).alias("shared_ex"),
        ).first().asDict()
    else:
        row = {"dup_hash_rows": df.groupBy(h.alias("key")).count().where(col("count") > 1)
               .agg(F.sum("count")).first()[0]}
    out = {"dup_rows": 0, "dup_examples": []}
    if row["dup_hash_rows"]:  # rare: confirm on the task_id itself (exact, and gives examples)
        dupes = df.groupBy("task_id").count().where(col("count") > 1)
        out["dup_rows"] = int(dupes.agg(F.sum("count")).first()[0] or 0)
        out["dup_examples"] = [r[0] for r in dupes.limit(n_examples).collect()] if out["dup_rows"] else []
    if leakage:
        out.update({"multi_split": int(row["multi_split"] or 0), "multi_ex": list(row["multi_ex"] or []),
                    "shared": int(row["shared"] or 0), "shared_ex": list(row["shared_ex"] or [])})
    return out


def _scalar_frame(df):
    return df.select(*[c for c in df.columns if c not in ("image", "invvar", "arc", "maskbits")])


def compute_profile(df, *, run_config, hlr_filter_arcsec, files_per_split: dict | None = None) -> dict:
    """Profile of every row of `df` (contract columns; pixel columns are not read)."""
    scalar = _scalar_frame(df)
    summary = _summary(scalar, hlr_filter_arcsec)
    return _assemble(summary, *_histograms(scalar, run_config), _uniqueness_and_leakage(scalar),
                     run_config=run_config, hlr_filter_arcsec=hlr_filter_arcsec, files_per_split=files_per_split)


def identity_sums() -> list:
    """Job 1's extra aggregates when the manifest's identity is known: the exact sums of the low
    and high 32 bits of xxhash64(task_id, lrg_id, region_split, is_control) per row, the same hash
    and sums as pipeline.task_identity.fingerprint computes over the manifest."""
    from pyspark.sql import functions as F

    col = F.col
    h = F.xxhash64(col("task_id").cast("string"), col("lrg_id").cast("long"),
                   col("region_split").cast("string"), col("is_control").cast("boolean"))
    return [F.sum(h.bitwiseAND(F.lit(0xFFFFFFFF))).alias("__id_lo"),
            F.sum(F.shiftrightunsigned(h, 32)).alias("__id_hi")]


def _identity_from_manifest(summary: dict, rows: int, identity: dict | None) -> dict | None:
    """Job 3's answer taken from the manifest, when the rows are exactly its tasks; else None."""
    if not identity:
        return None
    sums = [sum(int(s["__id_lo"] or 0) for s in summary.values()), sum(int(s["__id_hi"] or 0) for s in summary.values())]
    if sums != [int(x) for x in identity["fingerprint"]] or rows != int(identity["rows"]):
        return None
    return {k: identity[k] for k in ("dup_rows", "dup_examples", "multi_split", "multi_ex", "shared", "shared_ex")}


def profile_and_contract(df, *, run_config, hlr_filter_arcsec, files_per_split: dict | None = None,
                         include_pixels: bool = True, n_examples: int = 3, manifest_identity: dict | None = None):
    """(ContractResult, profile) with the row contract's counters fused into the profile's jobs:
    job 1 counts every contract check per split in the same scan as the summary, job 3 checks
    task_id uniqueness with the LRG leakage. Same results as check_row_contract + compute_profile.

    `manifest_identity` (manifest.json's `identity`, pipeline.task_identity.manifest_identity):
    when given, job 1 also fingerprints the rows' task identities and job 3 runs only if they
    differ from the manifest's (see the module docstring)."""
    from pyspark.sql import functions as F

    from pipeline.gate import row_contract
    from pipeline.task_identity import IDENTITY_COLUMNS

    schema_errors = row_contract.schema_errors(df, include_pixels)
    if row_contract.KEY_COLUMNS - set(df.columns):
        return row_contract.ContractResult(False, -1, schema_errors, {}), None
    if set(IDENTITY_COLUMNS) - set(df.columns):
        manifest_identity = None
    preds = row_contract.row_predicates(run_config, df.columns)
    contract_aggs = [F.sum(v.cast("long")).alias(f"__c{i}") for i, v in enumerate(preds.values())]
    summary = _summary(df, hlr_filter_arcsec, contract_aggs + (identity_sums() if manifest_identity else []))
    rows = sum(int(s["rows"]) for s in summary.values())
    scalar = _scalar_frame(df)
    hist, reuse = _histograms(scalar, run_config)
    uniq = _identity_from_manifest(summary, rows, manifest_identity)
    identity = {"checked_by": "manifest fingerprint" if uniq else "exact shuffle",
                "matches_manifest": (uniq is not None) if manifest_identity else None}
    if uniq is None:
        uniq = _uniqueness_and_leakage(scalar, n_examples=n_examples)
    counts = [sum(int(s[f"__c{i}"] or 0) for s in summary.values()) for i in range(len(preds))]
    contract = row_contract.contract_result(
        df, schema_errors, preds, counts, rows=rows,
        dup_rows=uniq["dup_rows"], dup_examples=uniq["dup_examples"], n_examples=n_examples)
    if contract.rows == 0:
        return contract, None
    prof = _assemble(summary, hist, reuse, uniq, run_config=run_config,
                     hlr_filter_arcsec=hlr_filter_arcsec, files_per_split=files_per_split)
    prof["all"]["task_identity"] = identity
    return contract, prof


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
        th = np.asarray(h.get("theta_e", {}).get("injection", [0] * THETA_E_BINS), float)
        n_th = th.sum()
        if n_th:
            ks = ks_from_counts(th, np.ones(THETA_E_BINS))
            d["theta_e_ks"] = ks
            d["theta_e_ks_ratio"] = ks / (KS_C_ALPHA / math.sqrt(n_th))
            d["theta_e_hist_max_rel_dev"] = float(np.max(np.abs(th / n_th * THETA_E_BINS - 1)))
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
                ks = ks_from_counts(a, b)
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
        "histograms": {split: {k: dict(v, **_edges(k, run_config)) for k, v in h.items()} for split, h in hist.items()},
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


def _edges(name, run_config) -> dict:
    if name == "theta_e":
        return {"lo": run_config.theta_e_min_arcsec, "hi": run_config.theta_e_max_arcsec, "log10": False}
    if name in HISTOGRAMS:
        _, lo, hi, _, log, _ = HISTOGRAMS[name]
        return {"lo": lo, "hi": hi, "log10": log}
    (_, xlo, xhi, xn, xlog), (_, ylo, yhi, yn, ylog) = HIST2D[name]
    return {"x": [xlo, xhi, xn, xlog], "y": [ylo, yhi, yn, ylog]}
