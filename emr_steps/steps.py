"""One definition per Spark step, rendered for both backends (SPEC section 4).

    defn = inject_step(params)                     # params: the DAG's Params (or the CLI's flags)
    to_emr_step(defn, code_prefix)                 # -> dict for EmrAddStepsOperator / add_job_flow_steps
    to_local_argv(defn, python=..., master=...)    # -> [".venv/bin/spark-submit", "--master", "local[2]", ...]
    run_local(defn)                                # runs that argv, streaming its log

The step's own arguments (`defn.args`) are identical in both forms; only the Spark resources and
where the entry script comes from differ:
- EMR: `command-runner.jar spark-submit --deploy-mode cluster` with the seed's settings (section
  3.2), the entry script from the code prefix on S3; the code itself is the wheel that
  `bootstrap.sh` installed on every node (no --py-files needed);
- local: this checkout's entry script, `--master local[N]`, small memory and parallelism, the
  venv's Python for driver and workers.

Code prefix layout (what `stage_code` uploads, what `bootstrap.sh` expects):
    <code_prefix>/dark_halo_scope-<v>-py3-none-any.whl
    <code_prefix>/requirements.lock
    <code_prefix>/bootstrap.sh
    <code_prefix>/emr_steps/{inject,compact,validate}.py
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from pipeline import run_params, storage
from pipeline.config import parse_bands

REPO = Path(__file__).resolve().parents[1]
ENTRY_SCRIPTS = ("emr_steps/inject.py", "emr_steps/compact.py", "emr_steps/validate.py")

#: Python on EMR nodes: emr-7.x (Amazon Linux 2023) ships python3 = 3.9, the package needs 3.11;
#: bootstrap.sh installs python3.11 and the steps point PySpark at it.
EMR_PYTHON = "/usr/bin/python3.11"
#: numba loads pickled, compiled code from its cache: a folder others can write is code execution
#: as whoever runs the next step. On EMR, each YARN container's own working directory (YARN
#: expands {{PWD}}; private to the application's user, gone with the container); locally, a
#: per-user folder of mode 0700 (private_numba_cache_dir).
NUMBA_CACHE_DIR = "{{PWD}}/numba_cache"


def private_numba_cache_dir() -> str:
    """This user's numba cache for local steps (created 0700 by spark_submit_env)."""
    return str(Path(tempfile.gettempdir()) / f"dhs_numba_cache-{os.getuid()}")


#: The seed's Spark settings (phase4c_production_review.md section 3.2).
EMR_RESOURCES = {"executor_memory": "6g", "driver_memory": "4g", "executor_cores": 2}
EMR_CONF = {
    "spark.default.parallelism": "600",
    "spark.sql.shuffle.partitions": "600",
    # seed 5.2 "Numba cache permissions: RuntimeError on EMR": executors AND the driver, which in
    # cluster mode runs inside the YARN application master
    "spark.executorEnv.NUMBA_CACHE_DIR": NUMBA_CACHE_DIR,
    "spark.yarn.appMasterEnv.NUMBA_CACHE_DIR": NUMBA_CACHE_DIR,
    "spark.pyspark.python": EMR_PYTHON,
    "spark.pyspark.driver.python": EMR_PYTHON,
    "spark.executorEnv.PYSPARK_PYTHON": EMR_PYTHON,
    "spark.yarn.appMasterEnv.PYSPARK_PYTHON": EMR_PYTHON,
    # EMR's S3 connector is EMRFS: s3:// URIs, no s3a jars on the classpath
    "spark.executorEnv.DHS_SPARK_S3_SCHEME": "s3",
    "spark.yarn.appMasterEnv.DHS_SPARK_S3_SCHEME": "s3",
}
#: Local backend: 2 shared cores, a few GB of RAM.
LOCAL_RESOURCES = {"driver_memory": "3g"}
LOCAL_CONF = {
    "spark.default.parallelism": "4",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.executorEnv.NUMBA_CACHE_DIR": private_numba_cache_dir(),
}

