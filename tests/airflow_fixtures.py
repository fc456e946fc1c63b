"""A real Airflow for the DAG tests: a session-wide AIRFLOW_HOME (SQLite) under pytest's tmp dir,
our dags/ and plugins/, examples off, `airflow db migrate` run once.

Use it with `pytest_plugins = ["tests.airflow_fixtures"]`. DAG runs go through `airflow dags test`
in a subprocess (as `dhs demo` does), so the run parses the DAG files exactly as a deployment does
and the test process never has to import Airflow with the right config; task and run states are
read back from the SQLite metadata DB with sqlite3.

The fixture also exports the same environment into this process (before anything imports
airflow), so the in-process DagBag/Params checks of test_dag_import.py see the same config.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))
PIPELINE_DAG = "dhs_phase4_pipeline"
CONSUMER_DAG = "dhs_training_consumer"


@dataclass
class DagRunResult:
    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, str]
    returncode: int
    log: Path
    seconds: float
    conf: dict = field(default_factory=dict)

    def log_tail(self, n: int = 80) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def explain(self) -> str:
        return f"run {self.run_id} state={self.state} tasks={self.tasks}\n--- log tail ({self.log}) ---\n{self.log_tail()}"


@dataclass
class AirflowHome:
    home: Path
    #: allowed local output root of every run (DHS_ALLOWED_OUTPUT_ROOTS)
    out_root: Path
    env: dict

    @property
    def db(self) -> Path:
        return self.home / "airflow.db"

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with sqlite3.connect(self.db) as con:
            return con.execute(sql, args).fetchall()

    def run_dag(self, conf: dict, *, dag_id: str = PIPELINE_DAG, extra_env: dict | None = None,
                timeout: float = 2400, log_name: str | None = None, command: list[str] | None = None) -> DagRunResult:
        """`airflow dags test DAG -c conf` (or `command`); returns the run's state and every task's state."""
        env = {**self.env, **(extra_env or {})}
        before = {r[0] for r in self.query("SELECT run_id FROM dag_run WHERE dag_id = ?", (dag_id,))}
        log_path = self.home / f"{log_name or dag_id}-{int(time.time() * 1000)}.log"
        t0 = time.time()
        with open(log_path, "w") as log:
            proc = subprocess.run(command or [AIRFLOW_BIN, "dags", "test", dag_id, "-c", json.dumps(conf)], env=env,
                                  stdout=log, stderr=subprocess.STDOUT, timeout=timeout, cwd=self.out_root)
        seconds = time.time() - t0
        runs = [r for r in self.query("SELECT run_id, state FROM dag_run WHERE dag_id = ? ORDER BY id", (dag_id,))
                if r[0] not in before]
        if not runs:
            raise AssertionError(f"`airflow dags test {dag_id}` made no DAG run (exit {proc.returncode}):\n"
                                 + "\n".join(log_path.read_text(errors="replace").splitlines()[-80:]))
        run_id, state = runs[-1]
        tasks = dict(self.query("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                                (dag_id, run_id)))
        return DagRunResult(dag_id, run_id, state, tasks, proc.returncode, log_path, seconds, conf)

    def xcom(self, run: DagRunResult, task_id: str, key: str = "return_value"):
        """An XCom value of one task of `run` (None when it was never pushed)."""
        rows = self.query("SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND key = ?",
                          (run.dag_id, run.run_id, task_id, key))
        if not rows:
            return None
        value = rows[0][0]
        # the column is JSON holding the serialized value, itself JSON text
        while isinstance(value, (str, bytes)):
            try:
                value = json.loads(value)
            except ValueError:
                break
        return value

    def asset_events(self, asset_name: str) -> list[dict]:
        rows = self.query(
            "SELECT e.id, e.extra, e.source_dag_id, e.source_run_id FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.name = ? ORDER BY e.id", (asset_name,))
        return [{"id": eid, "extra": json.loads(extra or "{}"), "source_dag_id": dag, "source_run_id": run}
                for eid, extra, dag, run in rows]

    def run_on_asset_event(self, dag_id: str, event_id: int, *, log_name: str | None = None) -> DagRunResult:
        """Run `dag_id` as the scheduler would for one asset event: `airflow dags test`, with the
        event (a real row, written by the producing run) attached to the new run's consumed
        events, so the tasks get it as `triggering_asset_events`. (`dags test` alone makes a
        manual run with no event; the scheduler, which makes asset-triggered runs, is not part of
        these SQLite tests.)"""
        script = (
            "import sys\n"
            "import airflow.models.dagrun as dagrun\n"
            "from airflow.models.asset import AssetEvent\n"
            "real = dagrun.get_or_create_dagrun\n"
            "def with_event(*args, session, **kwargs):\n"
            "    run = real(*args, session=session, **kwargs)\n"
            f"    run.consumed_asset_events.append(session.get(AssetEvent, {int(event_id)}))\n"
            "    session.flush()\n"
            "    return run\n"
            "dagrun.get_or_create_dagrun = with_event\n"
            "from airflow.__main__ import main\n"
            f"sys.argv = ['airflow', 'dags', 'test', {dag_id!r}]\n"
            "sys.exit(main())\n"
        )
        return self.run_dag({}, dag_id=dag_id, log_name=log_name, command=[sys.executable, "-c", script])


def base_env(home: Path, out_root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {
        **env,
        # each `airflow dags test` is a fresh interpreter importing Airflow: without bytecode caches
        # it recompiles ~2,500 modules (~10 s); keep the caches out of the venv
        "PYTHONPYCACHEPREFIX": os.environ.get("PYTHONPYCACHEPREFIX", "/tmp/dhs_pycache"),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "DHS_DOCS_ROOT": str(out_root),
        "DHS_ALLOWED_OUTPUT_ROOTS": str(out_root),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", "/tmp/dhs_numba_cache"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    }


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> AirflowHome:
    home = tmp_path_factory.mktemp("airflow_home")
    out_root = tmp_path_factory.mktemp("airflow_out").resolve()
    env = base_env(home, out_root)
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != str(home):
        # Too late to configure this process; the subprocess runs are unaffected.
        print("warning: airflow was imported before the airflow_home fixture; in-process config may differ")
    # Only Airflow's own settings go into this process: DHS_ALLOWED_OUTPUT_ROOTS here would make every
    # later test's `dhs ... --out tmp_path` refuse its output (the Airflow subprocesses get `env`).
    for key in ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER",
                "AIRFLOW__CORE__LOAD_EXAMPLES", "AIRFLOW__CORE__UNIT_TEST_MODE", "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"):
        os.environ[key] = env[key]
    plugins = str(REPO / "plugins")
    if plugins not in sys.path:
        sys.path.append(plugins)  # what Airflow does for the plugins folder
    proc = subprocess.run([AIRFLOW_BIN, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"airflow db migrate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return AirflowHome(home, out_root, env)


#: The tiny survey of the local-backend DAG tests: 240 LRGs (8 bricks x 30), 64x64 stamps.
#: Bricks of 512 pixels (134"), not smaller: the synthetic survey puts 2-4 bright stars in every
#: brick whatever its size, and legacypipe's mask radius (1630" x 1.396^-G: 30" at G = 12) makes
#: their MEDIUM/BRIGHT halos cover 20-86% of a 256-pixel brick (33-86% of pixels in
#: BAD_MASKBITS). Injections landing there get arc_masked_frac = 1 and arc_snr = 0 (29% of the
#: LRGs of 12 bricks of 256 pixels had most of their centre masked), and the demo suite rightly
#: fails on their arc_snr quantiles. At 512 pixels it is 3% of the LRGs (5-33% of pixels).
TINY_SURVEY = {"n_bricks": 8, "brick_size": 512, "lrgs_per_brick": 30, "edge_frac": 0}
TINY_BANK_GALAXIES = 40


@pytest.fixture(scope="session")
def tiny_inputs(airflow_home) -> dict:
    """Survey, bank and manifest for the local-backend DAG runs, made once per session by the
    user commands (`dhs survey synth`, `dhs bank synth`, `dhs manifest`, demo run config).
    Splits with the demo config's seed: train 139 / val 34 / test 67 tasks, half controls."""
    from dhs_cli.main import main

    out = airflow_home.out_root / "tiny_inputs"  # inside the runs' DHS_ALLOWED_OUTPUT_ROOTS
    survey, bank_dir, manifest = out / "survey", out / "bank", out / "manifest"
    t0 = time.time()
    synth = ["survey", "synth", "--out", str(survey), "--quiet"]
    for key, value in TINY_SURVEY.items():
        synth += [f"--{key.replace('_', '-')}", str(value)]
    assert main(synth) == 0
    assert main(["bank", "synth", "--out", str(bank_dir), "--n", str(TINY_BANK_GALAXIES),
                 "--include-real", str(REPO / "data" / "hst_galaxies")]) == 0
    assert main(["manifest", "--lrg", str(survey / "lrg.parquet"), "--cosmos-bank-h5", str(bank_dir / "cosmos_bank.h5"),
                 "--run-config", "demo", "--out", str(manifest)]) == 0
    print(f"\ntiny inputs in {time.time() - t0:.0f} s")
    return {"manifest": manifest, "coadd": survey / "coadd", "bank": bank_dir / "cosmos_bank.h5",
            "tasks": TINY_SURVEY["n_bricks"] * TINY_SURVEY["lrgs_per_brick"]}

