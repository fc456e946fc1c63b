"""The production DAG on its EMR backend, against moto in server mode (issue 6, item 5).

Real Airflow (`airflow dags test`, which runs the deferrable EMR sensors' triggers inline), real
Amazon provider operators, moto's EMR and S3 over HTTP; tests/emr_simulator.py plays the cluster
(moto never runs a step). Acceptance: the cluster is TERMINATED whether the run passes or fails,
and a failing gate (or a failing Spark step) ends the run failed with nothing promoted.
"""

from __future__ import annotations

import json
import os

import pytest

pytest_plugins = ["tests.airflow_fixtures"]
pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.spark]

REGION = "us-east-2"
BUCKET = "dhs-moto"
EMR_TASKS = ["create_cluster", "emr_inject", "wait_inject", "emr_compact", "wait_compact", "emr_validate",
             "wait_validate", "terminate_cluster"]


@pytest.fixture(scope="module")
def moto_server():
    """moto's HTTP server in this process (the simulator reaches its backend directly)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    aws_env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": url, "AWS_ENDPOINT_URL_S3": url,
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in aws_env.items():  # pipeline.storage in this process (simulator, assertions)
            mp.setenv(k, v)
        import boto3

        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield {"url": url, "env": aws_env}
    server.stop()


@pytest.fixture()
def emr_env(airflow_home, moto_server):
    """What the `airflow dags test` subprocess needs: aws_default pointing at moto, short pokes."""
    try:
        import aiobotocore  # noqa: F401
    except ImportError:
        pytest.fail("aiobotocore is not installed: the DAG's deferrable EMR sensors cannot run their triggers "
                    "(the Amazon provider's async hook imports it). requirements.in needs "
                    "apache-airflow-providers-amazon[aiobotocore] (aiobotocore pins botocore, so the lock's "
                    "boto3/botocore move with it)")
    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": moto_server["url"], "region_name": REGION}}
    return {
        **moto_server["env"],
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn),
        "DHS_EMR_POKE_SECONDS": "1",
        "DHS_ALLOWED_OUTPUT_ROOTS": f"s3://{BUCKET}/,{airflow_home.out_root}",
    }


def emr_conf(case: str, **overrides) -> dict:
    inputs = f"s3://{BUCKET}/inputs"
    return {
        "backend": "emr",
        "variant": "demo",
        "run_config": "demo",
        "manifest_uri": f"{inputs}/manifest",
        "coadd_cache_prefix": f"{inputs}/survey/coadd",
        "cosmos_bank_h5": f"{inputs}/bank/cosmos_bank.h5",
        "output_prefix": f"s3://{BUCKET}/datasets/{case}",
        "code_prefix": f"s3://{BUCKET}/code/dhs/0.1.0",
        "emr_log_uri": f"s3://{BUCKET}/emr-logs/",
        "gate_suite": "demo",
        **overrides,
    }


def run_emr(airflow_home, emr_env, moto_server, spark, conf: dict, **sim_kwargs):
    """Run the DAG with the simulator playing the cluster; returns (run, simulator, clusters it created)."""
    from tests.emr_simulator import EmrSimulator, all_clusters

    before = set(all_clusters())
    with EmrSimulator(endpoint_url=moto_server["url"], region=REGION, spark=spark, **sim_kwargs) as sim:
        run = airflow_home.run_dag(conf, extra_env=emr_env, log_name="emr")
    created = [c for c in all_clusters() if c not in before]
    return run, sim, created


def cluster_state(cluster_id: str) -> str:
    import boto3

    return boto3.client("emr", region_name=REGION).describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"]


def s3_exists(uri: str) -> bool:
    from pipeline import storage

    bucket, key = storage.split_s3(uri)
    import boto3

    return boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) > 0


def test_emr_gate_passes_promotes_and_terminates(airflow_home, emr_env, moto_server, spark):
    """Gate passing: run success, promotion.json on S3 pinning the S3 objects' checksum, the asset
    event, the cluster TERMINATED; the cluster and steps carry the seed's settings."""
    import boto3

    conf = emr_conf("passing")
    run, sim, created = run_emr(airflow_home, emr_env, moto_server, spark, conf)
    assert not sim.errors, sim.errors
    assert run.state == "success", run.explain()
    for task in EMR_TASKS + ["plan", "choose_backend", "gate", "promote_dataset"]:
        assert run.tasks.get(task) == "success", (task, run.explain())
    for task in ("local_inject", "local_compact", "local_validate"):
        assert run.tasks.get(task) == "skipped", (task, run.explain())

    assert len(created) == 1, created
    cluster_id = created[0]
    assert cluster_state(cluster_id) == "TERMINATED"

    emr = boto3.client("emr", region_name=REGION)
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["ReleaseLabel"] == "emr-7.6.0"
    groups = {g["InstanceGroupType"]: g for g in emr.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]}
    assert groups["MASTER"]["InstanceType"] == "m5.xlarge" and groups["MASTER"]["RequestedInstanceCount"] == 1
    assert groups["CORE"]["InstanceType"] == "m5.2xlarge" and groups["CORE"]["RequestedInstanceCount"] == 34

    # the three steps, in order, as EMR received them
    assert [s.kind for s in sim.steps] == ["inject", "compact", "validate"], [s.name for s in sim.steps]
    assert all(s.final_state == "COMPLETED" for s in sim.steps)
    for s in sim.steps:
        assert s.jar == "command-runner.jar"
        args = s.args
        assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"], s.cmdline()
        for flag, value in (("--executor-memory", "6g"), ("--driver-memory", "4g"), ("--executor-cores", "2")):
            assert args[args.index(flag) + 1] == value, s.cmdline()
        confs = {args[i + 1] for i, a in enumerate(args) if a == "--conf"}
        assert {"spark.default.parallelism=600", "spark.sql.shuffle.partitions=600",
                "spark.executorEnv.NUMBA_CACHE_DIR=/tmp/numba_cache",
                "spark.yarn.appMasterEnv.NUMBA_CACHE_DIR=/tmp/numba_cache"} <= confs, s.cmdline()
        assert f"s3://{BUCKET}/code/dhs/0.1.0/emr_steps/{s.kind}.py" in args, s.cmdline()
        assert not any(a.startswith("s3a://") for a in args), s.cmdline()
    inject_args = sim.steps[0].args
    assert inject_args[inject_args.index("--output") + 1] == conf["output_prefix"]
    assert inject_args[inject_args.index("--bands") + 1] == "g,r,z"
    validate_args = sim.steps[2].args
    assert validate_args[validate_args.index("--variant") + 1] == "demo"

    # promotion record on S3, pinned to the compacted data the validation checked
    from pipeline import storage
    from pipeline.gate import datasets

    record = json.loads(storage.read_bytes(f"{conf['output_prefix']}/promotion.json"))
    on_s3 = datasets.open_dataset(conf["output_prefix"])
    assert "/compacted/" in on_s3.data_uri
    assert record["content_checksum"] == datasets.content_checksum(on_s3.files)
    assert record["validation"]["uri"].startswith(f"{conf['output_prefix']}/validation/")
    assert record["validation"]["variant"] == "demo"
    events = [e for e in airflow_home.asset_events("dhs_training_dataset") if e["source_run_id"] == run.run_id]
    assert len(events) == 1 and events[0]["extra"]["dataset_uri"] == conf["output_prefix"]
    print(f"EMR passing run: {run.seconds:.0f} s")


