"""The production DAG on its local backend, end to end on a tiny survey (issue 6, item 6).

Inputs are made by the user commands' code (`synth_survey`, `dhs bank synth`, `dhs manifest`),
then `airflow dags test` runs the real DAG: three spark-submit steps, the gate, promotion.

Two runs on the same output, in this order (module fixture):
1. gate_suite strict (fails the demo data on purpose): the run fails, nothing is promoted;
2. gate_suite demo: the inject step finds its complete output and skips it (same manifest, bank,
   config and code -> same derived run id), a new compaction and validation follow, the gate
   passes, promotion.json is written and the training Asset gets its event.
Running strict first is also the realistic sequence: a refused dataset stays unpromoted until a
run whose gate passes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytest_plugins = ["tests.airflow_fixtures"]
pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.spark]

REPO = Path(__file__).resolve().parents[1]


def make_tiny_inputs(out: Path) -> dict:
    """12 bricks of 256 pix, 20 LRGs each (240 tasks: train 71, val 100, test 69 with the demo
    config's seed), a 40-galaxy synthetic bank plus the real HST galaxies, the demo manifest.
    Smaller surveys leave val/test empty or with too few injections for the demo suite's
    per-split checks (cosmos_unique >= 10, arc_snr_gt10_frac >= 0.02): they cannot pass it."""
    from pipeline.cli.main import main
    from pipeline.survey.synth import synth_survey

    survey, bank_dir, manifest = out / "survey", out / "bank", out / "manifest"
    synth_survey(str(survey), n_bricks=12, brick_size_pix=256, lrgs_per_brick=20, edge_frac=0)
    assert main(["bank", "synth", "--out", str(bank_dir), "--n", "40", "--include-real", str(REPO / "data" / "hst_galaxies")]) == 0
    assert main(["manifest", "--lrg", str(survey / "lrg.parquet"), "--bank", str(bank_dir / "cosmos_bank.h5"),
                 "--config", "demo", "--out", str(manifest)]) == 0
    return {"manifest": manifest, "coadd": survey / "coadd", "bank": bank_dir / "cosmos_bank.h5"}


def local_conf(inputs: dict, dataset: Path, suite: str) -> dict:
    return {
        "backend": "local",
        "variant": "demo",
        "run_config": "demo",
        "manifest_uri": str(inputs["manifest"]),
        "coadd_cache_prefix": str(inputs["coadd"]),
        "cosmos_bank_h5": str(inputs["bank"]),
        "output_prefix": str(dataset),
        "local_master": "local[2]",
        "gate_suite": suite,
        "target_file_mb": 16,
    }


@pytest.fixture(scope="module")
def local_runs(airflow_home):
    out = airflow_home.out_root / "local"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    inputs = make_tiny_inputs(out)
    inputs_s = time.time() - t0
    dataset = out / "dataset"
    strict = airflow_home.run_dag(local_conf(inputs, dataset, "strict"), log_name="local_strict")
    promoted_after_strict = (dataset / "promotion.json").exists()
    demo = airflow_home.run_dag(local_conf(inputs, dataset, "demo"), log_name="local_demo")
    print(f"\nlocal backend: inputs {inputs_s:.0f} s, strict run {strict.seconds:.0f} s, demo run {demo.seconds:.0f} s")
    return {"inputs": inputs, "dataset": dataset, "strict": strict, "demo": demo,
            "promoted_after_strict": promoted_after_strict}


def _validation(dataset: Path, run) -> dict:
    from dhs_airflow.plan import _safe_run_name

    return json.loads((dataset / "validation" / _safe_run_name(run.run_id) / "validation.json").read_text())


def test_local_strict_gate_fails_nothing_promoted(local_runs, airflow_home):
    """gate_suite strict: the validation fails (emr_steps/validate.py exits 1, so local_validate
    fails with the gate's failures in its log), the run ends failed, promote_dataset never runs,
    no promotion.json, no asset event."""
    run, dataset = local_runs["strict"], local_runs["dataset"]
    assert run.state == "failed", run.explain()
    for task in ("plan", "choose_backend", "local_inject", "local_compact"):
        assert run.tasks[task] == "success", (task, run.explain())
    for task in ("create_cluster", "emr_inject", "wait_validate"):
        assert run.tasks[task] == "skipped", (task, run.explain())
    assert run.tasks["local_validate"] == "failed", run.explain()
    assert run.tasks["gate"] in ("failed", "upstream_failed"), run.explain()
    assert run.tasks["promote_dataset"] == "upstream_failed", run.explain()
    assert not local_runs["promoted_after_strict"]
    doc = _validation(dataset, run)
    assert doc["variant"] == "strict" and doc["passed"] is False and doc["failures"]
    log = run.log.read_text(errors="replace")
    assert "gate FAILED" in log and doc["failures"][0] in log  # the reason, readable in the task log
    assert not [e for e in airflow_home.asset_events("dhs_training_dataset") if e["source_run_id"] == run.run_id]


def test_local_demo_gate_passes_and_promotes(local_runs, airflow_home):
    """gate_suite demo: run success, promotion.json pinned to the validated data, the training
    Asset's event carrying the record, and the consumer DAG queued on it."""
    from pipeline.gate import datasets

    run, dataset = local_runs["demo"], local_runs["dataset"]
    assert run.state == "success", run.explain()
    for task in ("plan", "choose_backend", "local_inject", "local_compact", "local_validate", "gate", "promote_dataset"):
        assert run.tasks[task] == "success", (task, run.explain())
    for task in ("create_cluster", "emr_inject", "wait_inject", "emr_compact", "wait_compact", "emr_validate",
                 "wait_validate", "terminate_cluster"):
        assert run.tasks[task] == "skipped", (task, run.explain())

    doc = _validation(dataset, run)
    assert doc["variant"] == "demo" and doc["passed"] is True, doc.get("failures")
    record = json.loads((dataset / "promotion.json").read_text())
    ds = datasets.open_dataset(str(dataset))
    assert "compacted/" in ds.data_uri  # the gate checked the compacted copy CURRENT points at
    assert record["content_checksum"] == datasets.content_checksum(ds.files) == doc["dataset"]["content_checksum"]
    from dhs_airflow.plan import _safe_run_name

    assert record["validation"]["uri"] == str(dataset / "validation" / _safe_run_name(run.run_id) / "validation.json")
    assert sum(record["rows_per_split"].values()) == 240 and len(record["rows_per_split"]) == 3

    events = [e for e in airflow_home.asset_events("dhs_training_dataset") if e["source_run_id"] == run.run_id]
    assert len(events) == 1, airflow_home.asset_events("dhs_training_dataset")
    extra = events[0]["extra"]
    assert extra["dataset_uri"] == str(dataset) and extra["content_checksum"] == record["content_checksum"]
    assert extra["promotion_record"] == str(dataset / "promotion.json")
    # `dags test` registers both DAGs: the event queues the consumer, as the scheduler would run it
    queued = airflow_home.query("SELECT target_dag_id FROM asset_dag_run_queue")
    assert ("dhs_training_consumer",) in queued, queued
