"""The production DAG on its local backend, end to end on a tiny survey (issue 6, item 5).

Inputs are made by the user commands (tests/airflow_fixtures.py `tiny_inputs`), then
`airflow dags test` runs the real DAG: three spark-submit steps, the gate, promotion.

Three runs on the same output, in this order (module fixture):
1. gate_suite strict (fails the demo data on purpose): the validation step writes its verdict and
   succeeds, the gate task fails with the list of failed checks, nothing is promoted;
2. gate_suite demo: the inject step finds its complete output and keeps it (same manifest, bank,
   config and code -> same derived run id), the run's compaction (content-addressed: the same rows
   give the same folder) and validation follow, the gate passes, the promotion is written and the
   training Asset gets its event;
3. gate_suite demo with another moffat_beta (issue 14): inject rewrites phase4c with the new rows,
   compact reads exactly those (never CURRENT, which still points at run 2's), the gate validates
   them with run 2's profile as the drift reference, and run 3's rows are promoted; the history
   holds both promotions.
Running strict first is also the realistic sequence: a refused dataset stays unpromoted until a
run whose gate passes. The consumer DAG then runs on run 3's promotion event (and refuses it once
one byte of one promoted file has changed), and a run that finds the prefix locked is refused.
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


def local_conf(inputs: dict, dataset: Path, suite: str, **extra) -> dict:
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
        **extra,
    }


@pytest.fixture(scope="module")
def local_runs(airflow_home, tiny_inputs):
    dataset = airflow_home.out_root / "local" / "dataset"
    dataset.parent.mkdir(parents=True, exist_ok=True)
    strict = airflow_home.run_dag(local_conf(tiny_inputs, dataset, "strict"), log_name="local_strict")
    promoted_after_strict = (dataset / "promotion.json").exists()
    demo = airflow_home.run_dag(local_conf(tiny_inputs, dataset, "demo"), log_name="local_demo")
    record_after_demo = json.loads((dataset / "promotion.json").read_text()) if (dataset / "promotion.json").exists() else None
    beta = airflow_home.run_dag(local_conf(tiny_inputs, dataset, "demo", moffat_beta=4.5), log_name="local_beta")
    print(f"\nlocal backend: strict run {strict.seconds:.0f} s, demo run {demo.seconds:.0f} s, "
          f"moffat_beta 4.5 run {beta.seconds:.0f} s")
    return {"inputs": tiny_inputs, "dataset": dataset, "strict": strict, "demo": demo, "beta": beta,
            "promoted_after_strict": promoted_after_strict, "record_after_demo": record_after_demo}


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
    from pipeline.dataset import files_checksum, list_data_files

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
    record = local_runs["record_after_demo"]
    assert record is not None and record["sequence"] == 1
    assert "/compacted/c-" in record["data_uri"]  # the run's own immutable, content-addressed compaction
    files = list_data_files(record["data_uri"])
    assert record["content_checksum"] == files_checksum(files) == doc["dataset"]["content_checksum"]
    assert doc["dataset"]["data_uri"] == record["data_uri"] and doc["run"] == record["run"]
    from dhs_airflow.plan import _safe_run_name

    assert record["validation"]["uri"] == str(dataset / "validation" / _safe_run_name(run.run_id) / "validation.json")
    assert sum(record["rows_per_split"].values()) == local_runs["inputs"]["tasks"]
    assert len(record["rows_per_split"]) == 3
    assert doc["drift"]["checked"] is False and "no reference" in doc["drift"]["note"]  # the first promotion

    events = [e for e in airflow_home.asset_events("dhs_training_dataset") if e["source_run_id"] == run.run_id]
    assert len(events) == 1, airflow_home.asset_events("dhs_training_dataset")
    extra = events[0]["extra"]
    assert extra["dataset_uri"] == str(dataset) and extra["content_checksum"] == record["content_checksum"]
    assert extra["data_uri"] == record["data_uri"] and extra["suite"] == "demo" and extra["min_gate_suite"] == "demo"
    assert extra["run_config_variant"] == "demo" and extra["validation"] == record["validation"]["uri"]
    assert extra["promotion_record"] == str(dataset / "promotion.json")
    # `dags test` registers both DAGs: the consumer is scheduled on this asset (the scheduler
    # starts it from the event once the DAG is unpaused; DAGs are paused at creation, so no
    # asset_dag_run_queue row is written here)
    consumers = airflow_home.query(
        "SELECT r.dag_id FROM dag_schedule_asset_reference r JOIN asset a ON a.id = r.asset_id WHERE a.name = ?",
        ("dhs_training_dataset",))
    assert consumers == [("dhs_training_consumer",)], consumers


def _rows(data_uri: str, columns: list[str]):
    import pyarrow.dataset as pads

    return pads.dataset(data_uri, format="parquet", partitioning="hive").to_table(columns=columns).to_pandas()


def test_rerun_with_another_moffat_beta_promotes_its_own_rows(local_runs, airflow_home):
    """Issue 14, problem 1: the second run's new rows are the ones validated and promoted."""
    from pipeline.dataset import files_checksum, list_data_files
    from pipeline.gate.promote import history

    run, dataset = local_runs["beta"], local_runs["dataset"]
    first = local_runs["record_after_demo"]
    assert run.state == "success", run.explain()
    record = json.loads((dataset / "promotion.json").read_text())
    assert record["sequence"] == 2 and record["run"] != first["run"]
    assert record["data_uri"] != first["data_uri"] and record["content_checksum"] != first["content_checksum"]
    # the validated (and promoted) rows are run 3's: moffat_beta 4.5 on every ok injection
    betas = _rows(record["data_uri"], ["moffat_beta", "is_control", "cutout_ok"])
    inj = betas[~betas["is_control"] & betas["cutout_ok"]]
    assert len(inj) > 0 and set(inj["moffat_beta"].round(6)) == {4.5}
    assert set(_rows(first["data_uri"], ["moffat_beta"])["moffat_beta"].dropna().round(6)) == {3.5}  # run 2's kept whole
    assert record["content_checksum"] == files_checksum(list_data_files(record["data_uri"]))
    assert [h["sequence"] for h in history(str(dataset))] == [1, 2]
    assert [h["content_checksum"] for h in history(str(dataset))] == [first["content_checksum"], record["content_checksum"]]
    assert json.loads((dataset / "CURRENT").read_text())["data"] == record["current_pointer"]
    # automatic drift: run 2's promoted profile was the reference
    doc = _validation(dataset, run)
    assert doc["drift"]["checked"] is True and doc["drift"]["reference"] == first["validation"]["profile_uri"]
    assert any(e["name"].startswith("drift_") for e in doc["expectations"])
    # the identity chain, as the receipts recorded it
    receipts = dataset / "runs" / record["run"]
    inject, compact = (json.loads((receipts / f"{s}.json").read_text()) for s in ("inject", "compact"))
    assert compact["source_checksum"] == inject["content_checksum"] and inject["kept_existing"] is False
    assert compact["data_uri"] == record["data_uri"] and compact["content_checksum"] == record["content_checksum"]
    assert not (dataset / "_dhs_run.lock").exists()  # released by the teardown


