"""`validate_dataset`: row contract + profile + GX suites + Data Docs + report -> GateResult.

Outputs in `out_dir`:
  validation.json   seed section 9 keys (on ALL rows) + expectations + row_contract + profile + passed
                    + dataset {uri, data_uri, content_checksum, files} (promotion re-checks the checksum)
                    + run, suite, suite_policy, run_config, code, drift: what the verdict is bound to
  profile.json      the profile alone (the next run's --reference-profile once this one is promoted)
  data_docs/        GX Data Docs site (index.html)
  report/index.html human report with plots and a stamp gallery
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pipeline import storage
from pipeline.errors import InputError
from pipeline.gate import inputs
from pipeline.gate.thresholds import load_thresholds

log = logging.getLogger(__name__)


@dataclass
class GateResult:
    passed: bool
    failures: list[str]
    out_dir: str
    validation_json: str
    profile_json: str
    data_docs_index: str | None = None
    report_index: str | None = None
    content_checksum: str = ""
    expectations: list[dict] = field(default_factory=list)


def local_spark(app_name: str = "dhs-validate"):
    """The session for a direct `dhs validate` (the EMR step passes its own): the project's one
    factory, so the pixel-row reader batch and driver heap are the Spark steps' own."""
    from pipeline.spark_session import get_spark

    return get_spark(app_name)


def load_reference_profile(ref) -> dict | None:
    """A profile from a dict, or a profile.json / validation.json / promotion.json path."""
    if ref is None or isinstance(ref, dict):
        return ref
    try:
        doc = json.loads(storage.read_bytes(str(ref)))
    except ValueError as exc:
        raise InputError(str(ref), f"not valid JSON: {exc}") from None
    doc = doc.get("profile", doc)
    if "splits" not in doc:
        raise InputError(str(ref), "not a profile (no 'splits')")
    return doc


