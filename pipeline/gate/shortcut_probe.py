"""The shortcut probe (SPEC 8, issue 16): can a classifier tell controls from injections using only
what must NOT carry the label?

Features (per row, cutout_ok rows only): the survey conditions (psfsize_g/r/z, psfdepth_r), the
lens magnitude, the position (ra, dec, brick), the bad-pixel fraction, and statistics of the
stamp's invvar and maskbits (per band: mean invvar and the fraction of invvar = 0 pixels; the
fraction of pixels with any maskbit and with a BAD_MASKBITS bit). None of them sees the image or
the arc: a CNN trained on the stamps can use them only through the noise map and the masks, which
an injection does not change. If a gradient-boosting classifier (scikit-learn's
HistGradientBoostingClassifier, random_state pinned) separates the two classes on held-out rows,
the dataset carries a shortcut (e.g. controls drawn from better-seeing bricks) that the CNN would
learn instead of the lens.

Method, per region_split (train and test rows never mix splits): stratified 5-fold
cross-validation inside the split (shuffle with a pinned seed), every row predicted once by a model
that did not see it, ROC AUC of those out-of-fold scores. Chance is 0.5; the gate's threshold
(expectations/*.yaml, check `shortcut_probe` on the largest AUC over the splits) is 0.55: with n rows per class the AUC's standard
error under no signal is sqrt((2n + 1) / (12 n^2)), 0.012 at 1,000 rows per class, so 0.55 is
4 sigma for the demo's smallest split. The features that carried a signal are named by
permutation importance (mean drop of held-out AUC when the feature is shuffled).

Pure core: `probe(features, labels)` (numpy, pandas, scikit-learn). Spark adapter:
`probe_features(df, per_split_rows)` computes the features with native column expressions on a
deterministic hash sample of at most MAX_ROWS_PER_SPLIT rows per split.
"""

from __future__ import annotations

import numpy as np

from pipeline.contract import BANDS

#: Rows per split the probe trains and tests on (a hash sample when a split is larger).
MAX_ROWS_PER_SPLIT = 20_000
FOLDS = 5
SEED = 20260204
#: Features reported as having carried a signal: the top ones by permutation importance,
#: computed only for a split whose AUC exceeds NAME_FEATURES_ABOVE_AUC (it costs a prediction per
#: feature and fold).
TOP_FEATURES = 3
NAME_FEATURES_ABOVE_AUC = 0.55
SCALAR_FEATURES = (*(f"psfsize_{b}" for b in BANDS), "psfdepth_r", "lens_mag_r", "ra", "dec", "bad_pixel_frac")


def probe(features, labels, *, folds: int = FOLDS, seed: int = SEED) -> dict:
    """{"auc", "rows", "top_features": [(name, importance)]} for one split; auc None when a class
    has fewer than `folds` rows (nothing to learn from). One OpenMP thread: on a shared 2-core
    machine scikit-learn's default threads spin against Spark's (measured 15 s vs 0.7 s for 2,000
    rows)."""
    from threadpoolctl import threadpool_limits  # noqa: PLC0415 - a scikit-learn dependency

    with threadpool_limits(1):
        return _probe(features, labels, folds=folds, seed=seed)


def _probe(features, labels, *, folds: int, seed: int) -> dict:
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: PLC0415
    from sklearn.metrics import roc_auc_score  # noqa: PLC0415
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415

    x = np.asarray(features, dtype=float)
    y = np.asarray(labels).astype(int)
    names = list(getattr(features, "columns", [f"f{i}" for i in range(x.shape[1])]))
    if min(int(y.sum()), int((1 - y).sum())) < folds:
        return {"auc": None, "rows": int(len(y)), "top_features": []}
    scores = np.empty(len(y))
    models = []
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
    for train, test in splits:
        model = HistGradientBoostingClassifier(max_iter=60, random_state=seed, early_stopping=False)
        model.fit(x[train], y[train])
        scores[test] = model.predict_proba(x[test])[:, 1]
        models.append(model)
    auc = float(roc_auc_score(y, scores))
    top = []
    if auc > NAME_FEATURES_ABOVE_AUC:
        drops = np.zeros(x.shape[1])
        rng = np.random.default_rng(seed)
        for model, (_, test) in zip(models, splits):
            base = roc_auc_score(y[test], scores[test])
            for j in range(x.shape[1]):
                shuffled = x[test].copy()
                shuffled[:, j] = rng.permutation(shuffled[:, j])
                drops[j] += (base - roc_auc_score(y[test], model.predict_proba(shuffled)[:, 1])) / folds
        top = [(names[j], round(float(drops[j]), 4)) for j in np.argsort(-drops)[:TOP_FEATURES]]
    return {"auc": auc, "rows": int(len(y)), "top_features": top}


