"""The Spark steps on a real multi-process cluster (issue 19): Spark's standalone master and two
workers, each a separate JVM (tests/spark_cluster.py), the steps submitted with spark-submit
exactly as emr_steps.steps defines them, and a worker / an executor killed in the middle.

What runs where (and why it is shaped like EMR):
- The steps are `to_local_argv(<step definition>, master=spark://..., python=<node python>)`:
  the definition's own arguments, unchanged; only the master, the Python, the entry script's
  location and a few resource settings (1 core, 1 GB executors; the driver UI for the test to
  watch; Spark's event log, which EMR also keeps) differ. Client deploy mode (the driver is the
  spark-submit process here; on EMR it runs in the YARN application master).
- The code: EMR gets the wheel (bootstrap.sh installs it into the nodes' python3.11) and the
  entry scripts from the code prefix. Here the wheel is built and staged with
  emr_steps.steps.build_wheel / stage_code into a local code prefix, and installed into a
  "node Python": a fresh venv whose only view of the checkout is the installed wheel. Its
  third-party packages are the venv's (the same pinned versions bootstrap.sh installs from
  requirements.lock, reached through a .pth path entry, which does NOT run the venv's editable-
  install hook), so neither the driver nor an executor can import pipeline/ or emr_steps/ from
  the checkout: a file the wheel lacks fails the step. The driver and every executor run that
  Python (spark.pyspark[.driver].python), the entry script is the staged copy. Installing is
  chosen over `--py-files <wheel>`: a wheel on sys.path is imported as a zip, which neither
  gives package data (pipeline/configs, the gate's suites under <prefix>/share) the way a real
  install does nor is what EMR runs.
- The inputs: the bank and the coadd cache are on S3 (moto's server in this process), the
  manifest and the dataset on the local filesystem, which every worker shares like EMRFS (there
  are no s3a jars for Spark itself to reach moto). Each executor opens the bank by its URI
  (emr_steps.inject._bank -> storage.local_copy): every worker has its own DHS_CACHE_DIR, so
  the test sees each worker's executors download it, separately from the driver's copy.
- The workers share no Python state with the driver: their executors and Python workers run in
  the workers' own --work-dir folders with their own environment (given when the worker
  started, as a node's is), in JVMs that are not the driver's.

The tiny survey is the steps tests' (tests/steps_fixtures.py: 3 bricks, 24 tasks); the
reference rows are the session's `baseline` local[2] run of the same manifest.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from tests.spark_cluster import SPARK_HOME, free_port, get_json

pytest_plugins = ["tests.steps_fixtures", "tests.spark_cluster"]
pytestmark = [pytest.mark.spark, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
BUCKET = "dhs-cluster"
REGION = "us-east-2"
#: one partition per brick of the tiny survey: each executor holds work when one is killed
PARTITIONS = 3
#: small compacted files, so compaction range-partitions (a shuffle) instead of coalescing
TARGET_FILE_MB = 0.05
#: The tiny steps survey's gate suite is its run config's minimum, demo (a weaker one fails
#: suite_policy). Its checks that need the demo's data size cannot pass on 24 rows: the arc_snr
#: bands (the 256-pixel bricks' star masks cover most of the 17 injections' centres, see
#: tests/airflow_fixtures.py TINY_SURVEY) and cosmos_unique_sources >= 10 (a 12-galaxy bank). A
#: local[2] run fails 8 of them on these rows (all but arc_snr_p5) and passes every other check.
SUITE_BASE = "demo"
SIZE_DEPENDENT = re.compile(r"^(arc_snr|cosmos_unique_sources$)")
LOCAL_DEMO_FAILURES = sorted(["arc_snr_p25", "arc_snr_p50", "arc_snr_p75", "arc_snr_p95", "arc_snr_gt1_fraction",
                              "arc_snr_gt10_fraction", "arc_snr_footprint_p50", "cosmos_unique_sources"])
#: timings and fault-tolerance evidence, written to test-artifacts/spark_cluster/report.json
TIMINGS: dict[str, float] = {}
EVIDENCE: dict[str, object] = {}
ARTIFACTS = REPO / "test-artifacts" / "spark_cluster"


@pytest.fixture(scope="module", autouse=True)
def _report():
    import os

    t0, load0 = time.perf_counter(), os.getloadavg()
    yield

    TIMINGS["module_s"] = time.perf_counter() - t0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    doc = {"timings_s": {k: round(v, 1) for k, v in TIMINGS.items()}, "load_average_start": load0, "load_average_end": os.getloadavg(),
           "cpus": os.cpu_count(), **EVIDENCE}
    (ARTIFACTS / "report.json").write_text(json.dumps(doc, indent=1, default=str))
    print("\nspark cluster report: " + json.dumps(doc["timings_s"]) + f" load {doc['load_average_end']}")


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def moto_s3():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
           "AWS_REGION": REGION, "AWS_ENDPOINT_URL_S3": url}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        import boto3

        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield env
    server.stop()


@pytest.fixture(scope="module")
def spark_cluster_worker_env(moto_s3):
    """What a node has: S3 access (here moto's endpoint and fake keys)."""
    return dict(moto_s3)


@pytest.fixture(scope="module")
def node_python(tmp_path_factory):
    """The wheel, staged like EMR's code prefix, installed into a Python that cannot see the checkout."""
    from emr_steps.steps import build_wheel, stage_code

    t0 = time.perf_counter()
    base = tmp_path_factory.mktemp("node")
    wheel = build_wheel(base / "dist")
    code = base / "code"
    stage_code(str(code), wheel)
    venv = base / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # the locked third-party packages: a path entry only (the venv's .pth hooks, among them the
    # editable install of this checkout, are not run)
    (site / "_dhs_locked_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(Path(sys.executable).parent / "uv"), "pip", "install", "--quiet", "--offline", "--no-deps",
                    "--python", str(python), str(code / wheel.name)], check=True, capture_output=True, text=True)
    probe = subprocess.run(
        [str(python), "-c", "import json, sys, pipeline, emr_steps, pyspark, numpy; from pipeline.gate import thresholds; "
                            "print(json.dumps([pipeline.__file__, emr_steps.__file__, str(thresholds.thresholds_path('demo')), "
                            "[getattr(f, '__name__', type(f).__name__) for f in sys.meta_path]]))"],
        check=True, capture_output=True, text=True, cwd=base)
    files = json.loads(probe.stdout)
    assert all(f.startswith(str(site)) for f in files[:2]), files  # the wheel, not the checkout
    assert files[2].startswith(str(venv / "share")), files  # the gate's suites as the wheel installs them
    assert not any("Editable" in f for f in files[3]), files
    TIMINGS["wheel_and_node_python_s"] = time.perf_counter() - t0
    return {"python": str(python), "code": code, "wheel": wheel, "site": site}


