"""Great Expectations suites over the profile (not over the rows).

The profile holds every statistic of every row (pipeline.gate.profile); the suites check it. This
keeps GX off the 12M rows (GX on Spark computes exact quantiles row by row) while every
expectation, its observed value and its bounds still land in GX's validation results and Data Docs.

Two small pandas frames are validated:
- "splits": one row per split, one column per metric (e.g. arc_snr_p50, cutout_ok_rate);
- "dataset": one row for the whole dataset (totals, leakage).
Each threshold check (expectations/<variant>.yaml) becomes one ExpectColumnValuesToBeBetween on
its metric column; split-scoped metrics also get ExpectColumnValuesToNotBeNull so an unmeasurable
metric (a split with no injections) fails instead of passing vacuously.
"""

from __future__ import annotations

import math

from pipeline.gate.thresholds import Check, Thresholds

SPLIT_ORDER = ("train", "val", "test")


def _rel_change(cur, ref):
    if cur is None or ref is None:
        return None
    return abs(cur - ref) / max(abs(ref), 1e-12)


def metrics_frames(profile: dict, tasks_per_split: dict, thresholds: Thresholds, reference_profile: dict | None = None):
    """(splits_frame, dataset_frame) as pandas DataFrames of the metrics the checks read."""
    import pandas as pd

    splits = sorted(set(profile["splits"]) | set(tasks_per_split),
                    key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, s))
    rows = []
    for split in splits:
        m = dict(profile["splits"].get(split, {"rows": 0}))
        m["region_split"] = split
        m["manifest_tasks"] = tasks_per_split.get(split, 0)
        m["rows_minus_manifest"] = m.get("rows", 0) - m["manifest_tasks"]
        if reference_profile:
            ref = reference_profile.get("splits", {}).get(split, {})
            for metric in thresholds.drift:
                m[f"drift_{metric}"] = _rel_change(m.get(metric), ref.get(metric))
        rows.append(m)
    total = dict(profile["all"])
    total["region_split"] = "all"
    total["manifest_tasks"] = sum(tasks_per_split.values())
    total["rows_minus_manifest"] = total["rows"] - total["manifest_tasks"]
    split_frame = pd.DataFrame(rows)
    dataset_frame = pd.DataFrame([{k: v for k, v in total.items() if not isinstance(v, list)}])
    # every metric a check reads must exist as a column, even if no split measured it
    for c in all_checks(thresholds, reference_profile is not None):
        frame = split_frame if c.scope == "split" else dataset_frame
        if c.metric not in frame.columns:
            frame[c.metric] = None
    return split_frame, dataset_frame


def all_checks(thresholds: Thresholds, with_drift: bool) -> list[Check]:
    checks = list(thresholds.checks)
    if with_drift:
        checks += [Check(f"drift_{m}", f"drift_{m}", "split", None, tol,
                         f"relative change of {m} against the reference profile")
                   for m, tol in thresholds.drift.items()]
    return checks


def _observed_per_row(frame, metric):
    out = {}
    for split, v in zip(frame["region_split"], frame[metric]):
        out[split] = None if v is None or (isinstance(v, float) and math.isnan(v)) else (
            float(v) if isinstance(v, (int, float)) else v)
    return out


def run_suites(split_frame, dataset_frame, thresholds: Thresholds, *, with_drift: bool,
               data_docs_dir: str | None = None, suite_name: str | None = None) -> list[dict]:
    """Run the GX suites; return one result per check:
    {name, metric, scope, success, expected, observed: {split: value}, failing: [split], why}.
    When `data_docs_dir` is given, GX Data Docs are built there (index.html)."""
    import os

    import logging

    # no usage statistics leave the machine; GX reads this at import
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    # GX logs dozens of internal INFO lines per run ("Skipping registering function ..."), which
    # bury the gate's own output in the CLI and the Airflow task log
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.checkpoint import UpdateDataDocsAction

    context = gx.get_context(mode="ephemeral")
    try:  # progress bars would flood the CLI and the Airflow log for ~60 tiny expectations
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    suite_name = suite_name or f"dhs_gate_{thresholds.variant}"
    checks = all_checks(thresholds, with_drift)
    frames = {"split": split_frame, "dataset": dataset_frame}
    source = context.data_sources.add_pandas("dhs_profile")
    definitions = []
    for scope, frame in frames.items():
        expectations = []
        for c in checks:
            if c.scope != scope:
                continue
            meta = {"check": c.name, "why": c.why, "expected": c.expected()}
            if scope == "split":
                expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=c.metric, meta=dict(meta, part="measured")))
            expectations.append(gxe.ExpectColumnValuesToBeBetween(
                column=c.metric, min_value=c.min, max_value=c.max, meta=meta))
        # handed over whole: add_expectation on a stored suite re-saves the suite each time
        # (quadratic; 1.6 s for the demo's ~60 expectations, 0.04 s at once)
        suite = context.suites.add(gx.ExpectationSuite(name=f"{suite_name}_{scope}", expectations=expectations))
        asset = source.add_dataframe_asset(f"profile_{scope}")
        batch_def = asset.add_batch_definition_whole_dataframe(f"{scope}_metrics")
        definitions.append((scope, context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite_name}_{scope}", data=batch_def, suite=suite))))

    actions = []
    if data_docs_dir:
        context.add_data_docs_site(site_name="dhs_local", site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
        actions.append(UpdateDataDocsAction(name="update_data_docs", site_names=["dhs_local"]))

    by_check: dict[str, dict] = {}
    for scope, vd in definitions:
        cp = context.checkpoints.add(gx.Checkpoint(
            name=f"{suite_name}_{scope}_checkpoint", validation_definitions=[vd], actions=actions,
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["region_split"]}))
        frame = frames[scope]
        run = cp.run(batch_parameters={"dataframe": frame})
        for vr in run.run_results.values():
            for er in vr.results:
                cfg = er.expectation_config
                name = cfg.meta["check"]
                check = next(c for c in checks if c.name == name)
                entry = by_check.setdefault(name, {
                    "name": name, "metric": check.metric, "scope": scope, "success": True,
                    "expected": check.expected(), "min": check.min, "max": check.max,
                    "observed": _observed_per_row(frame, check.metric), "failing": [], "why": check.why})
                if not er.success:
                    entry["success"] = False
                    idx = (er.result or {}).get("unexpected_index_list") or []
                    failing = [d.get("region_split") if isinstance(d, dict) else d for d in idx]
                    if cfg.meta.get("part") == "measured":
                        failing = [f"{s} (not measured)" for s in failing]
                    entry["failing"] += [s for s in failing if s not in entry["failing"]]
    if data_docs_dir:
        from pipeline.gate.data_docs import harden_site  # noqa: PLC0415

        harden_site(data_docs_dir)  # offline assets, no third-party or inline script (served on Airflow's origin)
    return [by_check[c.name] for c in checks if c.name in by_check]


def failure_messages(results: list[dict]) -> list[str]:
    """One readable line per failed check: name, where, observed vs expected, why."""
    out = []
    for r in results:
        if r["success"]:
            continue
        where = r["failing"] or list(r["observed"])
        observed = ", ".join(
            f"{s.split(' ')[0]}={_fmt(r['observed'].get(s.split(' ')[0]))}" for s in where)
        out.append(f"{r['name']}: {r['metric']} {observed} (expected {r['expected']})"
                   + (f" - {r['why']}" if r["why"] else ""))
    return out


def _fmt(v):
    if v is None:
        return "not measured"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
