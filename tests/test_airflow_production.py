"""Airflow as deployed, in a test (issue 19): the docker-compose.yaml stack as processes.

PostgreSQL (Debian's) as the metadata database; `airflow db migrate`, api-server, scheduler
(LocalExecutor), dag-processor and triggerer with the compose file's own commands and environment
(tests/airflow_services.py). moto's server in this process plays AWS, tests/emr_simulator.py plays
the cluster. The run is triggered through the REST API on the EMR backend, the deferrable step
sensors hand their wait to the real triggerer, the run ends promoted and the consumer DAG starts on
the Asset event, all scheduled by the real scheduler, tasks run by the executor from the
serialized DAG. The `airflow dags test` tests (SQLite, triggers run inline, one process) stay.

What this found that `dags test` on SQLite hid (issue 19):
- the compose stack could not start: Airflow 3 opens the metadata DB through an async engine too
  (postgresql+psycopg2 -> postgresql+asyncpg) and the lock had no asyncpg, so `airflow db migrate`
  died with "No module named 'asyncpg'" (fixed: asyncpg in requirements.in/.lock);
- Airflow 3.3 fails a resumed deferrable task when the trigger fires before the scheduler has
  drained the executor's success event of the deferring attempt ("finished with state success,
  but the task instance's state attribute is running" -> FAILED; apache/airflow#71580, #72716,
  PR #71579 open). The test releases each EMR step only after that event (see the hold below);
- a task's first execution-API call (5 s timeout) can time out on a loaded machine and fail the
  task before it runs; the test raises the timeout (AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT);
- the first AWS trigger in a fresh triggerer blocks its event loop while botocore loads (the
  triggerer logs "event loop appears deadlocked" under load): tens of seconds, not a failure.
The DAGs and our operators needed no change: serialization, XCom-templated EMR arguments, the
setup/teardown pair, the Asset event's extra and the consumer's verification all work as deployed.
Logs and timings of the last run: test-artifacts/airflow_production/.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest

from tests.airflow_services import ENV_KEYS, REPO, SERVICES, ComposeDrift, compose_plan, load_compose
from tests.airflow_services import airflow_services  # noqa: F401 - the fixture (its env: airflow_services_env below)

pytestmark = pytest.mark.airflow

PIPELINE = "dhs_phase4_pipeline"
CONSUMER = "dhs_training_consumer"
#: The compose file's own allowed output root and the form's default code and log roots: the run
#: needs no DHS_ALLOWED_* override (moto's bucket of that name is a stand-in, in memory).
BUCKET = "darkhaloscope"
REGION = "us-east-2"
STEP_KINDS = ("inject", "compact", "validate")


# ------------------------------------------------------------------------------ compose -> processes


def test_compose_file_is_fully_handled_by_the_fixture(tmp_path):
    """Every service and environment key of docker-compose.yaml has a row in the fixture's table,
    the substituted values point at this checkout, and a compose file that gains a service or an
    environment key (or loses a required secret) is refused, naming it."""
    workdir = tmp_path / "opt_airflow"
    plan = compose_plan(workdir, workdir / "demo_output")
    compose = load_compose()
    common = compose["x-airflow-common"]["environment"]
    assert set(plan.env) == set(common) == set(ENV_KEYS)
    assert set(plan.commands) == {s for s, kind in SERVICES.items() if kind != "database"}
    env = plan.env
    assert env["AIRFLOW__CORE__EXECUTOR"] == common["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(REPO / "plugins")
    assert env["DHS_EXPECTATIONS_DIR"] == str(REPO / "expectations")
    assert env["DHS_ALLOWED_OUTPUT_ROOTS"] == f"s3://darkhaloscope/,{workdir / 'demo_output'}"
    assert env["NUMBA_CACHE_DIR"] == str(workdir / ".cache" / "numba")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://127.0.0.1:{plan.api_port}/execution/"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"postgresql+psycopg2://airflow:{plan.secrets['POSTGRES_PASSWORD']}@127.0.0.1:{plan.pg_port}/airflow")
    for key, kind in ENV_KEYS.items():
        if kind == "secret":
            assert env[key] and "${" not in env[key], key
    assert plan.commands["airflow-apiserver"][1:] == ["api-server", "--port", str(plan.api_port), "--host", "127.0.0.1"]
    assert plan.commands["airflow-init"][1:] == ["db", "migrate"]

    gained_key = load_compose()
    gained_key["x-airflow-common"]["environment"]["AIRFLOW__CORE__PARALLELISM"] = "8"
    with pytest.raises(ComposeDrift, match="AIRFLOW__CORE__PARALLELISM"):
        compose_plan(workdir, workdir / "demo_output", compose=gained_key)
    gained_service = load_compose()
    gained_service["services"]["airflow-worker"] = {"command": ["airflow", "celery", "worker"]}
    with pytest.raises(ComposeDrift, match="airflow-worker"):
        compose_plan(workdir, workdir / "demo_output", compose=gained_service)
    new_mount = load_compose()
    new_mount["x-airflow-common"]["environment"]["DHS_DOCS_ROOT"] = "/srv/docs"
    with pytest.raises(ComposeDrift, match="DHS_DOCS_ROOT"):
        compose_plan(workdir, workdir / "demo_output", compose=new_mount)


# ------------------------------------------------------------------------------ the stack


@pytest.fixture(scope="module")
def moto_server():
    """moto's HTTP server in this process (the EMR simulator reaches its backend directly)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    aws_env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": url, "AWS_ENDPOINT_URL_S3": url,
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in aws_env.items():  # pipeline.storage in this process (simulator, assertions)
            mp.setenv(k, v)
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield {"url": url, "env": aws_env}
    server.stop()