@pytest.fixture(scope="module")
def s3_inputs(tiny, moto_s3):
    """The tiny survey's bank and coadd cache on (moto's) S3."""
    from pipeline import storage

    bank = f"s3://{BUCKET}/bank/cosmos_bank.h5"
    storage.write_bytes(bank, Path(tiny.bank).read_bytes())
    coadd = f"s3://{BUCKET}/coadd"
    storage.put_tree(tiny.coadd_prefix, coadd)
    return {"bank": bank, "coadd": coadd}


class Submitted:
    def __init__(self, rc, log, wall_s, events, watched):
        self.returncode, self.log, self.wall_s, self.events, self.watched = rc, log, wall_s, events, watched

    def summary(self) -> dict:
        for line in self.log.splitlines():
            if line.startswith("DHS_STEP_SUMMARY "):
                return json.loads(line[len("DHS_STEP_SUMMARY "):])
        raise AssertionError("no DHS_STEP_SUMMARY in the step's log:\n" + self.log[-4000:])


def submit(defn, cluster, node, workdir: Path, *, watch=None, timeout: float = 900) -> Submitted:
    """spark-submit the step definition to the standalone cluster; `watch(ui_url)` is polled
    while it runs (returns True once it has done what it waits for)."""
    from emr_steps.steps import REPO as STEPS_REPO
    from emr_steps.steps import spark_submit_env, to_local_argv

    workdir.mkdir(parents=True, exist_ok=True)
    events_dir = workdir / "eventlog"
    events_dir.mkdir(exist_ok=True)
    ui_port = free_port()
    argv = to_local_argv(defn, python=node["python"], master=cluster.master_url, driver_memory="1g", extra_conf={
        "spark.executor.memory": cluster.memory, "spark.executor.cores": str(cluster.cores),
        "spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "true", "spark.ui.port": str(ui_port), "spark.ui.showConsoleProgress": "false",
        "spark.eventLog.enabled": "true", "spark.eventLog.dir": str(events_dir),
    })
    argv[0] = str(SPARK_HOME / "bin" / "spark-submit")
    entry = argv.index(str(STEPS_REPO / defn.entry))
    argv[entry] = str(node["code"] / defn.entry)  # the staged entry script, as EMR reads it from the code prefix
    assert argv[entry + 1:] == list(defn.args)  # the definition's arguments, as they are
    env = spark_submit_env(node["python"], {"SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
                                            "DHS_CACHE_DIR": str(workdir / "driver_cache"), "DHS_SPARK_LOG_LEVEL": "WARN"})
    for k in ("PYTHONPATH", "VIRTUAL_ENV"):  # nothing of the checkout or its venv on the driver's path
        env.pop(k, None)
    (workdir / "driver_cache").mkdir(mode=0o700, exist_ok=True)
    log_path = workdir / "driver.log"
    t0 = time.perf_counter()
    watched = None
    with open(log_path, "w") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=workdir, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if watch is not None and watched is None:
                    try:
                        watched = watch(f"http://127.0.0.1:{ui_port}") or None
                    except (OSError, ValueError, KeyError):
                        pass  # the driver UI is not up yet ("Spark is starting up"), or already gone
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                import os
                import signal

                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    wall = time.perf_counter() - t0
    events = [json.loads(line) for f in sorted(events_dir.iterdir()) for line in f.read_text().splitlines() if line.strip()]
    return Submitted(proc.returncode, log_path.read_text(errors="replace"), wall, events, watched)


