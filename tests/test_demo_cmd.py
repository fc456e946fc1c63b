"""`dhs demo` wiring that does not need a DAG run."""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.cli.demo_cmd import airflow_env


def test_airflow_home_is_absolute_for_a_relative_out(tmp_path, monkeypatch):
    """`make demo` passes `--out demo_output` (relative): Airflow refuses a relative SQLite path
    ("Cannot use relative path ... to connect to sqlite"), so the home must be made absolute."""
    monkeypatch.chdir(tmp_path)
    env = airflow_env(Path("demo_output"))
    home = Path(env["AIRFLOW_HOME"])
    assert home.is_absolute() and home == tmp_path / "demo_output" / "airflow" and home.is_dir()
    assert os.path.isabs(env["DHS_DOCS_ROOT"]) and os.path.isabs(env["DHS_ALLOWED_OUTPUT_ROOTS"])