def probe_features(df, per_split_rows: dict, max_rows_per_split: int = MAX_ROWS_PER_SPLIT):
    """pandas frame: region_split, is_control and the probe's features for a hash sample of the
    ok rows of each split (native Spark expressions; no pixel array reaches the driver)."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    from pipeline.contract import STAMP_SIZE_PIX  # noqa: PLC0415
    from pipeline.survey.maskbits import BAD_MASKBITS  # noqa: PLC0415

    n2 = STAMP_SIZE_PIX * STAMP_SIZE_PIX
    frac = {s: min(1.0, max_rows_per_split / max(int(r), 1)) for s, r in per_split_rows.items()}
    keep = F.lit(False)
    u = (F.xxhash64("task_id").bitwiseAND(F.lit(0xFFFFFFFF)).cast("double") / F.lit(float(2**32)))
    for split, f in frac.items():
        keep = keep | ((F.col("region_split") == F.lit(split)) & (u < F.lit(f)))
    rows = df.where(F.col("cutout_ok") & keep)
    cols = [F.col("region_split"), F.col("is_control").cast("int").alias("is_control")]
    cols += [F.col(c).cast("double").alias(c) for c in SCALAR_FEATURES]
    cols.append((F.xxhash64("brickname").bitwiseAND(F.lit(0xFFFFF))).cast("double").alias("brick"))
    for i, b in enumerate(BANDS):
        band = f"slice(invvar, {i * n2 + 1}, {n2})"
        cols.append(F.expr(f"aggregate({band}, 0D, (a, x) -> a + x) / {n2}").alias(f"invvar_mean_{b}"))
        cols.append(F.expr(f"size(filter({band}, x -> x <= 0)) / {n2}").alias(f"invvar_zero_frac_{b}"))
    cols.append(F.expr(f"size(filter(maskbits, x -> x != 0)) / {n2}").alias("maskbits_any_frac"))
    cols.append(F.expr(f"size(filter(maskbits, x -> (x & {int(BAD_MASKBITS)}) != 0)) / {n2}").alias("maskbits_bad_frac"))
    return rows.select(*cols).toPandas()


def run(df, per_split_rows: dict) -> dict:
    """{split: probe(...)} on the dataset's rows (see module docstring)."""
    frame = probe_features(df, per_split_rows)
    out = {}
    for split, part in frame.groupby("region_split"):
        feats = part.drop(columns=["region_split", "is_control"]).fillna(-1.0)
        out[str(split)] = probe(feats, part["is_control"].to_numpy())
    return out


def add_to_profile(df, prof: dict) -> dict:
    """Run the probe; each split's AUC and top features go into its profile entry, and the largest
    AUC over the splits into prof["all"]["shortcut_probe_auc_max"] (the metric the suites'
    dataset-scope `shortcut_probe` check bounds: the largest below the threshold = every split)."""
    results = run(df, {s: v["rows"] for s, v in prof["splits"].items()})
    aucs = []
    for split, r in results.items():
        if split in prof["splits"]:
            prof["splits"][split]["shortcut_probe_auc"] = None if r["auc"] is None else round(r["auc"], 4)
            prof["splits"][split]["shortcut_probe_rows"] = r["rows"]
            prof["splits"][split]["shortcut_probe_top_features"] = ", ".join(f"{n} ({d:+.3f})" for n, d in r["top_features"])
            if r["auc"] is not None:
                aucs.append(r["auc"])
    prof["all"]["shortcut_probe_auc_max"] = round(max(aucs), 4) if aucs else None
    return results


def failure_details(prof: dict, results: list[dict]) -> list[str]:
    """For a failed `shortcut_probe` check: each split's AUC and the features that carried the label."""
    if not any(r.get("metric") == "shortcut_probe_auc_max" and not r.get("success", True) for r in results):
        return []
    return [f"shortcut_probe_features: {split}: AUC {s.get('shortcut_probe_auc')}, the label is carried by "
            f"{s.get('shortcut_probe_top_features')} (held-out AUC drop when each is shuffled)"
            for split, s in prof["splits"].items() if s.get("shortcut_probe_auc") is not None]
