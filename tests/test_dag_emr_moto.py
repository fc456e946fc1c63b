"""The production DAG on its EMR backend, against moto in server mode (issue 6, item 5).

Real Airflow (`airflow dags test`, which runs the deferrable EMR sensors' triggers inline), real
Amazon provider operators, moto's EMR and S3 over HTTP; tests/emr_simulator.py plays the cluster
(moto never runs a step). Acceptance: the cluster is TERMINATED whether the run passes or fails,
and a failing gate (or a failing Spark step) ends the run failed with nothing promoted.
"""

from __future__ import annotations

import json

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

        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        # the plan sizes the cluster from the manifest's task count (pipeline.sizing, issue 19);
        # the simulator plays the steps, so only manifest.json is needed
        s3.put_object(Bucket=BUCKET, Key="inputs/manifest/manifest.json", Body=json.dumps({"n_tasks": 6000}).encode())
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
        "DHS_ALLOWED_CODE_ROOTS": f"s3://{BUCKET}/code/",  # the form's code and log prefixes (issue 15)
        "DHS_ALLOWED_LOG_ROOTS": f"s3://{BUCKET}/emr-logs/",
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
    assert groups["CORE"]["InstanceType"] == "m5.2xlarge" and groups["CORE"]["RequestedInstanceCount"] == 2  # sized from 6,000 tasks: the minimum (pipeline.sizing)

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
                "spark.executorEnv.NUMBA_CACHE_DIR={{PWD}}/numba_cache",
                "spark.yarn.appMasterEnv.NUMBA_CACHE_DIR={{PWD}}/numba_cache"} <= confs, s.cmdline()
        assert f"s3://{BUCKET}/code/dhs/0.1.0/emr_steps/{s.kind}.py" in args, s.cmdline()
        assert not any(a.startswith("s3a://") for a in args), s.cmdline()
    inject_args = sim.steps[0].args
    assert inject_args[inject_args.index("--output-prefix") + 1] == conf["output_prefix"]
    assert inject_args[inject_args.index("--bands") + 1] == "g,r,z"
    validate_args = sim.steps[2].args
    assert validate_args[validate_args.index("--gate-suite") + 1] == "demo"

    # promotion record on S3, pinned to the compacted data the validation checked
    from pipeline import storage
    from pipeline.dataset import files_checksum, open_dataset

    record = json.loads(storage.read_bytes(f"{conf['output_prefix']}/promotion.json"))
    on_s3 = open_dataset(conf["output_prefix"])
    assert "/compacted/" in on_s3.data_uri
    assert record["content_checksum"] == files_checksum(on_s3.files)
    assert record["data_uri"] == on_s3.data_uri and "/compacted/c-" in record["data_uri"]  # content-addressed
    assert storage.exists(f"{conf['output_prefix']}/runs/{record['run']}/compact.json")
    assert not storage.exists(f"{conf['output_prefix']}/_dhs_run.lock")  # the teardown released the prefix
    assert record["validation"]["uri"].startswith(f"{conf['output_prefix']}/validation/")
    assert record["validation"]["variant"] == "demo"
    events = [e for e in airflow_home.asset_events("dhs_training_dataset") if e["source_run_id"] == run.run_id]
    assert len(events) == 1 and events[0]["extra"]["dataset_uri"] == conf["output_prefix"]
    print(f"EMR passing run: {run.seconds:.0f} s")


# Where the run fails -> (simulator settings, the task that fails, the steps EMR saw).
FAILING_STAGES = {
    "inject": ({"fail_kinds": {"inject"}}, "wait_inject", [("inject", "FAILED")]),
    "compact": ({"fail_kinds": {"compact"}}, "wait_compact", [("inject", "COMPLETED"), ("compact", "FAILED")]),
    "validate": ({"fail_kinds": {"validate"}}, "wait_validate",
                 [("inject", "COMPLETED"), ("compact", "COMPLETED"), ("validate", "FAILED")]),
    # the seed's 1,111x faint-arc bug through the demo suite: every step completes, the gate refuses
    "gate": ({"defect": "faint_arcs"}, "gate",
             [("inject", "COMPLETED"), ("compact", "COMPLETED"), ("validate", "COMPLETED")]),
}