@pytest.fixture(scope="module")
def airflow_services_env(moto_server):
    """What the services get from outside compose: AWS credentials and endpoint (on EC2 the
    instance role; here moto), and 1 s between the sensors' pokes instead of 30 s (read when the
    dag-processor parses the DAG, serialized with it)."""
    return {**moto_server["env"], "DHS_EMR_POKE_SECONDS": "1",
            # not a deployment setting: this machine's 2 cores are shared with the rest of the suite,
            # and a task's first call to the execution API timing out (5 s default) fails the task
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30"}


def _wait(what: str, check, timeout: float, services, every: float = 1.0):
    deadline = time.time() + timeout
    while True:
        services.check_alive()
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{services.explain()}")
        time.sleep(every)


def _upload_manifest(sim, uri: str) -> None:
    """The manifest the simulated steps' rows come from, on S3 where the run's plan reads it
    (manifest.json with `n_tasks`, as `dhs manifest` writes it, for the cluster sizing)."""
    import pyarrow.parquet as pq

    from pipeline import storage

    _, local = sim.local_case()
    doc = json.loads((local / "manifest.json").read_text())
    doc.setdefault("n_tasks", pq.read_metadata(local / "manifest.parquet").num_rows)
    storage.write_bytes(f"{uri}/manifest.json", json.dumps(doc).encode())
    storage.write_bytes(f"{uri}/manifest.parquet", (local / "manifest.parquet").read_bytes())


def _task_log(services, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
    """The task's log file(s) as the supervisor and the triggerer wrote them under AIRFLOW_HOME/logs."""
    folder = services.plan.workdir / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob(f"attempt={try_number}.log*")))