def _config_sha256(run_config) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(run_config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()


def seed_summary(profile: dict) -> dict:
    """The seed's section 9 keys, computed on all rows (sampled_rows = estimated_total_rows = rows)."""
    def pct(x):
        return None if x is None else round(100 * x, 4)

    splits = {}
    for split, s in profile["splits"].items():
        splits[split] = {
            "sampled_rows": s["rows"],
            "total_files": s.get("files"),
            "estimated_total_rows": s["rows"],
            "cutout_ok_pct": pct(s["cutout_ok_rate"]),
            "arc_snr": {
                "min": s.get("arc_snr_min"), "max": s.get("arc_snr_max"), "mean": s.get("arc_snr_mean"),
                "median": s.get("arc_snr_p50"), "std": s.get("arc_snr_std"),
                "gt_1_pct": pct(s.get("arc_snr_gt1_frac")), "gt_10_pct": pct(s.get("arc_snr_gt10_frac")),
                "gt_50_pct": pct(s.get("arc_snr_gt50_frac")),
                **{f"p{q}": s.get(f"arc_snr_p{q}") for q in (5, 25, 50, 75, 95)},
            },
            # not a seed key: the footprint SNR (metrics.py), and the share of arcs whose
            # brightest good pixel is above 1 sigma
            "arc_snr_footprint": {
                "min": s.get("arc_snr_footprint_min"), "max": s.get("arc_snr_footprint_max"),
                "mean": s.get("arc_snr_footprint_mean"), "median": s.get("arc_snr_footprint_p50"),
                "gt_1_pct": pct(s.get("arc_snr_footprint_gt1_frac")),
                "gt_10_pct": pct(s.get("arc_snr_footprint_gt10_frac")),
                **{f"p{q}": s.get(f"arc_snr_footprint_p{q}") for q in (5, 25, 50, 75, 95)},
            },
            "arc_snr_peak_gt_1_pct": pct(s.get("arc_snr_peak_gt1_frac")),
            "theta_e": {k: s.get(f"theta_e_{k}") for k in ("min", "max", "mean")},
            "cosmos_unique_indices": s.get("cosmos_unique"),
            "cosmos_hlr": {k: s.get(f"cosmos_hlr_{k}") for k in ("min", "max", "mean")},
            "psfsize_r": {k: s.get(f"psfsize_r_{k}") for k in ("min", "max", "mean")},
        }
    return {"splits": splits, "estimated_total_stamps": profile["all"]["rows"]}


def validate_dataset(dataset_uri: str, *, manifest_uri: str, variant: str, out_dir: str,
                     reference_profile=None, spark=None, build_docs: bool = True,
                     build_report: bool = True, pipeline_run: str | None = None,
                     dataset_root: str | None = None, expected: dict | None = None) -> GateResult:
    """Gate a dataset: every row against the contract, the profile against the variant's suite.

    `expected` ({"data_uri", "content_checksum"}, from the run's compact receipt) binds the
    validation to the bytes the previous step wrote: lineage.ChainBroken when the data differs.
    Unreadable data (a corrupt Parquet file, a checksum sidecar that no longer matches) raises
    InputError naming the file, whichever library noticed it."""
    from pipeline.gate import spark_errors

    with spark_errors.unreadable_data_as_input_error(dataset_uri):
        return _validate(dataset_uri, manifest_uri=manifest_uri, variant=variant, out_dir=out_dir,
                         reference_profile=reference_profile, spark=spark, build_docs=build_docs,
                         build_report=build_report, pipeline_run=pipeline_run, dataset_root=dataset_root,
                         expected=expected)


def add_identity_and_pixel_checks(spark, df, contract, prof, *, metadata: dict, manifest_uri: str,
                                  identity_record: dict | None) -> None:
    """The row checks outside the fused scan, added to `contract`:
    - matches_manifest: the rows' identity fingerprint must equal the manifest's; when it does not,
      an exact comparison names what differs (pipeline.gate.manifest_match);
    - pixels_agree:*: every row's pixel-derived scalars, PSF and band order re-derived from its
      own stored pixels and conditions (pipeline.gate.pixel_agreement)."""
    from pipeline.gate import manifest_match, pixel_agreement

    identity = (prof or {}).get("all", {}).get("task_identity") or {}
    if identity_record is not None:
        contract.add_check("matches_manifest", manifest_match.differences(spark, df, manifest_uri)
                           if identity.get("matches_manifest") is False else {"failed_rows": 0, "examples": []})
    log.info("pixel agreement")
    for name, result in pixel_agreement.pixel_agreement(df, metadata=metadata).items():
        contract.add_check(name, result)


def _validate(dataset_uri, *, manifest_uri, variant, out_dir, reference_profile, spark, build_docs, build_report,
              pipeline_run, dataset_root, expected) -> GateResult:
    from pipeline import dataset, lineage
    from pipeline.gate import manifest_match
    from pipeline.gate import profile as profile_mod
    from pipeline.gate import suites
    from pipeline.gate.thresholds import strictness_gaps

    thresholds = load_thresholds(variant)
    manifest = inputs.read_manifest_counts(manifest_uri)
    ds = dataset.open_dataset(dataset_uri)
    reference = load_reference_profile(reference_profile)
    run_config = inputs.run_config_for(ds.metadata, manifest["json"], variant)
    hlr_filter = inputs.hlr_filter_for(ds.metadata, manifest["json"])
    checksum = dataset.files_checksum(ds.files)
    if expected:
        lineage.check_same_data(found={"data_uri": ds.data_uri, "content_checksum": checksum}, expected=expected,
                                found_what="the data to validate",
                                expected_what=expected.get("what", "what the previous step wrote"))
    suite_gaps = strictness_gaps(thresholds, load_thresholds(run_config.min_gate_suite))
    identity_record = inputs.manifest_identity_for(manifest["json"]) or manifest_match.identity_from_table(manifest_uri)

    spark = spark or local_spark()
    df = dataset.read_rows(spark, ds)
    log.info("row contract + profile on %s", ds.data_uri)
    # one scan of the rows for the contract's counters and the profile's summary (see profile.py)
    contract, prof = profile_mod.profile_and_contract(df, run_config=run_config, hlr_filter_arcsec=hlr_filter,
                                                      files_per_split=ds.files_per_split(),
                                                      manifest_identity=identity_record)
    if contract.rows == 0:
        raise InputError(ds.data_uri, "the dataset has no rows")
    if contract.rows < 0:  # key columns missing: nothing to profile
        raise InputError(ds.data_uri, "; ".join(contract.schema_errors) or "not a Phase 4c dataset")
    add_identity_and_pixel_checks(spark, df, contract, prof, metadata=ds.metadata, manifest_uri=manifest_uri,
                                  identity_record=identity_record)
    # the shortcut probe (issue 16): its held-out AUC per split goes into the profile, where the
    # suites' `shortcut_probe` check bounds it; the features that carried a signal are named below
    from pipeline.gate import shortcut_probe

    log.info("shortcut probe")
    shortcut_probe.add_to_profile(df, prof)
    log.info("suites (%s)", thresholds.variant)
    out = Path(out_dir) if not storage.is_s3(out_dir) else Path("/tmp/dhs_validation") / Path(out_dir).name
    out.mkdir(parents=True, exist_ok=True)
    split_frame, dataset_frame = suites.metrics_frames(prof, manifest["tasks_per_split"], thresholds, reference)
    docs_dir = out / "data_docs" if build_docs else None
    results = suites.run_suites(split_frame, dataset_frame, thresholds, with_drift=reference is not None,
                                data_docs_dir=str(docs_dir) if docs_dir else None)
    failures = contract.failures() + suites.failure_messages(results)
    failures += shortcut_probe.failure_details(prof, results)
    if suite_gaps:
        failures.append(f"suite_policy: suite {thresholds.variant!r} is weaker than {run_config.min_gate_suite!r}, the "
                        f"weakest suite run config {run_config.variant!r} may be promoted under: "
                        + "; ".join(suite_gaps[:3]))
    passed = not failures

    from pipeline.gate import report, seed_questions

    # The seed review's data questions, answered in validation.json even when no report is built.
    seed_answers = seed_questions.answer_seed_questions(prof, report.seed_sample(df), results=results,
                                                        failures=failures)
    report_index = None
    if build_report:
        drift_note = {"checked": reference is not None, "reference": reference_profile if isinstance(reference_profile, str) else None,
                      "note": None if reference is not None else
                      f"no reference: no earlier promotion of run config {run_config.variant!r} to compare with"}
        report_index = report.write_report(out / "report", prof, results, failures, df=df,
                                           title=f"{ds.dataset_uri} ({thresholds.variant})", seed_answers=seed_answers,
                                           binding={"data_uri": ds.data_uri, "content_checksum": checksum,
                                                    "suite": thresholds.variant, "run": pipeline_run,
                                                    "drift": drift_note})
    from pipeline import __version__ as pipeline_version

    doc = {
        "timestamp": datetime.now(timezone.utc).isoformat(),
        **seed_summary(prof),
        "passed": passed,
        "failures": failures,
        "variant": thresholds.variant,
        "suite": thresholds.variant,
        "thresholds_file": thresholds.source,
        "suite_policy": {"min_gate_suite": run_config.min_gate_suite, "suite": thresholds.variant,
                         "satisfied": not suite_gaps, "gaps": suite_gaps},
        "run": pipeline_run,
        "run_config": {"variant": run_config.variant, "experiment_id": run_config.experiment_id,
                       "min_gate_suite": run_config.min_gate_suite, "moffat_beta": run_config.moffat_beta,
                       "sha256": _config_sha256(run_config)},
        "code": {"pipeline_version": pipeline_version, "git_commit": dataset.git_commit(),
                 "rows_written_by": (ds.metadata or {}).get("pipeline_version"),
                 "rows_git_commit": (ds.metadata or {}).get("git_commit")},
        "dataset": {"uri": str(dataset_root or ds.dataset_uri), "data_uri": ds.data_uri, "content_checksum": checksum,
                    "files": len(ds.files), "rows_per_split": {s: v["rows"] for s, v in prof["splits"].items()}},
        "manifest": {"uri": str(manifest_uri), "tasks_per_split": manifest["tasks_per_split"]},
        "reference_profile": str(reference_profile) if reference_profile and not isinstance(reference_profile, dict) else None,
        "drift": {"checked": reference is not None,
                  "reference": (str(reference_profile) if reference_profile and not isinstance(reference_profile, dict)
                                else ("(given as a profile)" if reference else None)),
                  "note": None if reference is not None else
                  f"no reference: no earlier promotion of run config {run_config.variant!r} to compare with"},
        "expectations": results,
        "row_contract": contract.to_dict(),
        "profile": prof,
        "seed_questions": seed_answers,
        "outputs": {"data_docs": str(docs_dir / "index.html") if docs_dir else None, "report": report_index},
    }
    docs_index = str(docs_dir / "index.html") if docs_dir else None
    if storage.is_s3(out_dir):
        # GX builds Data Docs on local disk only: build here, then copy beside validation.json.
        if docs_dir:
            storage.put_tree(docs_dir, storage.join(str(out_dir), "data_docs"))
            docs_index = storage.join(str(out_dir), "data_docs", "index.html")
        if report_index:
            storage.put_tree(Path(report_index).parent, storage.join(str(out_dir), "report"))
            report_index = storage.join(str(out_dir), "report", "index.html")
        doc["outputs"] = {"data_docs": docs_index, "report": report_index}
    val_uri = storage.join(str(out_dir), "validation.json")
    prof_uri = storage.join(str(out_dir), "profile.json")
    storage.write_bytes(val_uri, json.dumps(doc, indent=1, default=str).encode())
    storage.write_bytes(prof_uri, json.dumps(prof, indent=1, default=str).encode())
    return GateResult(passed, failures, str(out_dir), val_uri, prof_uri, docs_index, report_index, checksum, results)