DEFAULT_REGION = "us-east-2"
#: EMR auto-termination: a cluster with no step or YARN application for an hour terminates itself,
#: the second safety net behind the DAG's teardown (a dead scheduler, a lost triggerer, a run
#: marked failed by hand). An hour is ~100x the gaps between our steps (the sensor's 30 s poke
#: plus scheduling) and short against the ~$0.5/h per m5.2xlarge node it stops.
AUTO_TERMINATION_IDLE_S = 3600
#: The seed's cluster (section 3.1).
SEED_CLUSTER = run_params.SEED_CLUSTER


@dataclass(frozen=True)
class StepDefinition:
    """What a Spark step runs, independent of the backend."""

    name: str
    #: entry script, relative to the repo root / the code prefix
    entry: str
    #: the entry script's own arguments (the seed's flags)
    args: tuple[str, ...]
    #: Spark settings for the production backend (EMR); local uses LOCAL_* instead
    spark_conf: Mapping[str, str] = field(default_factory=lambda: dict(EMR_CONF))
    executor_memory: str = EMR_RESOURCES["executor_memory"]
    driver_memory: str = EMR_RESOURCES["driver_memory"]
    executor_cores: int = EMR_RESOURCES["executor_cores"]
    #: EMR: a failed step terminates the cluster at once (the later steps need its output, so a
    #: cluster kept alive would only bill); the DAG's teardown terminates it on every other path,
    #: and the idle policy (AUTO_TERMINATION_IDLE_S) if Airflow itself is gone
    action_on_failure: str = "TERMINATE_CLUSTER"

    def with_args(self, *extra: str) -> "StepDefinition":
        return replace(self, args=self.args + tuple(str(a) for a in extra))


# ------------------------------------------------------------------ params -> definitions


def _get(params: Mapping[str, Any], key: str, default=None):
    value = params.get(key)
    return default if value in (None, "") else value


def _bands_arg(value) -> str:
    if isinstance(value, (list, tuple)):
        value = ",".join(value)
    return ",".join(parse_bands(str(value), source="bands"))


def _flag01(value) -> str:
    return "1" if str(value).strip().lower() in ("1", "true", "yes", "on") else "0"


def _need(params, key):
    value = _get(params, key)
    if value is None:
        from pipeline.errors import InputError  # noqa: PLC0415

        raise InputError(key, "required to build the step")
    return str(value)


def _run_param_args(params: Mapping[str, Any], names: tuple[str, ...]) -> list[str]:
    """[flag, value, ...] of the run parameters given, each under its one step flag (pipeline.run_params)."""
    args: list[str] = []
    for name in names:
        if _get(params, name) is not None:
            value = _bands_arg(params[name]) if name == "bands" else str(params[name])
            args += [run_params.param(name).step_flag, value]
    return args


#: The run parameters each step reads (pipeline.run_params), required ones first.
INJECT_REQUIRED = ("output_prefix", "manifest_uri", "coadd_cache_prefix", "cosmos_bank_h5")
INJECT_OPTIONAL = ("run_config", "variant", "experiment_id", "psf_model", "moffat_beta", "source_mode",
                   "control_frac_train", "bands")


def inject_step(params: Mapping[str, Any]) -> StepDefinition:
    """Stage 4c. Run parameters (pipeline.run_params): INJECT_REQUIRED, INJECT_OPTIONAL; the plan's
    own keys: unpaired_controls, skip_if_exists, force, run_id, num_partitions, compression,
    planned_core_hours, pipeline_run."""
    for name in INJECT_REQUIRED:
        _need(params, name)
    args = ["--stage", "4c", *_run_param_args(params, INJECT_REQUIRED + INJECT_OPTIONAL)]
    for key, flag in (("run_id", "--run-id"), ("num_partitions", "--num-partitions"), ("compression", "--compression"),
                      ("planned_core_hours", "--planned-core-hours")):
        if _get(params, key) is not None:
            args += [flag, str(params[key])]
    for key, flag in (("unpaired_controls", "--unpaired-controls"), ("skip_if_exists", "--skip-if-exists"),
                      ("force", "--force")):
        if _get(params, key) is not None:
            args += [flag, _flag01(params[key])]
    if _get(params, "pipeline_run") is not None:
        args += ["--pipeline-run", str(params["pipeline_run"])]
    return StepDefinition(name="dhs 4c inject", entry="emr_steps/inject.py", args=tuple(args))


