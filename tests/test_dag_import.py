"""The dags folder as Airflow parses it (issue 6): no import errors, the trigger form, the wiring
that the acceptance relies on (one Asset producer, teardown of the cluster, the consumer's
schedule), and plan_run's refusals naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.airflow_fixtures"]
pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[1]
PIPELINE, CONSUMER = "dhs_phase4_pipeline", "dhs_training_consumer"

FORM_FIELDS = {
    "variant", "experiment_id", "run_config", "backend", "bands", "psf_model", "moffat_beta", "control_frac_train",
    "source_mode", "cosmos_bank_h5", "manifest_uri", "coadd_cache_prefix", "output_prefix", "code_prefix",
    "emr_release_label", "master_instance_type", "core_instance_type", "core_instance_count", "target_wall_hours", "emr_log_uri",
    "local_master", "target_file_mb", "gate_suite",
}


@pytest.fixture(scope="module")
def dagbag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dags_folder_imports_cleanly(dagbag):
    assert dagbag.import_errors == {}
    assert {PIPELINE, CONSUMER} <= set(dagbag.dags)
    assert not any(d.startswith("example_") for d in dagbag.dags), "examples must be off"


def test_trigger_form_fields_and_seed_cluster_defaults(dagbag):
    dag = dagbag.dags[PIPELINE]
    params = dag.params
    assert set(params.keys()) == FORM_FIELDS
    values = params.validate()  # every default is valid against its own schema (the form opens)
    assert values["emr_release_label"] == "emr-7.6.0"
    assert values["master_instance_type"] == "m5.xlarge"
    assert values["core_instance_type"] == "m5.2xlarge"
    assert values["core_instance_count"] == 0 and values["target_wall_hours"] == 2.0  # 0: sized from the work
    assert values["backend"] == "local" and values["bands"] == "g,r,z" and values["gate_suite"] == "demo"
    schema = {k: params.get_param(k).schema for k in FORM_FIELDS}
    assert schema["backend"]["enum"] == ["local", "emr"]
    assert set(schema["gate_suite"]["enum"]) == {"demo", "production", "strict"}
    import re

    band_list = re.compile(schema["bands"]["pattern"])
    assert all(band_list.fullmatch(b) for b in ("g,r,z", "r", "z,g"))
    assert not any(band_list.fullmatch(b) for b in ("grz", "g,,r", "g,x", ""))
    assert schema["core_instance_count"]["type"] == "integer"
    assert all(s.get("title") for s in schema.values()), "every field has a form label"


def test_form_is_the_run_parameter_table(dagbag, tmp_path, monkeypatch):
    """The trigger form is derived from pipeline.run_params (one declaration), and the suite choices
    are the suite files: a new <name>.yaml in the suites folder is a new choice."""
    from pipeline import run_params

    params = dagbag.dags[PIPELINE].params
    assert list(params.keys()) == [p.name for p in run_params.RUN_PARAMS]
    for p in run_params.RUN_PARAMS:
        field = params.get_param(p.name)
        schema = {**field.schema, **({"description": field.description} if field.description else {})}
        assert params[p.name] == p.default and schema == p.json_schema(), p.name
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "lenient_review.yaml").write_text("{}\n")
    monkeypatch.setenv("DHS_EXPECTATIONS_DIR", str(suites))
    assert "lenient_review" in run_params.suite_names()
    assert {"demo", "production", "strict"} <= set(run_params.suite_names())


def test_form_rejects_bad_bands_before_a_run(dagbag):
    """The form itself refuses 'grz' (pattern g,r,z): the run is never created."""
    import copy

    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dagbag.dags[PIPELINE].params)
    with pytest.raises(ParamValidationError, match="bands"):
        params["bands"] = "grz"


def test_promote_is_the_only_asset_producer_and_teardown_wiring(dagbag):
    dag = dagbag.dags[PIPELINE]
    with_outlets = {t.task_id: t.outlets for t in dag.tasks if t.outlets}
    assert list(with_outlets) == ["promote_dataset"]
    (asset,) = with_outlets["promote_dataset"]
    assert asset.name == "dhs_training_dataset"

    terminate, create = dag.get_task("terminate_cluster"), dag.get_task("create_cluster")
    assert terminate.is_teardown and create.is_setup
    assert "create_cluster" in terminate.upstream_task_ids
    assert "wait_validate" in terminate.upstream_task_ids  # closes the scope after the last Spark step
    for step in ("inject", "compact", "validate"):
        sensor = dag.get_task(f"wait_{step}")
        assert sensor.deferrable is True
        assert float(sensor.poke_interval) == 30.0  # DHS_EMR_POKE_SECONDS unset: the production value
    assert dag.get_task("gate").upstream_task_ids - {"plan"} == {"wait_validate", "local_validate"}
    assert dag.get_task("promote_dataset").upstream_task_ids >= {"gate"}


def test_consumer_is_scheduled_on_the_promoted_asset(dagbag):
    consumer = dagbag.dags[CONSUMER]
    assets = list(consumer.timetable.asset_condition.objects)
    assert [(a.name, a.uri) for a in assets] == [("dhs_training_dataset", "dhs://training-dataset/")]


@pytest.mark.parametrize("change, field", [
    ({"bands": "grz"}, "bands"),
    ({"output_prefix": "/etc/dhs_elsewhere"}, "output_prefix"),
    ({"backend": "emr", "manifest_uri": "demo_output/manifest"}, "manifest_uri"),
    ({"backend": "emr", "manifest_uri": "s3://bkt/m", "coadd_cache_prefix": "s3://bkt/c", "cosmos_bank_h5": "s3://bkt/x.h5",
      "output_prefix": "/tmp/out", "code_prefix": "s3://bkt/code"}, "output_prefix"),
    ({"run_config": "no_such_config"}, "no_such_config"),
])
def test_plan_run_refuses_bad_input_naming_the_field(airflow_home, monkeypatch, change, field):
    from dhs_airflow.plan import DEFAULTS, plan_run

    from pipeline.errors import InputError

    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", str(airflow_home.out_root))
    params = {**DEFAULTS, "output_prefix": str(airflow_home.out_root / "ds"), **change}
    with pytest.raises(InputError) as exc:
        plan_run(params, airflow_run_id="manual__test")
    assert field in str(exc.value), str(exc.value)


def test_plan_run_builds_both_backends(airflow_home, monkeypatch):
    from dhs_airflow.plan import DEFAULTS, plan_run

    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", str(airflow_home.out_root))
    local = plan_run({**DEFAULTS, "output_prefix": str(airflow_home.out_root / "ds")}, airflow_run_id="manual__2026-01-01T00:00:00+00:00")
    assert local["validation_uri"] == str(airflow_home.out_root / "ds" / "validation" / "manual__2026-01-01T00_00_00_00_00")
    assert local["local_inject"][0].endswith("spark-submit") and "--master" in local["local_inject"]
    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", "s3://bkt/")
    monkeypatch.setenv("DHS_ALLOWED_CODE_ROOTS", "s3://bkt/code")
    monkeypatch.setenv("DHS_ALLOWED_LOG_ROOTS", "s3://bkt/code/logs")
    emr = plan_run({**DEFAULTS, "backend": "emr", "manifest_uri": "s3a://bkt/m", "coadd_cache_prefix": "s3://bkt/c",
                    "cosmos_bank_h5": "s3://bkt/x.h5", "output_prefix": "s3://bkt/out", "code_prefix": "s3://bkt/code",
                    "emr_log_uri": "s3://bkt/code/logs", "core_instance_count": 34}, stamps=11_750_000)
    step = emr["emr_inject"][0]
    assert step["HadoopJarStep"]["Jar"] == "command-runner.jar"
    assert "s3://bkt/m" in step["HadoopJarStep"]["Args"]  # s3a:// spelled s3:// for EMRFS
    groups = {g["InstanceRole"]: g for g in emr["job_flow_overrides"]["Instances"]["InstanceGroups"]}
    assert groups["CORE"]["InstanceCount"] == 34 and emr["job_flow_overrides"]["ReleaseLabel"] == "emr-7.6.0"
    # the seed's 34 is an explicit override: the plan still records what the work needed
    assert emr["cluster"]["overridden"] and emr["cluster"]["sized_instance_count"] < 34