def app_state(ui: str) -> dict | None:
    apps = get_json(f"{ui}/api/v1/applications", timeout=2)
    if not apps:
        return None
    app = apps[0]["id"]
    return {
        "app": app,
        "executors": {e["id"]: e for e in get_json(f"{ui}/api/v1/applications/{app}/executors", timeout=2)},
        "jobs": get_json(f"{ui}/api/v1/applications/{app}/jobs", timeout=2),
        "stages": get_json(f"{ui}/api/v1/applications/{app}/stages?status=active", timeout=2),
    }


def busy_workers(cluster, st: dict) -> dict[str, list[str]]:
    """worker name -> its executors of this application that run a task now."""
    out = {}
    for name in cluster.alive_nodes():
        ids = cluster.executor_ids(name, st["app"])
        busy = [i for i in ids if st["executors"].get(i, {}).get("activeTasks", 0) > 0]
        if busy:
            out[name] = busy
    return out


def rows_by_task(data_dir) -> dict[str, dict]:
    table = pads.dataset(str(data_dir), format="parquet", partitioning="hive").to_table()
    rows = table.to_pylist()
    by_id = {r["task_id"]: r for r in rows}
    assert len(by_id) == len(rows), "a task_id appears twice"
    return by_id


def file_layout(data_dir) -> dict[str, list[list[str]]]:
    """split -> the task ids of each file, files in part order."""
    out: dict[str, list[list[str]]] = {}
    for f in sorted(Path(data_dir).glob("region_split=*/part-*.parquet")):
        split = f.parent.name.split("=", 1)[1]
        out.setdefault(split, []).append(pq.read_table(f, columns=["task_id"]).column("task_id").to_pylist())
    return out


