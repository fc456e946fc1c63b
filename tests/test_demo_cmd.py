"""`dhs demo` wiring that does not need a DAG run."""

from __future__ import annotations

import os
from pathlib import Path

from dhs_cli.demo_cmd import airflow_env


def test_airflow_home_is_absolute_for_a_relative_out(tmp_path, monkeypatch):
    """`make demo` passes `--out demo_output` (relative): Airflow refuses a relative SQLite path
    ("Cannot use relative path ... to connect to sqlite"), so the home must be made absolute."""
    monkeypatch.chdir(tmp_path)
    env = airflow_env(Path("demo_output"))
    home = Path(env["AIRFLOW_HOME"])
    assert home.is_absolute() and home == tmp_path / "demo_output" / "airflow" and home.is_dir()
    assert os.path.isabs(env["DHS_DOCS_ROOT"]) and os.path.isabs(env["DHS_ALLOWED_OUTPUT_ROOTS"])


def test_airflow_database_is_made_in_the_background_and_waited_for(tmp_path):
    """`dhs demo` creates Airflow's database while it makes the inputs (real `airflow db migrate`)."""
    from dhs_cli.demo_cmd import start_db_migrate, wait_db_migrate

    proc = start_db_migrate(tmp_path)
    assert proc is not None
    wait_db_migrate(proc, tmp_path)
    assert (tmp_path / "airflow" / "airflow.db").is_file()
    assert start_db_migrate(tmp_path) is None  # made once, reused


def test_a_failed_database_migration_stops_the_demo_naming_its_log(tmp_path):
    import subprocess

    import pytest

    from dhs_cli.demo_cmd import wait_db_migrate

    with pytest.raises(SystemExit, match=r"airflow db migrate.*exit 1.*db_migrate\.log"):
        wait_db_migrate(subprocess.Popen(["false"]), tmp_path)


def test_every_command_the_demo_runs_parses_with_the_dhs_parser(tmp_path):
    """`make demo` makes its inputs with `dhs survey synth`, `dhs bank synth` and `dhs manifest`:
    each command line must parse (a renamed flag once broke only `make demo`), and the DAG conf it
    triggers with holds only trigger-form fields."""
    from dhs_cli.demo_cmd import dag_conf, input_commands
    from dhs_cli.main import build_parser
    from pipeline import run_params

    parser = build_parser()
    for name, argv in input_commands(tmp_path).items():
        args = parser.parse_args(argv)
        assert args.command == argv[0], name
    manifest = parser.parse_args(input_commands(tmp_path)["manifest"])
    assert manifest.cosmos_bank_h5.endswith("cosmos_bank.h5") and manifest.run_config == "demo"
    inputs = {"manifest": tmp_path / "m", "coadd_cache_prefix": tmp_path / "c", "bank": tmp_path / "b.h5"}
    conf = dag_conf(inputs, tmp_path, "demo", "local[2]")
    assert set(conf) <= set(run_params.BY_NAME), set(conf) - set(run_params.BY_NAME)