@pytest.mark.slow
def test_compose_stack_runs_the_emr_pipeline_through_the_triggerer_and_feeds_the_consumer(
        airflow_services, moto_server, spark):
    """Trigger dhs_phase4_pipeline (backend=emr, moto) through the REST API; each EMR step is held
    RUNNING until its sensor has DEFERRED and the triggerer holds the trigger, so only the triggerer
    can see it end. The run succeeds, promotion.json and CURRENT are on S3, the sensors resumed
    (same try) after the triggerer fired, the cluster is TERMINATED and dhs_training_consumer runs
    on the Asset event and verifies the promotion."""
    from pipeline import storage
    from pipeline.dataset import files_checksum, open_dataset
    from tests.emr_simulator import EmrSimulator, all_clusters

    svc = airflow_services
    timings = dict(svc.timings)
    t_test = time.time()
    with svc.on_failure():
        # the operator's set-up through the REST API: the AWS connection (stored encrypted with
        # the compose file's fernet key), then the two DAGs, parsed by the dag-processor, unpaused
        extra = json.dumps({"endpoint_url": moto_server["url"], "region_name": REGION})
        svc.api("POST", "/connections", expect=(201,), json={
            "connection_id": "aws_default", "conn_type": "aws", "login": "testing", "password": "testing",
            "extra": extra})
        stored = svc.query("SELECT is_encrypted, is_extra_encrypted FROM connection WHERE conn_id = 'aws_default'")
        assert stored == [(True, True)], stored
        t = time.time()
        for dag_id in (PIPELINE, CONSUMER):
            _wait(f"{dag_id} parsed by the dag-processor",
                  lambda d=dag_id: svc.api("GET", f"/dags/{d}", expect=(200, 404)).get("dag_id"), 180, svc)
            assert svc.api("GET", f"/dags/{dag_id}")["is_paused"] is True  # paused at creation, as deployed
            svc.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        timings["dags parsed"] = time.time() - t

        run_id = f"rest_{uuid.uuid4().hex[:8]}"
        prefix = f"s3://{BUCKET}/datasets/production_shaped"
        inputs = f"s3://{BUCKET}/inputs"
        conf = {"backend": "emr", "manifest_uri": f"{inputs}/manifest", "coadd_cache_prefix": f"{inputs}/survey/coadd",
                "cosmos_bank_h5": f"{inputs}/bank/cosmos_bank.h5", "output_prefix": prefix}

        deferred: dict[str, dict] = {}

        def deferred_to_triggerer(step) -> bool:
            """Release a step only once its sensor is DEFERRED and a triggerer runs its trigger (and
            has had a poke interval to see the step RUNNING)."""
            rows = svc.query(
                "SELECT ti.state, ti.try_number, t.id, t.classpath, t.triggerer_id, t.kwargs IS NOT NULL "
                "FROM task_instance ti JOIN trigger t ON t.id = ti.trigger_id "
                "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = %s",
                (PIPELINE, run_id, f"wait_{step.kind}"))
            if not rows or rows[0][0] != "deferred" or rows[0][4] is None:
                return False
            state, try_number, trigger_id, classpath, triggerer_id, _ = rows[0]
            seen = deferred.setdefault(step.kind, {"at": time.time(), "try_number": try_number, "trigger_id": trigger_id,
                                                   "classpath": classpath, "triggerer_id": triggerer_id})
            # Airflow 3.3 race (apache/airflow#71580, #72716; fix proposed in PR #71579): if the
            # trigger fires and the task resumes RUNNING before the scheduler has drained the
            # executor's "success" event of the deferring attempt, the scheduler calls it a state
            # mismatch and FAILS the resumed task. Seen here under load with a 1 s poke; an EMR
            # step that ends within seconds of its sensor deferring can hit it in production.
            # The step ends only once the scheduler has taken that event.
            drained = (f"Received executor event with state success for task instance TaskInstanceKey("
                       f"dag_id='{PIPELINE}', task_id='wait_{step.kind}', run_id='{run_id}', try_number={try_number}")
            if drained not in svc.log_path("airflow-scheduler").read_text(errors="replace"):
                return False
            return time.time() - seen["at"] >= 2.0

        before = set(all_clusters())
        with EmrSimulator(endpoint_url=moto_server["url"], region=REGION, spark=spark,
                          hold=deferred_to_triggerer, hold_timeout=240) as sim:
            _upload_manifest(sim, conf["manifest_uri"])
            # the simulated validate step's local Spark work, done before the run: not while the
            # DAG's tasks run (2 cores: a Spark burst in this process starves the services)
            t = time.time()
            sim.prepare("demo")
            timings["simulator: local validation"] = time.time() - t
            t = time.time()
            created = svc.api("POST", f"/dags/{PIPELINE}/dagRuns",
                              json={"dag_run_id": run_id, "logical_date": None, "conf": conf})
            assert created["state"] == "queued" and created["conf"]["backend"] == "emr", created
            transitions: list[tuple[float, str, str]] = []  # (seconds since trigger, task, new state)
            last_state: dict[str, str] = {}

            def run_ended():
                for ti in svc.api("GET", f"/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances",
                                  params={"limit": 100})["task_instances"]:
                    if last_state.get(ti["task_id"]) != ti["state"]:
                        last_state[ti["task_id"]] = ti["state"]
                        transitions.append((round(time.time() - t, 1), ti["task_id"], ti["state"]))
                r = svc.api("GET", f"/dags/{PIPELINE}/dagRuns/{run_id}")
                return r if r["state"] in ("success", "failed") else None

            run = _wait("the pipeline run to end", run_ended, 600, svc, every=1)
            timings["pipeline run"] = time.time() - t
        tis = {ti["task_id"]: ti for ti in
               svc.api("GET", f"/dags/{PIPELINE}/dagRuns/{run_id}/taskInstances", params={"limit": 100})["task_instances"]}
        states = {k: v["state"] for k, v in tis.items()}
        print("\nstate changes seen (s after trigger, task, state): "
              + "; ".join(f"{ts} {task} {state}" for ts, task, state in transitions if task.startswith(("wait_", "gate"))))
        assert not sim.errors, sim.errors
        assert run["state"] == "success", (states, transitions, svc.explain())

        # the EMR path ran, the local one was skipped
        for task in ("plan", "acquire_lock", "choose_backend", "create_cluster", "gate", "promote_dataset",
                     "terminate_cluster", "release_lock") + tuple(f"{p}_{k}" for k in STEP_KINDS for p in ("emr", "wait")):
            assert states.get(task) == "success", (task, states)
        for kind in STEP_KINDS:
            assert states.get(f"local_{kind}") == "skipped", states
        assert [(s.kind, s.final_state) for s in sim.steps] == [(k, "COMPLETED") for k in STEP_KINDS]
        (cluster_id,) = [c for c in all_clusters() if c not in before]
        import boto3

        emr = boto3.client("emr", region_name=REGION)
        assert emr.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]["State"] == "TERMINATED"

        # the sensors deferred to the real triggerer and were resumed from it, not retried
        evidence = {}
        triggerers = {r[0] for r in svc.query("SELECT id FROM job WHERE job_type = 'TriggererJob'")}
        for kind in STEP_KINDS:
            seen = deferred.get(kind)
            assert seen, (f"wait_{kind} never seen DEFERRED with a triggerer", deferred)
            assert seen["classpath"].endswith("EmrStepSensorTrigger"), seen
            assert seen["triggerer_id"] in triggerers, (seen, triggerers)
            ti = tis[f"wait_{kind}"]
            assert ti["try_number"] == seen["try_number"] == 1, (ti, seen)  # resumed, not a second try
            log = _task_log(svc, PIPELINE, run_id, f"wait_{kind}")
            assert "Pausing task as DEFERRED" in log, log[-3000:]
            assert "Trigger fired event" in log or "trigger fired" in log.lower(), log[-3000:]
            step = next(s for s in sim.steps if s.kind == kind)
            assert step.held_seconds >= 2.0, step
            evidence[kind] = [line[:220] for line in log.splitlines()
                              if re.search(r"DEFERRED|[Tt]rigger (fired|.*starting)|[Rr]esum|TaskDeferred", line)][:8]
        assert not svc.query("SELECT id FROM trigger"), "triggers left after the run"

        # promoted: the record on moto's S3, CURRENT on the data the gate passed
        record = json.loads(storage.read_bytes(f"{prefix}/promotion.json"))
        on_s3 = open_dataset(prefix)
        assert record["data_uri"] == on_s3.data_uri and "/compacted/c-" in record["data_uri"], record
        assert record["content_checksum"] == files_checksum(on_s3.files)
        current = storage.read_bytes(f"{prefix}/CURRENT").decode()
        assert record["data_uri"].rsplit("/compacted/", 1)[1] in current, current
        assert not storage.exists(f"{prefix}/_dhs_run.lock")  # the teardown released the prefix

        # the consumer: scheduled by the scheduler on the Asset event, verified the promotion
        t = time.time()

        def consumer_run():
            runs = svc.api("GET", f"/dags/{CONSUMER}/dagRuns")["dag_runs"]
            done = [r for r in runs if r["state"] in ("success", "failed")]
            return done[0] if done else None

        consumer = _wait("the consumer's asset-triggered run", consumer_run, 180, svc, every=2)
        timings["consumer run (after the pipeline ended)"] = time.time() - t
        assert consumer["run_type"] == "asset_triggered", consumer
        ctis = {ti["task_id"]: ti["state"] for ti in svc.api(
            "GET", f"/dags/{CONSUMER}/dagRuns/{consumer['dag_run_id']}/taskInstances")["task_instances"]}
        assert consumer["state"] == "success", (ctis, svc.explain())
        assert ctis == {"verify_promotion": "success", "train": "success"}, ctis
        events = svc.api("GET", f"/dags/{CONSUMER}/dagRuns/{consumer['dag_run_id']}/upstreamAssetEvents")["asset_events"]
        assert [(e["source_dag_id"], e["source_run_id"]) for e in events] == [(PIPELINE, run_id)], events
        assert events[0]["extra"]["dataset_uri"] == prefix and events[0]["extra"]["data_uri"] == record["data_uri"]
        train_log = _task_log(svc, CONSUMER, consumer["dag_run_id"], "train")
        assert f"training would read {record['data_uri']}" in train_log, train_log[-3000:]

        # what each task cost under the real scheduler and executor
        durations = {k: v.get("duration") for k, v in tis.items() if v.get("duration")}
        timings["tasks (sum of durations)"] = sum(durations.values())
        timings["test body"] = time.time() - t_test
    print("\nproduction-shaped Airflow timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    print("deferred sensors: " + json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "at"}
                                            for k, v in deferred.items()}))
    for kind, lines in evidence.items():
        print(f"wait_{kind} log (deferral and resumption):\n  " + "\n  ".join(lines))
    print("task durations: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(durations.items())))
    Path(svc.logs / "timings.json").write_text(json.dumps(timings, indent=1))