def _alive(p) -> bool:
    import psutil

    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def task_ends(events) -> list[dict]:
    return [e for e in events if e.get("Event") == "SparkListenerTaskEnd"]


def event_summary(events) -> dict:
    ends = task_ends(events)
    failed = [e for e in ends if e["Task End Reason"]["Reason"] != "Success"]
    return {
        "tasks": len(ends),
        "failed": [(e["Stage ID"], e["Task Info"]["Index"], e["Task Info"]["Executor ID"], e["Task End Reason"]["Reason"])
                   for e in failed],
        "executors_removed": [(e["Executor ID"], e.get("Removed Reason", "")[:80]) for e in events
                              if e.get("Event") == "SparkListenerExecutorRemoved"],
        "executors_added": [(e["Executor ID"], e["Executor Info"]["Host"]) for e in events
                            if e.get("Event") == "SparkListenerExecutorAdded"],
        "stage_attempts": [(e["Stage Info"]["Stage ID"], e["Stage Info"]["Stage Attempt ID"], e["Stage Info"]["Stage Name"][:40],
                            e["Stage Info"].get("Failure Reason", "")[:60]) for e in events
                           if e.get("Event") == "SparkListenerStageCompleted"],
    }


def inject_defn(tiny, s3_inputs, out: Path):
    from emr_steps.steps import inject_step
    from tests.steps_fixtures import inject_params

    return inject_step(inject_params(tiny, out, cosmos_bank_h5=s3_inputs["bank"], coadd_cache_prefix=s3_inputs["coadd"],
                                     num_partitions=PARTITIONS))


@pytest.fixture(scope="module")
def cluster_inject(spark_cluster, node_python, tiny, s3_inputs, tmp_path_factory):
    """One undisturbed inject on the cluster."""
    work = tmp_path_factory.mktemp("cluster_inject")
    run = submit(inject_defn(tiny, s3_inputs, work / "D"), spark_cluster, node_python, work / "submit")
    assert run.returncode == 0, run.log[-5000:]
    TIMINGS["inject_s"] = run.wall_s
    return {"root": work / "D", "data": work / "D" / "phase4c", "run": run}


# ---------------------------------------------------------------------- the cluster


def test_cluster_is_a_master_and_two_worker_jvms(spark_cluster):
    TIMINGS["cluster_start_s"] = spark_cluster.started_s
    state = spark_cluster.master_state()
    alive = [w for w in state["workers"] if w["state"] == "ALIVE"]
    assert len(alive) == 2 and all(w["cores"] == 1 and w["memory"] == 1024 for w in alive)
    assert state["url"] == spark_cluster.master_url
    pids = {spark_cluster.master.pid} | {d.pid for d in spark_cluster.nodes.values()}
    assert len(pids) == 3
    for name, node in spark_cluster.nodes.items():
        import psutil

        cmd = psutil.Process(node.pid).cmdline()
        assert cmd[0].endswith("java") and "org.apache.spark.deploy.worker.Worker" in cmd
        assert str(node.work_dir) in cmd  # its own --work-dir
        assert any(str(SPARK_HOME) in c for c in cmd)  # the pinned pyspark's jars


# ---------------------------------------------------------------------- the three steps


