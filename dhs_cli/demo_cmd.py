"""`dhs demo`: the whole pipeline on a synthetic mini-survey, through the real Airflow DAG.

Inputs are made by the same commands a user runs (`dhs survey synth`, `dhs bank synth`,
`dhs manifest`); existing inputs are reused, so a second `make demo` only reruns the DAG. The DAG
runs with `airflow dags test` against a project-local Airflow home (SQLite), backend `local`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "dhs_phase4_pipeline"


def register(subparsers) -> None:
    from dhs_cli.main import HelpFormatter, add_run_param
    from pipeline.run_params import suite_names

    p = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on a synthetic mini-survey (what `make demo` runs)",
        description=__doc__,
        formatter_class=HelpFormatter,
        epilog="example:\n  dhs demo --out demo_output            # inputs, then the Airflow DAG, local backend\n"
               "  dhs demo --out demo_output --gate-suite strict   # the same data through a gate that must fail\n",
    )
    p.add_argument("--out", default="demo_output", help="folder for everything the demo writes")
    add_run_param(p, "gate_suite", default="demo", choices=suite_names())
    p.add_argument("--inputs-only", action="store_true", help="make the survey, bank and manifest, skip the DAG")
    add_run_param(p, "local_master", default="local[2]", help="Spark master of the local backend")
    p.set_defaults(func=run)


def _dhs(argv: list[str]) -> None:
    from dhs_cli.main import main

    code = main(argv)
    if code:
        raise SystemExit(code)


def input_commands(out: Path) -> dict[str, list[str]]:
    """The `dhs` command lines that make the demo's survey, bank and manifest under `out` (the same
    commands a user runs; tests parse each one, so a renamed flag cannot break `make demo` alone)."""
    survey, bank_dir, manifest = out / "survey", out / "bank", out / "manifest"
    real = REPO_ROOT / "data" / "hst_galaxies"
    return {
        "survey": ["survey", "synth", "--out", str(survey), "--quiet"],
        "bank": ["bank", "synth", "--out", str(bank_dir), "--n", "300", "--include-real", str(real)],
        "manifest": ["manifest", "--lrg", str(survey / "lrg.parquet"), "--cosmos-bank-h5",
                     str(bank_dir / "cosmos_bank.h5"), "--run-config", "demo", "--out", str(manifest)],
    }


def make_inputs(out: Path) -> dict:
    """Survey, bank and manifest under `out`, made once and reused."""
    survey, bank_dir, manifest = out / "survey", out / "bank", out / "manifest"
    commands = input_commands(out)
    t0 = time.time()
    if not (survey / "survey.json").is_file():
        _dhs(commands["survey"])
    else:
        print(f"reusing survey {survey}")
    bank = bank_dir / "cosmos_bank.h5"
    if not bank.is_file():
        _dhs(commands["bank"])
    else:
        print(f"reusing bank {bank}")
    if not (manifest / "manifest.json").is_file():
        _dhs(commands["manifest"])
    else:
        print(f"reusing manifest {manifest}")
    print(f"inputs ready in {time.time() - t0:.0f} s")
    return {
        "survey": survey, "coadd_cache_prefix": survey / "coadd", "lrg_table": survey / "lrg.parquet",
        "bank": bank, "manifest": manifest,
    }


def airflow_env(out: Path) -> dict:
    """Environment of a project-local Airflow: SQLite home under `out`, our dags/ and plugins/."""
    home = Path(out).resolve() / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        # the dataset folder only: the Airflow home (config, secrets) stays outside what /dhs-docs may serve
        "DHS_DOCS_ROOT": str((out / "dataset").resolve()),
        "DHS_ALLOWED_OUTPUT_ROOTS": str(out.resolve()),
        "PYSPARK_PYTHON": sys.executable,
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", "/tmp/dhs_numba_cache"),
    }


def dag_conf(inputs: dict, out: Path, suite: str, master: str) -> dict:
    return {
        "backend": "local",
        "variant": "demo",
        "experiment_id": "demo_stamp64_bandsgrz_cosmos",
        "run_config": "demo",
        "manifest_uri": str(inputs["manifest"].resolve()),
        "coadd_cache_prefix": str(inputs["coadd_cache_prefix"].resolve()),
        "cosmos_bank_h5": str(inputs["bank"].resolve()),
        "output_prefix": str((out / "dataset").resolve()),
        "local_master": master,
        "gate_suite": suite,
    }


def start_db_migrate(out: Path) -> subprocess.Popen | None:
    """Create the demo's Airflow database in the background (~14 s of Airflow start-up and SQL),
    while the inputs are made; None when it exists already."""
    env = airflow_env(out)
    if (Path(env["AIRFLOW_HOME"]) / "airflow.db").is_file():
        return None
    airflow = str(Path(sys.executable).with_name("airflow"))
    log = open(Path(env["AIRFLOW_HOME"]) / "db_migrate.log", "w")
    return subprocess.Popen([airflow, "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_db_migrate(proc: subprocess.Popen | None, out: Path) -> None:
    if proc is None:
        return
    if proc.wait() != 0:
        log = Path(airflow_env(out)["AIRFLOW_HOME"]) / "db_migrate.log"
        raise SystemExit(f"`airflow db migrate` failed (exit {proc.returncode}); see {log}")


def run_dag(out: Path, conf: dict) -> int:
    env = airflow_env(out)
    airflow = str(Path(sys.executable).with_name("airflow"))
    if not (Path(env["AIRFLOW_HOME"]) / "airflow.db").is_file():
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    log_path = out / "airflow" / "dags_test.log"
    print(f"running DAG {DAG_ID} (backend local); log: {log_path}")
    t0 = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.run([airflow, "dags", "test", DAG_ID, "-c", json.dumps(conf)], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    print(f"DAG finished in {time.time() - t0:.0f} s")
    return proc.returncode


def run(args) -> int:
    out = Path(args.out).resolve()  # Airflow refuses a relative SQLite path in AIRFLOW_HOME
    out.mkdir(parents=True, exist_ok=True)
    migrate = None if args.inputs_only else start_db_migrate(out)
    try:
        inputs = make_inputs(out)
    except BaseException:
        if migrate is not None:
            migrate.kill()
        raise
    for key in ("survey", "lrg_table", "bank", "manifest"):
        print(f"{key:>10}: {inputs[key]}")
    if args.inputs_only:
        return 0
    wait_db_migrate(migrate, out)
    conf = dag_conf(inputs, out, args.gate_suite, args.local_master)
    code = run_dag(out, conf)
    dataset = Path(conf["output_prefix"])
    summary = _summarise(dataset, out)
    if code != 0 or not summary["promoted"]:
        print(f"the DAG run did not promote the dataset (suite {args.gate_suite}); see {out / 'airflow' / 'dags_test.log'}")
        for line in summary["failures"]:
            print(f"  - {line}")
        return 1
    return 0


def _summarise(dataset: Path, out: Path) -> dict:
    """Print where the Data Docs, the report and the promotion record are."""
    validations = sorted(dataset.glob("validation/*/validation.json"), key=lambda p: p.stat().st_mtime)
    failures: list[str] = []
    latest = str(validations[-1]) if validations else None
    if validations:
        doc = json.loads(validations[-1].read_text())
        failures = doc.get("failures", [])
        outputs = doc.get("outputs", {})
        print(f"validation: {validations[-1]}  (passed: {doc.get('passed')})")
        print(f" Data Docs: {outputs.get('data_docs')}")
        print(f"    report: {outputs.get('report')}")
    record = dataset / "promotion.json"
    rec = json.loads(record.read_text()) if record.is_file() else {}
    # a record left by an earlier passing run does not make this run's dataset promoted
    promoted = bool(rec) and (rec.get("validation") or {}).get("uri") == latest
    if promoted:
        print(f" promotion: {record}")
        print(json.dumps({k: rec.get(k) for k in ("dataset_uri", "content_checksum", "rows_per_split", "promoted_at")}, indent=2))
    elif rec:
        print(f" promotion: none by this run ({record} is from an earlier run, validation {rec.get('validation', {}).get('uri')})")
    else:
        print(" promotion: none")
    return {"promoted": promoted, "failures": failures}