@pytest.mark.parametrize("stage", list(FAILING_STAGES))
def test_emr_run_failing_at_each_stage_terminates_cluster_promotes_nothing(airflow_home, emr_env, moto_server,
                                                                           spark, stage):
    """Issue 8 "the DAG failing at each stage": a Spark step FAILED on the cluster (inject,
    compact, validate) or a gate that refuses the data. Every time: the run fails at that task,
    nothing after it runs, the teardown TERMINATES the cluster, no promotion.json, no Asset event."""
    from pipeline import storage

    sim_kwargs, failing_task, steps_seen = FAILING_STAGES[stage]
    conf = emr_conf(f"failing_{stage}")
    run, sim, created = run_emr(airflow_home, emr_env, moto_server, spark, conf, **sim_kwargs)
    assert not sim.errors, sim.errors
    assert run.state == "failed", run.explain()
    assert [(s.kind, s.final_state) for s in sim.steps] == steps_seen, [s.error for s in sim.steps]
    order = EMR_TASKS[:-1] + ["gate", "promote_dataset"]
    failed_at = order.index(failing_task)
    for task in order[:failed_at]:
        assert run.tasks.get(task) == "success", (task, run.explain())
    assert run.tasks[failing_task] == "failed", run.explain()
    for task in order[failed_at + 1:]:
        assert run.tasks.get(task) == "upstream_failed", (task, run.explain())
    assert run.tasks["terminate_cluster"] == "success", run.explain()
    assert len(created) == 1 and cluster_state(created[0]) == "TERMINATED"
    assert not s3_exists(f"{conf['output_prefix']}/promotion.json")
    assert not [e for e in airflow_home.asset_events("dhs_training_dataset") if e["source_run_id"] == run.run_id]

    log = run.log.read_text(errors="replace")
    if stage == "gate":
        # the step wrote validation.json and completed; the gate task fails with the readable list
        validations = storage.list_files(f"{conf['output_prefix']}/validation", "validation.json")
        assert len(validations) == 1
        doc = json.loads(storage.read_bytes(validations[0]))
        assert doc["passed"] is False and any("arc_flux" in f for f in doc["failures"]), doc["failures"]
        assert "quality gate failed" in log and doc["failures"][0] in log, run.explain()
        summary = airflow_home.xcom(run, "gate", "gate_summary")
        assert summary["passed"] is False and summary["failures"] == doc["failures"], summary
        assert summary["validation_json"] == validations[0]
    else:
        # EMR's verdict, in the sensor's log (poked once, or from its deferred trigger)
        assert "EMR job failed" in log or "Waiter encountered a terminal failure state" in log, run.explain()
        assert not s3_exists(f"{conf['output_prefix']}/validation/")
    print(f"EMR run failing at {stage}: {run.seconds:.0f} s")


def test_plan_refuses_output_prefix_outside_allowed_roots_nothing_runs(airflow_home, emr_env, moto_server, spark):
    """Issue 8 "output prefixes outside the configured bucket or root are refused": the plan task
    fails naming the prefix and the allowed roots; no cluster is created, no step submitted,
    nothing written, nothing promoted."""
    outside = "s3://someone-elses-bucket/datasets/typo"
    conf = emr_conf("refused", output_prefix=outside)
    run, sim, created = run_emr(airflow_home, emr_env, moto_server, spark, conf)
    assert run.state == "failed", run.explain()
    assert run.tasks["plan"] == "failed", run.explain()
    for task, state in run.tasks.items():
        if task != "plan":
            assert state in ("upstream_failed", None), (task, run.explain())
    assert created == [] and sim.steps == []
    log = run.log.read_text(errors="replace")
    assert f"'{outside}' is outside the allowed output roots" in log, run.explain()
    assert f"s3://{BUCKET}/" in log and str(airflow_home.out_root) in log  # the allowed roots, named
    assert "DHS_ALLOWED_OUTPUT_ROOTS" in log