def test_inject_on_the_cluster_matches_local_rows(spark_cluster, cluster_inject, baseline, tiny):
    from pipeline.dataset import rows_digest, read_metadata

    run = cluster_inject["run"]
    summary = run.summary()
    assert summary["rows"] == tiny.n_tasks
    meta = read_metadata(str(cluster_inject["data"]))
    assert meta["spark"]["master"] == spark_cluster.master_url
    assert meta["bank"]["uri"].startswith(f"s3://{BUCKET}/")
    # the work ran on both workers' executors, in their own folders
    ends = [e for e in task_ends(run.events) if e["Task End Reason"]["Reason"] == "Success"]
    assert len({e["Task Info"]["Executor ID"] for e in ends}) == 2
    for name, node in spark_cluster.nodes.items():
        stderr = "".join(p.read_text(errors="replace") for p in node.work_dir.rglob("stderr"))
        assert "DHS_PARTITION_TIMING" in stderr, f"{name} injected nothing"
        # the bank, fetched by this worker's executor through its S3 URI, into the worker's cache
        assert any(p.name.endswith("cosmos_bank.h5") for p in node.cache_dir.iterdir()), name
    # same tasks, same content as local[2]
    local = rows_by_task(baseline["data"])
    cluster = rows_by_task(cluster_inject["data"])
    assert set(cluster) == set(local) and len(cluster) == tiny.n_tasks
    exact = rows_digest(str(cluster_inject["data"])) == rows_digest(str(baseline["data"]))
    for task_id, row in cluster.items():
        assert_same_row(row, local[task_id])
    print(f"\ncluster inject: {tiny.n_tasks} tasks in {run.wall_s:.1f} s (spark-submit wall); rows "
          f"{'bit-identical to' if exact else 'within the stored quantization of'} local[2]'s")


def assert_same_row(a: dict, b: dict):
    """Same content within the stored quantization (as tests/test_spark_inject_matches_inprocess.py)."""
    for c, va in a.items():
        vb = b[c]
        if c in ("image", "invvar", "arc", "maskbits") and va is not None and vb is not None:
            xa, xb = np.asarray(va, np.float64), np.asarray(vb, np.float64)
            if c == "image":
                assert np.abs(xa - xb).max() <= 2.0 ** -14, (a["task_id"], c)
            elif c == "invvar":
                assert np.all(np.abs(xa - xb) <= 2.0 ** -10 * np.abs(xb)), (a["task_id"], c)
            elif c == "maskbits":
                np.testing.assert_array_equal(xa, xb)
            else:
                pa_, pb = xa.reshape(3, -1), xb.reshape(3, -1)
                for band in range(3):
                    assert np.abs(pa_[band] - pb[band]).max() <= np.abs(pb[band]).max() * 2.0 ** -10, (a["task_id"], band)
        elif isinstance(va, float) and isinstance(vb, float):
            assert va == pytest.approx(vb, rel=1e-4, abs=1e-12, nan_ok=True), (a["task_id"], c, va, vb)
        else:
            assert va == vb, (a["task_id"], c, va, vb)


@pytest.fixture(scope="module")
def cluster_compact(spark_cluster, node_python, cluster_inject):
    from emr_steps.steps import compact_step

    run = submit(compact_step({"output_prefix": str(cluster_inject["root"]), "target_file_mb": TARGET_FILE_MB}),
                 spark_cluster, node_python, cluster_inject["root"].parent / "submit_compact")
    assert run.returncode == 0, run.log[-5000:]
    TIMINGS["compact_s"] = run.wall_s
    return run


def test_compact_on_the_cluster_keeps_every_row(cluster_inject, cluster_compact):
    from pipeline.dataset import rows_digest, dir_stats, resolve_data_uri

    summary = cluster_compact.summary()
    root = str(cluster_inject["root"])
    assert resolve_data_uri(root) == summary["data"] and "/compacted/c-" in summary["data"]
    assert rows_digest(summary["data"]) == rows_digest(str(cluster_inject["data"]))
    files = dir_stats(summary["data"])[0]
    assert files > 3  # range-partitioned: more than one file per split
    print(f"\ncluster compact: {dir_stats(str(cluster_inject['data']))[0]} -> {files} files in {cluster_compact.wall_s:.1f} s")


