"""The production DAG on its local backend, end to end on a tiny survey (issue 6, item 5).

Inputs are made by the user commands (tests/airflow_fixtures.py `tiny_inputs`), then
`airflow dags test` runs the real DAG: three spark-submit steps, the gate, promotion.

Two runs on the same output, in this order (module fixture):
1. gate_suite strict (fails the demo data on purpose): the validation step writes its verdict and
   succeeds, the gate task fails with the list of failed checks, nothing is promoted;
2. gate_suite demo: the inject step finds its complete output and skips it (same manifest, bank,
   config and code -> same derived run id), a new compaction and validation follow, the gate
   passes, promotion.json is written and the training Asset gets its event.
Running strict first is also the realistic sequence: a refused dataset stays unpromoted until a
run whose gate passes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["tests.airflow_fixtures"]
pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.spark]

REPO = Path(__file__).resolve().parents[1]
EMR_TASKS = ("create_cluster", "emr_inject", "wait_inject", "emr_compact", "wait_compact", "emr_validate",
             "wait_validate", "terminate_cluster")


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
def local_runs(airflow_home, tiny_inputs):
    dataset = airflow_home.out_root / "local" / "dataset"
    dataset.parent.mkdir(parents=True, exist_ok=True)
    strict = airflow_home.run_dag(local_conf(tiny_inputs, dataset, "strict"), log_name="local_strict")
    promoted_after_strict = (dataset / "promotion.json").exists()
    demo = airflow_home.run_dag(local_conf(tiny_inputs, dataset, "demo"), log_name="local_demo")
    print(f"\nlocal backend: strict run {strict.seconds:.0f} s, demo run {demo.seconds:.0f} s")
    return {"inputs": tiny_inputs, "dataset": dataset, "strict": strict, "demo": demo,
            "promoted_after_strict": promoted_after_strict}


def _validation(dataset: Path, run) -> dict:
    from dhs_airflow.plan import _safe_run_name

    return json.loads((dataset / "validation" / _safe_run_name(run.run_id) / "validation.json").read_text())


def test_local_strict_gate_fails_nothing_promoted(local_runs, airflow_home):
    """gate_suite strict: the Spark steps succeed (validate writes its verdict and exits 0), the
    gate task fails with the failed checks listed in its log, pushes its summary and the Data Docs
    link to XCom; the run ends failed, promote_dataset never runs, no promotion.json, no event."""
    run, dataset = local_runs["strict"], local_runs["dataset"]
    assert run.state == "failed", run.explain()
    for task in ("plan", "choose_backend", "local_inject", "local_compact", "local_validate"):
        assert run.tasks[task] == "success", (task, run.explain())
    for task in EMR_TASKS:
        assert run.tasks[task] == "skipped", (task, run.explain())
    assert run.tasks["gate"] == "failed", run.explain()
    assert run.tasks["promote_dataset"] == "upstream_failed", run.explain()
    assert not local_runs["promoted_after_strict"]
    doc = _validation(dataset, run)
    assert doc["variant"] == "strict" and doc["passed"] is False and doc["failures"]
    log = run.log.read_text(errors="replace")
    # the reason, readable in the gate task's log: the count, the suite and every failed check
    assert f"quality gate failed: {len(doc['failures'])} failed check(s) in suite 'strict'" in log, run.explain()
    for failure in doc["failures"]:
        assert failure in log, failure
    summary = airflow_home.xcom(run, "gate", "gate_summary")
    assert summary["passed"] is False and summary["failures"] == doc["failures"]
    assert summary["expectations_failed"] >= 1 and summary["data_docs"] == doc["outputs"]["data_docs"]
    assert Path(doc["outputs"]["data_docs"]).is_file() and Path(doc["outputs"]["report"]).is_file()
    # the gate task's "Data Docs" button: served by the plugin's /dhs-docs app under DHS_DOCS_ROOT
    link = airflow_home.xcom(run, "gate", "_link_DataDocsLink")
    rel = Path(doc["outputs"]["data_docs"]).resolve().relative_to(airflow_home.out_root)
    assert link == f"/dhs-docs/{rel.as_posix()}", link
    assert not [e for e in airflow_home.asset_events("dhs_training_dataset") if e["source_run_id"] == run.run_id]


def test_local_demo_gate_passes_and_promotes(local_runs, airflow_home):
    """gate_suite demo: run success, promotion.json pinned to the validated data, the training
    Asset's event carrying the record, and the consumer DAG queued on it."""
    from pipeline.gate import datasets

    run, dataset = local_runs["demo"], local_runs["dataset"]
    assert run.state == "success", run.explain()
    for task in ("plan", "choose_backend", "local_inject", "local_compact", "local_validate", "gate", "promote_dataset"):
        assert run.tasks[task] == "success", (task, run.explain())
    for task in EMR_TASKS:
        assert run.tasks[task] == "skipped", (task, run.explain())

    doc = _validation(dataset, run)
    assert doc["variant"] == "demo" and doc["passed"] is True, doc.get("failures")
    summary = airflow_home.xcom(run, "gate")
    assert summary["passed"] is True and summary["failures"] == [] and summary["expectations_failed"] == 0
    record = json.loads((dataset / "promotion.json").read_text())
    ds = datasets.open_dataset(str(dataset))
    assert "compacted/" in ds.data_uri  # the gate checked the compacted copy CURRENT points at
    assert record["content_checksum"] == datasets.content_checksum(ds.files) == doc["dataset"]["content_checksum"]
    from dhs_airflow.plan import _safe_run_name

    assert record["validation"]["uri"] == str(dataset / "validation" / _safe_run_name(run.run_id) / "validation.json")
    assert sum(record["rows_per_split"].values()) == local_runs["inputs"]["tasks"]
    assert len(record["rows_per_split"]) == 3

    events = [e for e in airflow_home.asset_events("dhs_training_dataset") if e["source_run_id"] == run.run_id]
    assert len(events) == 1, airflow_home.asset_events("dhs_training_dataset")
    extra = events[0]["extra"]
    assert extra["dataset_uri"] == str(dataset) and extra["content_checksum"] == record["content_checksum"]
    assert extra["promotion_record"] == str(dataset / "promotion.json")
    # `dags test` registers both DAGs: the consumer is scheduled on this asset (the scheduler
    # starts it from the event once the DAG is unpaused; DAGs are paused at creation, so no
    # asset_dag_run_queue row is written here)
    consumers = airflow_home.query(
        "SELECT r.dag_id FROM dag_schedule_asset_reference r JOIN asset a ON a.id = r.asset_id WHERE a.name = ?",
        ("dhs_training_dataset",))
    assert consumers == [("dhs_training_consumer",)], consumers