def test_consumer_runs_on_the_event_and_refuses_a_tampered_dataset(local_runs, airflow_home):
    from pipeline.dataset import list_data_files

    run = local_runs["beta"]
    assert run.state == "success", run.explain()
    event = [e for e in airflow_home.asset_events("dhs_training_dataset") if e["source_run_id"] == run.run_id][-1]
    ok = airflow_home.run_on_asset_event("dhs_training_consumer", event["id"], log_name="consumer_ok")
    assert ok.state == "success" and ok.tasks == {"verify_promotion": "success", "train": "success"}, ok.explain()
    assert airflow_home.xcom(ok, "verify_promotion")[0]["content_checksum"] == event["extra"]["content_checksum"]
    # one byte of one promoted file changed, its size kept
    victim = Path(sorted(f.relpath for f in list_data_files(event["extra"]["data_uri"]))[0])
    victim = Path(event["extra"]["data_uri"]) / victim
    original = victim.read_bytes()
    i = len(original) // 2
    victim.write_bytes(original[:i] + bytes([original[i] ^ 0x01]) + original[i + 1:])
    try:
        bad = airflow_home.run_on_asset_event("dhs_training_consumer", event["id"], log_name="consumer_tampered")
    finally:
        victim.write_bytes(original)
    assert bad.state == "failed" and bad.tasks["verify_promotion"] == "failed", bad.explain()
    assert bad.tasks["train"] == "upstream_failed"
    assert "changed after promotion" in bad.log.read_text(errors="replace"), bad.explain()


def test_a_run_on_a_locked_prefix_is_refused_before_any_spark(local_runs, airflow_home):
    from pipeline import run_lock

    dataset = local_runs["dataset"]
    run_lock.acquire(str(dataset), "someone_else")
    try:
        run = airflow_home.run_dag(local_conf(local_runs["inputs"], dataset, "demo"), log_name="local_locked")
    finally:
        run_lock.release(str(dataset), "someone_else")
    assert run.state == "failed", run.explain()
    assert run.tasks["plan"] == "success" and run.tasks["acquire_lock"] == "failed", run.explain()
    for task in ("local_inject", "local_compact", "local_validate", "promote_dataset"):
        assert run.tasks[task] in ("upstream_failed", "skipped", None), (task, run.explain())
    assert "run 'someone_else' holds this dataset prefix" in run.log.read_text(errors="replace")
    assert run_lock.holder(str(dataset)) is None  # the refused run released nothing of the other's and holds nothing