def compact_step(params: Mapping[str, Any]) -> StepDefinition:
    """Stage 4p5. Run parameters: output_prefix, target_file_mb. The plan's keys: pipeline_run (the
    source is what that run's inject recorded; CURRENT is left to the promotion), or by hand
    compact_source (data to compact); optional compaction_id, compression."""
    args = ["--stage", "4p5", *_run_param_args(params, ("output_prefix",))]
    _need(params, "output_prefix")
    if _get(params, "pipeline_run") is not None:
        args += ["--pipeline-run", str(params["pipeline_run"]), "--switch-current", "0"]
    elif _get(params, "compact_source") is not None:
        args += ["--source", str(params["compact_source"])]
    args += _run_param_args(params, ("target_file_mb",))
    if _get(params, "compaction_id") is not None:
        args += ["--run-id", str(params["compaction_id"])]
    if _get(params, "compression") is not None:
        args += ["--compression", str(params["compression"])]
    return StepDefinition(name="dhs 4p5 compact", entry="emr_steps/compact.py", args=tuple(args))


def validate_step(params: Mapping[str, Any]) -> StepDefinition:
    """The gate's validation/profile (emr_steps/validate.py). Run parameters: output_prefix,
    manifest_uri, gate_suite (default production). The plan's keys: validation_uri (default
    <output_prefix>/validation/<validation_run or latest>), reference_profile, pipeline_run (validate exactly what that
    run's compact step recorded)."""
    output = _need(params, "output_prefix")
    out = _get(params, "validation_uri") or storage.join(output, "validation", str(_get(params, "validation_run", default="latest")))
    args = [*_run_param_args({"output_prefix": output, "manifest_uri": _need(params, "manifest_uri"),
                              "gate_suite": _get(params, "gate_suite", default="production")},
                             ("output_prefix", "manifest_uri", "gate_suite")),
            "--out", str(out)]
    if _get(params, "reference_profile") is not None:
        args += ["--reference-profile", str(params["reference_profile"])]
    if _get(params, "pipeline_run") is not None:
        args += ["--pipeline-run", str(params["pipeline_run"])]
    return StepDefinition(name="dhs validate", entry="emr_steps/validate.py", args=tuple(args))


# ------------------------------------------------------------------ rendering


def _conf_args(conf: Mapping[str, str]) -> list[str]:
    out = []
    for k, v in conf.items():
        out += ["--conf", f"{k}={v}"]
    return out


def _s3_spelling(args: tuple[str, ...]) -> list[str]:
    """On EMR every S3 URI is spelled s3:// (EMRFS); s3a:// would need jars EMR does not ship."""
    return [storage.to_s3(a) if storage.is_s3(a) else a for a in args]


def to_emr_step(defn: StepDefinition, code_prefix: str, *, py_files: list[str] | None = None, deploy_mode: str = "cluster") -> dict:
    """The EMR step (boto3 `add_job_flow_steps(Steps=[...])` / EmrAddStepsOperator `steps=[...]`)."""
    prefix = storage.to_s3(code_prefix).rstrip("/")
    argv = [
        "spark-submit",
        "--deploy-mode", deploy_mode,
        "--executor-memory", defn.executor_memory,
        "--driver-memory", defn.driver_memory,
        "--executor-cores", str(defn.executor_cores),
        *_conf_args(defn.spark_conf),
    ]
    if py_files:
        argv += ["--py-files", ",".join(storage.to_s3(p) for p in py_files)]
    argv += [f"{prefix}/{defn.entry}", *_s3_spelling(defn.args)]
    return {
        "Name": defn.name,
        "ActionOnFailure": defn.action_on_failure,
        "HadoopJarStep": {"Jar": "command-runner.jar", "Args": argv},
    }


def default_python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def spark_submit_bin(python: str | None = None) -> str:
    """spark-submit next to the venv's python (pyspark installs it there), else on PATH."""
    cand = Path(python or default_python()).parent / "spark-submit"
    return str(cand) if cand.exists() else "spark-submit"