def test_validate_on_the_cluster_runs_the_demo_gate(spark_cluster, node_python, cluster_inject, cluster_compact, tiny):
    """The validation step on the cluster, with the tiny survey's suite (its run config's
    minimum, demo: a weaker suite is refused by the suite policy): exit 0, validation.json
    written, the row contract and every check the data's size allows pass; the only failures
    are the size-dependent checks, which local[2] fails on these rows too."""
    from emr_steps.steps import validate_step

    root = cluster_inject["root"]
    run = submit(validate_step({"output_prefix": str(root), "manifest_uri": str(tiny.manifest), "gate_suite": SUITE_BASE,
                                "validation_run": "cluster"}), spark_cluster, node_python, root.parent / "submit_validate")
    TIMINGS["validate_s"] = run.wall_s
    assert run.returncode == 0, run.log[-5000:]
    doc = json.loads((root / "validation" / "cluster" / "validation.json").read_text())
    assert sum(doc["dataset"]["rows_per_split"].values()) == tiny.n_tasks
    assert doc["dataset"]["content_checksum"] == cluster_compact.summary()["content_checksum"]  # the compacted rows
    results = {e["name"]: e["success"] for e in doc["expectations"]}
    failed = sorted(n for n, ok in results.items() if not ok)
    passed = sorted(n for n, ok in results.items() if ok)
    assert failed == LOCAL_DEMO_FAILURES, doc["failures"]  # local[2]'s verdict on the same rows
    assert len(passed) >= 20 and {"nothing_lost", "nothing_lost_total", "cutout_success_rate", "magnification_physical",
                                  "no_lrg_in_two_splits", "shortcut_probe"} <= set(passed)
    assert not [f for f in doc["failures"] if not SIZE_DEPENDENT.match(f.split(":")[0])], doc["failures"]
    EVIDENCE["validate"] = {"failed": failed, "passed": len(passed)}
    print(f"\ncluster validate ({SUITE_BASE} suite) in {run.wall_s:.1f} s: {len(passed)} checks pass; "
          f"size-dependent failures {failed}")


# ---------------------------------------------------------------------- fault tolerance


def test_killed_worker_during_inject_gives_identical_rows(spark_cluster, node_python, tiny, s3_inputs, cluster_inject,
                                                          tmp_path):
    """SIGKILL a worker (JVM, executor, Python workers) while its Python worker injects; the
    remaining worker finishes the step; the rows equal the undisturbed run's, task by task."""
    seen: dict = {}

    def kill_mid_inject(ui):
        st = app_state(ui)
        if st is None:
            return None
        for name in busy_workers(spark_cluster, st):
            if not spark_cluster.python_workers(name):
                continue  # not in the injection (the Python stage) yet
            first = seen.setdefault(name, time.monotonic())
            if time.monotonic() - first < 3.0:  # a few seconds into its partition
                return None
            done = {i: e["completedTasks"] for i, e in st["executors"].items() if i != "driver"}
            stages = [(s["stageId"], s["name"][:40], s["numActiveTasks"], s["numCompleteTasks"], s["numTasks"]) for s in st["stages"]]
            killed = spark_cluster.kill_worker(name)
            return {"worker": name, "at_s": time.monotonic() - t0, "killed": killed, "completed_by_executor": done,
                    "active_stages": stages}
        return None

    t0 = time.monotonic()
    out = tmp_path / "D"
    run = submit(inject_defn(tiny, s3_inputs, out), spark_cluster, node_python, tmp_path / "submit", watch=kill_mid_inject)
    TIMINGS["inject_killed_worker_s"] = run.wall_s
    ev = event_summary(run.events)
    EVIDENCE["inject_killed_worker"] = {"kill": run.watched, "event_log": ev}
    print(f"\nkilled during inject: {json.dumps(run.watched, default=str)}\nevent log: {json.dumps(ev)}")
    assert run.watched, "the step finished before a worker could be killed mid-injection"
    killed = run.watched["killed"]
    assert any("deploy.worker.Worker" in k for k in killed) and any("CoarseGrainedExecutorBackend" in k for k in killed)
    assert any("python" in k for k in killed)
    assert not [p for p in spark_cluster.processes(run.watched["worker"]) if _alive(p)]
    assert run.returncode == 0, run.log[-5000:]
    assert ev["executors_removed"] and ev["failed"]  # Spark saw the loss and rescheduled
    assert run.summary()["rows"] == tiny.n_tasks
    # row for row what the undisturbed run wrote: no task missing, none twice, same content
    before, after = rows_by_task(cluster_inject["data"]), rows_by_task(out / "phase4c")
    assert set(after) == set(before)
    for task_id in before:
        assert after[task_id] == before[task_id], task_id
    from pipeline.dataset import rows_digest

    assert rows_digest(str(out / "phase4c")) == rows_digest(str(cluster_inject["data"]))
    # a node to replace the lost one, for what follows (the step itself finished on one worker)
    t1 = time.perf_counter()
    spark_cluster.start_worker(f"w{len(spark_cluster.nodes) + 1}")
    TIMINGS["replacement_worker_s"] = time.perf_counter() - t1


