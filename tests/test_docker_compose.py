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
    """`airflow <sub> --help` exits 0 for each distinct subcommand (with its options)."""
    from tests.airflow_fixtures import AIRFLOW_BIN

    seen = set()
    for name, svc in _airflow_services(compose).items():
        cmd = svc["command"]
        assert cmd[0] == "airflow", name
        sub = tuple(a for a in cmd[1:] if not a.startswith("-") and not a.isdigit())
        if sub in seen:
            continue
        seen.add(sub)
        proc = subprocess.run([AIRFLOW_BIN, *sub, "--help"], env=airflow_home.env, capture_output=True, text=True,
                              timeout=180)
        assert proc.returncode == 0, (name, sub, proc.stderr[-2000:])
        for opt in (a for a in cmd[1:] if a.startswith("--")):
            assert opt in proc.stdout, f"{name}: `airflow {' '.join(sub)}` has no option {opt}"


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
    volumes = compose["x-airflow-common"]["volumes"]
    hosts = {v.split(":", 1)[0] for v in volumes}
    for required in ("./dags", "./plugins", "./expectations"):
        assert required in hosts, required
        assert (REPO / required).is_dir(), required


def test_dockerfile_installs_lock_and_project(compose):
    build = compose["x-airflow-common"]["build"]
    dockerfile = REPO / build.get("context", ".") / build["dockerfile"]
    assert dockerfile.is_file()
    text = dockerfile.read_text()
    assert re.search(r"^COPY requirements\.lock", text, re.M)
    assert re.search(r"install .*-r requirements\.lock", text)
    for src in ("pipeline", "emr_steps", "pyproject.toml"):
        assert re.search(rf"^COPY .*\b{re.escape(src)}\b", text, re.M), src
    assert re.search(r"uv pip install .*\s\.$", text, re.M), "the project itself is installed"
    assert "openjdk-17" in text, "local Spark steps need Java 17"


def test_dhs_variables_are_read_by_the_code(compose):
    env = compose["x-airflow-common"]["environment"]
    dhs = [k for k in env if k.startswith("DHS_")]
    sources = "\n".join(p.read_text(errors="replace") for d in CODE_DIRS for p in (REPO / d).rglob("*.py"))
    unread = [k for k in dhs if k not in sources]
    assert not unread, f"docker-compose.yaml sets {unread}, which no code in {CODE_DIRS} reads"