def to_local_argv(defn: StepDefinition, *, python: str | None = None, master: str | None = None,
                  driver_memory: str | None = None, parallelism: int | None = None, extra_conf: Mapping[str, str] | None = None) -> list[str]:
    """`spark-submit --master local[N]` for this checkout. Arguments are the definition's, as is."""
    python = python or default_python()
    master = master or os.environ.get("DHS_SPARK_MASTER", "local[2]")
    conf = dict(LOCAL_CONF)
    if parallelism:
        conf["spark.default.parallelism"] = conf["spark.sql.shuffle.partitions"] = str(parallelism)
    conf.update({"spark.pyspark.python": python, "spark.pyspark.driver.python": python})
    conf.update(extra_conf or {})
    return [
        spark_submit_bin(python),
        "--master", master,
        "--driver-memory", driver_memory or LOCAL_RESOURCES["driver_memory"],
        *_conf_args(conf),
        str(REPO / defn.entry),
        *defn.args,
    ]


def local_env(python: str | None = None) -> dict[str, str]:
    """Environment additions for a local step (also what the DAG's local operator passes)."""
    python = python or default_python()
    return {"PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python, "NUMBA_CACHE_DIR": private_numba_cache_dir()}


#: What a spark-submit child inherits from the process that starts it (an Airflow worker holds
#: the metadata DB URL, the fernet and JWT keys, connections): the basics of a process, Java and
#: Spark's own, AWS access (S3 inputs), and the pipeline's DHS_/NUMBA_/PYSPARK_ settings.
SPARK_ENV_PASSTHROUGH = re.compile(
    r"PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|JAVA_HOME|SPARK_HOME|HADOOP_CONF_DIR|"
    r"YARN_CONF_DIR|SPARK_CONF_DIR|SPARK_LOCAL_IP|SPARK_LOCAL_HOSTNAME|PYTHONPATH|PYTHONPYCACHEPREFIX|"
    r"PYTHONHASHSEED|VIRTUAL_ENV|OMP_NUM_THREADS|OPENBLAS_NUM_THREADS|MKL_NUM_THREADS|GX_ANALYTICS_ENABLED|"
    r"AWS_[A-Z0-9_]+|DHS_[A-Z0-9_]+|NUMBA_[A-Z0-9_]+|PYSPARK_[A-Z_]+")


def spark_submit_env(python: str | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a local spark-submit: the allow-listed part of ours, local_env,
    then `extra`. Makes sure the default numba cache exists and is private."""
    env = {k: v for k, v in os.environ.items() if SPARK_ENV_PASSTHROUGH.fullmatch(k)}
    env.update(local_env(python))
    env.update({k: str(v) for k, v in (extra or {}).items()})
    if env["NUMBA_CACHE_DIR"] == private_numba_cache_dir():
        storage.private_dir(env["NUMBA_CACHE_DIR"], "NUMBA_CACHE_DIR")
    return env


def start_local(defn: StepDefinition, *, python: str | None = None, master: str | None = None, env: Mapping[str, str] | None = None,
                **kwargs) -> subprocess.Popen:
    """Start the local step in its own process group (so it can be stopped as a whole)."""
    argv = to_local_argv(defn, python=python, master=master, **kwargs)
    full_env = spark_submit_env(python, env)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env,
                            cwd=REPO, start_new_session=True)


def run_local(defn: StepDefinition, *, python: str | None = None, master: str | None = None, env: Mapping[str, str] | None = None,
              stream=None, tail_lines: int | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run the step locally, streaming its log to `stream` (default stderr) as it comes; returns
    the CompletedProcess with the whole log as stdout (or its last `tail_lines`)."""
    stream = sys.stderr if stream is None else stream
    proc = start_local(defn, python=python, master=master, env=env, **kwargs)
    lines: collections.deque[str] = collections.deque(maxlen=tail_lines)
    try:
        for line in proc.stdout:
            lines.append(line)
            if stream is not False:
                stream.write(line)
                stream.flush()
        proc.wait()
    except BaseException:
        import signal  # noqa: PLC0415

        os.killpg(proc.pid, signal.SIGKILL)  # no orphan JVM writing half an output
        proc.wait()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout="".join(lines), stderr="")


# ------------------------------------------------------------------ cluster and code


def bootstrap_action(code_prefix: str, wheel_name: str) -> dict:
    prefix = storage.to_s3(code_prefix).rstrip("/")
    return {
        "Name": "install dark-halo-scope",
        "ScriptBootstrapAction": {"Path": f"{prefix}/bootstrap.sh", "Args": [prefix, wheel_name]},
    }


def wheel_name(version: str | None = None) -> str:
    from pipeline import __version__  # noqa: PLC0415

    return f"dark_halo_scope-{version or __version__}-py3-none-any.whl"


def default_job_flow_overrides(
    *,
    name: str = "dhs-phase4",
    release_label: str = SEED_CLUSTER["release_label"],
    master_instance_type: str = SEED_CLUSTER["master_instance_type"],
    core_instance_type: str = SEED_CLUSTER["core_instance_type"],
    core_instance_count: int = SEED_CLUSTER["core_instance_count"],
    log_uri: str = SEED_CLUSTER["log_uri"],
    code_prefix: str = SEED_CLUSTER["code_prefix"],
    wheel: str | None = None,
    tags: Mapping[str, str] | None = None,
    idle_timeout_s: int = AUTO_TERMINATION_IDLE_S,
) -> dict:
    """`job_flow_overrides` for EmrCreateJobFlowOperator (boto3 run_job_flow kwargs), defaults
    from the seed's cluster (section 3.1). The region (seed: us-east-2, DEFAULT_REGION) is not a
    run_job_flow key: it goes to the operators' region_name / the boto3 client."""
    return {
        "Name": name,
        "ReleaseLabel": release_label,
        "LogUri": storage.to_s3(log_uri),
        "Applications": [{"Name": "Spark"}],
        "Instances": {
            "InstanceGroups": [
                {"Name": "master", "Market": "ON_DEMAND", "InstanceRole": "MASTER", "InstanceType": master_instance_type, "InstanceCount": 1},
                {"Name": "core", "Market": "ON_DEMAND", "InstanceRole": "CORE", "InstanceType": core_instance_type, "InstanceCount": int(core_instance_count)},
            ],
            # the DAG adds steps after creation and terminates the cluster in its teardown
            "KeepJobFlowAliveWhenNoSteps": True,
            "TerminationProtected": False,
        },
        "AutoTerminationPolicy": {"IdleTimeout": int(idle_timeout_s)},
        "BootstrapActions": [bootstrap_action(code_prefix, wheel or wheel_name())],
        "Configurations": [
            {"Classification": "spark-env", "Configurations": [
                # no NUMBA_CACHE_DIR here: the Python processes are YARN containers (EMR_CONF sets theirs)
                {"Classification": "export", "Properties": {"PYSPARK_PYTHON": EMR_PYTHON}},
            ]},
        ],
        "JobFlowRole": "EMR_EC2_DefaultRole",
        "ServiceRole": "EMR_DefaultRole",
        "VisibleToAllUsers": True,
        "Tags": [{"Key": k, "Value": v} for k, v in {"project": "dark-halo-scope", **(tags or {})}.items()],
    }


def code_files(wheel_path: str | Path) -> dict[str, Path]:
    """Relative name under the code prefix -> local file, for `stage_code`."""
    wheel_path = Path(wheel_path)
    files = {wheel_path.name: wheel_path, "requirements.lock": REPO / "requirements.lock",
             "bootstrap.sh": REPO / "emr_steps" / "bootstrap.sh"}
    files.update({e: REPO / e for e in ENTRY_SCRIPTS if (REPO / e).exists()})
    return files


def stage_code(code_prefix: str, wheel_path: str | Path) -> list[str]:
    """Upload the wheel, the lock, bootstrap.sh and the entry scripts under `code_prefix`."""
    out = []
    for rel, path in sorted(code_files(wheel_path).items()):
        uri = storage.join(storage.to_s3(code_prefix) if storage.is_s3(code_prefix) else code_prefix, *rel.split("/"))
        storage.write_bytes(uri, Path(path).read_bytes())
        out.append(uri)
    return out


def build_wheel(out_dir: str | Path, *, uv: str | None = None) -> Path:
    """`uv build --wheel` of this checkout into out_dir; returns the wheel's path."""
    uv = uv or str(Path(default_python()).parent / "uv")
    out_dir = Path(out_dir)
    subprocess.run([uv, "build", "--wheel", "--out-dir", str(out_dir), str(REPO)], check=True, capture_output=True, text=True)
    wheels = sorted(out_dir.glob("dark_halo_scope-*.whl"))
    if not wheels:
        raise RuntimeError(f"uv build produced no wheel in {out_dir}")
    return wheels[-1]
