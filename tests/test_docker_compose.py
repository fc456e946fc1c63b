"""docker-compose.yaml and its Dockerfile, checked without Docker: the services exist, every
command is a real Airflow subcommand, every AIRFLOW__SECTION__KEY is a real option, the mounts
exist, the image installs the lock and the project, and every DHS_ variable is one the code reads."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

pytest_plugins = ["tests.airflow_fixtures"]
pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[1]
CODE_DIRS = ("pipeline", "emr_steps", "dags", "plugins")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())


def _airflow_services(compose):
    return {name: svc for name, svc in compose["services"].items() if "airflow" in " ".join(svc.get("command") or [])}


def test_services_present(compose):
    services = compose["services"]
    for name in ("postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                 "airflow-triggerer"):
        assert name in services, name
    commands = {name: svc["command"] for name, svc in _airflow_services(compose).items()}
    assert commands["airflow-init"][:3] == ["airflow", "db", "migrate"]
    assert commands["airflow-triggerer"] == ["airflow", "triggerer"]  # deferrable EMR sensors wait there
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name


def test_commands_are_real_airflow_subcommands(compose, airflow_home):
    """Each service's command parses with the `airflow` CLI's own parser (subcommand, options and
    their values), in process: the same check as `airflow <sub> --help` without a process each."""
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for name, svc in _airflow_services(compose).items():
        cmd = svc["command"]
        assert cmd[0] == "airflow", name
        try:
            args = parser.parse_args(cmd[1:])
        except SystemExit:
            pytest.fail(f"{name}: `{' '.join(cmd)}` is not a valid airflow command line")
        assert callable(getattr(args, "func", None)), name
        if "--port" in cmd:
            assert args.port == int(cmd[cmd.index("--port") + 1]), name
    with pytest.raises(SystemExit):  # the check can fail: an unknown option is refused
        parser.parse_args(["scheduler", "--no-such-option"])


def test_airflow_env_vars_name_real_options(compose, airflow_home):
    from airflow.configuration import conf

    env = compose["x-airflow-common"]["environment"]
    keys = [k for k in env if k.startswith("AIRFLOW__")]
    assert keys
    for key in keys:
        _, section, option = key.split("__", 2)
        # the documented options (config.yml), including those without a default
        known = conf.configuration_description.get(section.lower(), {}).get("options", {})
        assert option.lower() in known or conf.has_option(section.lower(), option.lower()), \
            f"{key}: Airflow has no option [{section.lower()}] {option.lower()}"


def test_mounted_paths_exist(compose):
    mounts = _volume_map(compose)
    for required in ("dags", "plugins", "expectations"):
        assert mounts.get(f"/opt/airflow/{required}") == REPO / required, (required, mounts)
        assert (REPO / required).is_dir(), required


def test_dockerfile_installs_lock_and_project(compose):
    build = compose["x-airflow-common"]["build"]
    dockerfile = REPO / build.get("context", ".") / build["dockerfile"]
    assert dockerfile.is_file()
    text = dockerfile.read_text()
    assert re.search(r"^COPY requirements\.lock", text, re.M)
    assert re.search(r"install .*-r requirements\.lock", text)
    for src in ("pipeline", "emr_steps", "expectations", "pyproject.toml"):
        assert re.search(rf"^COPY .*\b{re.escape(src)}\b", text, re.M), src
    assert re.search(r"uv pip install .*\s\.$", text, re.M), "the project itself is installed"
    assert "openjdk-17" in text, "local Spark steps need Java 17"


def test_dhs_variables_are_read_by_the_code(compose):
    env = compose["x-airflow-common"]["environment"]
    dhs = [k for k in env if k.startswith("DHS_")]
    sources = "\n".join(p.read_text(errors="replace") for d in CODE_DIRS for p in (REPO / d).rglob("*.py"))
    unread = [k for k in dhs if k not in sources]
    assert not unread, f"docker-compose.yaml sets {unread}, which no code in {CODE_DIRS} reads"


def _volume_map(compose) -> dict[str, Path]:
    """container path -> host path (relative to the repo), `${VAR:-default}` at its default."""
    out = {}
    for v in compose["x-airflow-common"]["volumes"]:
        host, container = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", v).split(":")[:2]
        out[container] = (REPO / host).resolve()
    return out


def _dockerfile(compose) -> str:
    build = compose["x-airflow-common"]["build"]
    return (REPO / build.get("context", ".") / build["dockerfile"]).read_text()


def test_expectations_dir_is_the_mounted_suites(compose, monkeypatch):
    """DHS_EXPECTATIONS_DIR is a mount target whose host folder holds every suite the DAG's form
    offers, and pipeline.gate.thresholds reads the suites from there first."""
    from pipeline.gate import thresholds

    env = compose["x-airflow-common"]["environment"]
    container = env[thresholds.ENV_VAR]
    host = _volume_map(compose)[container]
    assert host == REPO / "expectations"
    from dhs_airflow.form import form_params

    # the choices the DAG's trigger form offers (derived from the run-parameter table)
    suites = list(form_params()["gate_suite"].schema["enum"])
    assert set(suites) == {"demo", "production", "strict"}
    monkeypatch.setenv(thresholds.ENV_VAR, str(host))
    for suite in suites:
        assert thresholds.thresholds_path(suite) == host / f"{suite}.yaml"
        assert thresholds.load_thresholds(suite).checks


def test_local_backend_paths_fall_in_the_data_mount(compose, airflow_home, monkeypatch, tmp_path):
    """Tasks run in the image's WORKDIR: the form's default input/output paths resolve inside the
    data mount, the plan accepts the default output prefix under the compose's allowed roots,
    and DHS_DOCS_ROOT (what the /dhs-docs app serves) is that mount."""
    from dhs_airflow.plan import DEFAULTS, check_output_prefix

    env = compose["x-airflow-common"]["environment"]
    workdir = re.findall(r"^WORKDIR\s+(\S+)", _dockerfile(compose), re.M)[-1]
    assert workdir == env["AIRFLOW__CORE__DAGS_FOLDER"].rsplit("/", 1)[0] == "/opt/airflow"
    mounts = _volume_map(compose)
    data_mount = f"{workdir}/demo_output"
    assert data_mount in mounts and mounts[data_mount] == REPO / "demo_output"
    for key in ("manifest_uri", "coadd_cache_prefix", "cosmos_bank_h5", "output_prefix"):
        assert f"{workdir}/{DEFAULTS[key]}".startswith(data_mount + "/"), (key, DEFAULTS[key])
    assert env["DHS_DOCS_ROOT"] == data_mount
    roots = env["DHS_ALLOWED_OUTPUT_ROOTS"].split(",")
    assert roots == ["s3://darkhaloscope/", data_mount]
    # the same check, on a stand-in for the container's file system
    fake_mount = tmp_path / "demo_output"
    fake_mount.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", f"s3://darkhaloscope/,{fake_mount}")
    assert check_output_prefix(DEFAULTS["output_prefix"]) == str(fake_mount / "dataset")
    assert check_output_prefix("s3://darkhaloscope/datasets/v5") == "s3://darkhaloscope/datasets/v5"


def test_image_install_carries_the_suites_and_step_scripts(compose, tmp_path):
    """Build the wheel from exactly what the Dockerfile COPYs before `uv pip install .`: it holds
    the pipeline and emr_steps packages (the local backend spark-submits emr_steps/<step>.py from
    the installed package), the run configs, and every suite under share/dark-halo-scope/
    expectations, where pipeline.gate.thresholds looks in a non-editable install."""
    import sys
    import zipfile

    from emr_steps.steps import ENTRY_SCRIPTS
    from pipeline.gate.thresholds import INSTALLED_SUBDIR

    text = _dockerfile(compose)
    install = text.index("uv pip install --system --no-cache --no-deps .")
    src = tmp_path / "src"
    src.mkdir()
    copied = []
    for line in text[:install].splitlines():
        m = re.match(r"^COPY\s+(.+)\s+(\S+)$", line)
        if not m:
            continue
        for item in m.group(1).split():
            copied.append(item)
            path = REPO / item
            assert path.exists(), f"Dockerfile copies {item}, which is not in the project"
            if path.is_dir():
                import shutil

                shutil.copytree(path, src / item, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                (src / item).write_bytes(path.read_bytes())
    assert {"pyproject.toml", "pipeline", "emr_steps", "expectations"} <= set(copied)
    wheels = tmp_path / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(wheels), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = wheels.glob("dark_halo_scope-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for entry in ENTRY_SCRIPTS:
        assert entry in names, entry
    assert "emr_steps/bootstrap.sh" in names and "pipeline/configs/demo.yaml" in names
    data = {n.split(".data/data/", 1)[1] for n in names if ".data/data/" in n}
    for suite in ("demo", "production", "strict"):
        assert f"{INSTALLED_SUBDIR.as_posix()}/{suite}.yaml" in data, sorted(data)