def test_killed_executor_during_compaction_gives_identical_data(spark_cluster, node_python, cluster_inject, cluster_compact,
                                                                tmp_path):
    """SIGKILL one executor JVM (and its Python workers) while it runs a compaction task after
    the first job; the master starts a new executor on the same worker; the compacted data is
    the undisturbed compaction's, row for row, under the same content address."""
    import shutil

    from emr_steps.steps import compact_step
    from pipeline.dataset import rows_digest

    root = tmp_path / "D"
    shutil.copytree(cluster_inject["data"], root / "phase4c")  # the same source rows

    def kill_mid_compact(ui):
        st = app_state(ui)
        if st is None or not any(j["status"] == "SUCCEEDED" for j in st["jobs"]):
            return None
        busy = busy_workers(spark_cluster, st)
        if not busy:
            return None
        name = sorted(busy)[0]
        stages = [(s["stageId"], s["name"][:40], s["numActiveTasks"], s["numCompleteTasks"], s["numTasks"]) for s in st["stages"]]
        jobs = [(j["jobId"], j["status"], j["name"][:40]) for j in st["jobs"]]
        killed = spark_cluster.kill_executors(name)
        return {"worker": name, "executors": busy[name], "at_s": time.monotonic() - t0, "killed": killed,
                "active_stages": stages, "jobs": jobs}

    t0 = time.monotonic()
    run = submit(compact_step({"output_prefix": str(root), "target_file_mb": TARGET_FILE_MB}), spark_cluster, node_python,
                 tmp_path / "submit", watch=kill_mid_compact)
    TIMINGS["compact_killed_executor_s"] = run.wall_s
    ev = event_summary(run.events)
    EVIDENCE["compact_killed_executor"] = {"kill": run.watched, "event_log": ev}
    print(f"\nkilled during compaction: {json.dumps(run.watched, default=str)}\nevent log: {json.dumps(ev)}")
    assert run.watched, "the compaction finished before an executor could be killed"
    assert any("CoarseGrainedExecutorBackend" in k for k in run.watched["killed"])
    assert run.returncode == 0, run.log[-5000:]
    assert ev["executors_removed"]
    undisturbed = cluster_compact.summary()
    summary = run.summary()
    assert Path(summary["data"]).name == Path(undisturbed["data"]).name  # same content address
    # the rows, and which rows each file holds; not the files' checksum (content_checksum): every
    # write names its files with a fresh job UUID, undisturbed or not
    assert rows_digest(summary["data"]) == rows_digest(undisturbed["data"])
    assert file_layout(summary["data"]) == file_layout(undisturbed["data"])
    before, after = rows_by_task(undisturbed["data"]), rows_by_task(summary["data"])
    assert set(after) == set(before) and all(after[t] == before[t] for t in before)
    # the worker lives on and got a new executor
    assert spark_cluster.nodes[run.watched["worker"]].alive()
