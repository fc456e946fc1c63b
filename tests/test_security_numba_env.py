"""Issue 15 case 6: numba caches and what a spark-submit child inherits.

Before: bootstrap.sh made /tmp/numba_cache mode 1777 on every EMR node and every step used it
(numba loads pickled code from there: any local user could plant some); locally every user shared
/tmp/dhs_numba_cache; and spark-submit got the Airflow worker's whole environment (metadata DB
URL, fernet key, connections)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

pytest_plugins = ["tests.airflow_fixtures"]

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "plugins") not in sys.path:
    sys.path.append(str(REPO / "plugins"))

WORKER_SECRETS = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://airflow:hunter2@db/airflow",
    "AIRFLOW__CORE__FERNET_KEY": "fernet-secret",
    "AIRFLOW__API_AUTH__JWT_SECRET": "jwt-secret",
    "AIRFLOW_CONN_AWS_DEFAULT": '{"password": "conn-secret"}',
    "SOME_OTHER_TOKEN": "other-secret",
}


def test_emr_numba_cache_is_per_container():
    from emr_steps.steps import default_job_flow_overrides, inject_step, to_emr_step

    defn = inject_step({"output_prefix": "s3://b/o", "manifest_uri": "s3://b/m", "coadd_cache_prefix": "s3://b/c",
                        "cosmos_bank_h5": "s3://b/x.h5"})
    args = to_emr_step(defn, "s3://darkhaloscope/code/dhs/0.1.0")["HadoopJarStep"]["Args"]
    confs = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--conf")
    for key in ("spark.executorEnv.NUMBA_CACHE_DIR", "spark.yarn.appMasterEnv.NUMBA_CACHE_DIR"):
        assert confs[key].startswith("{{PWD}}/"), (key, confs[key])  # the container's own directory
    exports = [c for c in default_job_flow_overrides()["Configurations"] if c["Classification"] == "spark-env"]
    props = exports[0]["Configurations"][0]["Properties"]
    assert not props.get("NUMBA_CACHE_DIR", "").startswith("/tmp"), props


def test_bootstrap_makes_no_world_writable_folder():
    text = (REPO / "emr_steps" / "bootstrap.sh").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "1777" not in code and "777" not in code and "a+w" not in code and "o+w" not in code


def test_local_numba_cache_is_private_to_the_user(monkeypatch, tmp_path):
    import tempfile

    from emr_steps import steps

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    env = steps.spark_submit_env(sys.executable)
    cache = Path(env["NUMBA_CACHE_DIR"])
    assert cache == tmp_path / f"dhs_numba_cache-{os.getuid()}"
    info = cache.stat()
    assert info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) == 0o700
    assert steps.LOCAL_CONF["spark.executorEnv.NUMBA_CACHE_DIR"].endswith(f"dhs_numba_cache-{os.getuid()}")


def test_spark_submit_child_gets_a_minimal_environment(airflow_home, monkeypatch, tmp_path):
    """The DAG's local operator runs its argv (here a Python printing its environment) as it runs
    spark-submit; the child must not see the worker's secrets."""
    import tempfile

    from dhs_airflow.local_spark import LocalSparkSubmitOperator

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for key, value in WORKER_SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # S3 inputs still readable
    monkeypatch.setenv("DHS_SPARK_S3_SCHEME", "s3a")
    op = LocalSparkSubmitOperator(task_id="probe", argv=[sys.executable, "-c",
                                                         "import json, os; print(json.dumps(dict(os.environ)))"],
                                  env={"PYSPARK_PYTHON": sys.executable})
    child = json.loads(op.execute(context={})["last_line"])
    leaked = sorted(k for k in WORKER_SECRETS if k in child)
    assert not leaked, f"spark-submit would see {leaked}"
    assert not any(v in json.dumps(child) for v in WORKER_SECRETS.values())
    assert child["AWS_ACCESS_KEY_ID"] == "testing" and child["DHS_SPARK_S3_SCHEME"] == "s3a"
    assert child["PYSPARK_PYTHON"] == sys.executable and "PATH" in child
    assert child["NUMBA_CACHE_DIR"] == str(tmp_path / f"dhs_numba_cache-{os.getuid()}")


def test_start_local_uses_the_same_environment(monkeypatch, tmp_path):
    import tempfile

    from emr_steps import steps

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for key, value in WORKER_SECRETS.items():
        monkeypatch.setenv(key, value)
    captured = {}

    class FakePopen:
        def __init__(self, argv, **kwargs):
            captured.update(kwargs["env"])

    monkeypatch.setattr(steps.subprocess, "Popen", FakePopen)
    defn = steps.compact_step({"output_prefix": str(tmp_path / "o")})
    steps.start_local(defn, python=sys.executable)
    assert not set(WORKER_SECRETS) & set(captured) and captured["PYSPARK_PYTHON"] == sys.executable


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o775])
def test_a_shared_default_cache_folder_is_refused(monkeypatch, tmp_path, mode):
    import tempfile

    from emr_steps import steps
    from pipeline.errors import InputError

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    shared = Path(steps.private_numba_cache_dir())
    shared.mkdir()
    shared.chmod(mode)
    with pytest.raises(InputError) as exc:
        steps.spark_submit_env(sys.executable)
    assert exc.value.source == "NUMBA_CACHE_DIR"