def test_emr_gate_fails_nothing_promoted_cluster_terminated(airflow_home, emr_env, moto_server, spark):
    """A defective dataset (the seed's 1,111x faint-arc bug) through the demo suite: the validation
    fails, the run fails, no promotion record, no asset event; the cluster is still TERMINATED.

    emr_steps/validate.py exits 1 when the gate fails, so EMR marks the validate step FAILED and
    wait_validate fails before the gate task runs; validation.json (with the failures) is on S3."""
    from pipeline import storage

    conf = emr_conf("gate_failing")
    run, sim, created = run_emr(airflow_home, emr_env, moto_server, spark, conf, defect="faint_arcs")
    assert run.state == "failed", run.explain()
    for task in EMR_TASKS:
        if task != "wait_validate":
            assert run.tasks.get(task) == "success", (task, run.explain())
    assert [(s.kind, s.final_state) for s in sim.steps] == [
        ("inject", "COMPLETED"), ("compact", "COMPLETED"), ("validate", "FAILED")], [s.error for s in sim.steps]
    assert "gate FAILED" in sim.steps[2].error, sim.errors
    assert run.tasks["wait_validate"] == "failed", run.explain()
    assert run.tasks["gate"] in ("failed", "upstream_failed"), run.explain()
    assert run.tasks["promote_dataset"] == "upstream_failed", run.explain()
    assert len(created) == 1 and cluster_state(created[0]) == "TERMINATED"
    validations = storage.list_files(f"{conf['output_prefix']}/validation", "validation.json")
    assert len(validations) == 1
    doc = json.loads(storage.read_bytes(validations[0]))
    assert doc["passed"] is False and any("arc_flux" in f for f in doc["failures"]), doc["failures"]
    assert not s3_exists(f"{conf['output_prefix']}/promotion.json")
    assert not [e for e in airflow_home.asset_events("dhs_training_dataset") if e["source_run_id"] == run.run_id]
    print(f"EMR gate-failing run: {run.seconds:.0f} s")


def test_emr_failed_spark_step_terminates_and_skips_gate(airflow_home, emr_env, moto_server, spark):
    """The inject step FAILS on the cluster: the sensor fails the run, the later steps never start,
    gate and promote do not run, and the teardown still TERMINATES the cluster."""
    conf = emr_conf("step_failing")
    run, sim, created = run_emr(airflow_home, emr_env, moto_server, spark, conf, fail_kinds={"inject"})
    assert not sim.errors, sim.errors
    assert run.state == "failed", run.explain()
    assert run.tasks["create_cluster"] == "success" and run.tasks["emr_inject"] == "success", run.explain()
    assert run.tasks["wait_inject"] == "failed", run.explain()
    for task in ("emr_compact", "wait_compact", "emr_validate", "wait_validate", "gate", "promote_dataset"):
        assert run.tasks.get(task) == "upstream_failed", (task, run.explain())
    assert run.tasks["terminate_cluster"] == "success", run.explain()
    assert [s.kind for s in sim.steps] == ["inject"] and sim.steps[0].final_state == "FAILED"
    assert len(created) == 1 and cluster_state(created[0]) == "TERMINATED"
    assert not s3_exists(f"{conf['output_prefix']}/promotion.json")
    assert not s3_exists(f"{conf['output_prefix']}/validation/")
    print(f"EMR step-failing run: {run.seconds:.0f} s")
