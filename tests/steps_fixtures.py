"""Tiny inputs for the Spark step tests: a 3-brick synthetic survey, a small bank, a manifest.

Built once per test session under a pytest tmp dir (a few seconds); `tiny_inputs(base)` returns
the paths. Kept small on purpose: 2 shared cores, local[2].
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass(frozen=True)
class TinyInputs:
    survey: Path
    coadd_prefix: Path
    bank: Path
    manifest: Path
    n_tasks: int
    bricks: tuple[str, ...]


def tiny_inputs(base: Path, *, n_bricks: int = 3, lrgs_per_brick: int = 10, max_tasks: int = 24) -> TinyInputs:
    from pipeline.bank.build import build_bank
    from pipeline.bank.synth import synth_galsim_catalog
    from pipeline.config import load_run_config
    from pipeline.manifest import build_manifest, write_manifest
    from pipeline.survey.lrg_table import read_lrg_table
    from pipeline.survey.synth import synth_survey

    base = Path(base)
    survey = base / "survey"
    info = synth_survey(str(survey), seed=7, n_bricks=n_bricks, brick_size_pix=256, lrgs_per_brick=lrgs_per_brick,
                        progress=lambda _msg: None)
    bank_dir = base / "bank"
    cat = synth_galsim_catalog(bank_dir / "galsim", 12, 3)
    bank_path = bank_dir / "cosmos_bank.h5"
    build_bank([cat], bank_path)
    from pipeline.bank.store import open_bank

    bank = open_bank(bank_path)
    import numpy as np

    from pipeline.units import NMGY_ZEROPOINT_AB
    cfg = load_run_config("demo")
    lrg = read_lrg_table(info["lrg_table"])
    df = build_manifest(lrg, cfg, bank.n, bank.hlr_arcsec, hlr_filter_arcsec=bank.hlr_filter_arcsec, max_tasks=max_tasks,
                        bank_mag_f814w=NMGY_ZEROPOINT_AB - 2.5 * np.log10(bank.flux_nmgy), bank_zphot=bank.column("zphot"))
    manifest = base / "manifest"
    write_manifest(df, str(manifest), cfg, {"lrg": info["lrg_table"], "bank": str(bank_path)})
    return TinyInputs(
        survey=survey,
        coadd_prefix=Path(info["coadd_prefix"]),
        bank=bank_path,
        manifest=manifest,
        n_tasks=int(len(df)),
        bricks=tuple(sorted(df["brickname"].unique())),
    )


def step_env() -> dict[str, str]:
    """Environment for a spark-submit child: this venv's Python for workers, quiet logs."""
    env = dict(os.environ)
    env["PYSPARK_PYTHON"] = PYTHON
    env["PYSPARK_DRIVER_PYTHON"] = PYTHON
    env.setdefault("NUMBA_CACHE_DIR", "/tmp/dhs_numba_cache")
    env.setdefault("DHS_SPARK_LOG_LEVEL", "ERROR")
    return env


def remove_brick(coadd_prefix: Path, brickname: str, dest: Path) -> Path:
    """Copy the coadd cache without one brick's files (a brick that cannot be loaded)."""
    shutil.copytree(coadd_prefix, dest)
    shutil.rmtree(dest / brickname)
    return dest


def kill_group_when(proc: subprocess.Popen, condition, timeout_s: float) -> bool:
    """SIGKILL the process group of `proc` (started with start_new_session=True) as soon as
    `condition()` is true; True if it was killed that way, False if it ended or timed out first
    (a still-running group is killed anyway)."""
    import signal
    import time

    killed = False
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            if condition():
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return killed


def read_summary(stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("DHS_STEP_SUMMARY "):
            return json.loads(line[len("DHS_STEP_SUMMARY "):])
    raise AssertionError("no DHS_STEP_SUMMARY line in the step's output:\n" + stdout[-3000:])


def run_module(module: str, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", module, *args], cwd=REPO, env=step_env(), capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- shared pytest fixtures
# (imported by the test modules that use them; session scope = built once per run)
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyInputs:
    return tiny_inputs(tmp_path_factory.mktemp("steps_inputs"))


def inject_params(inputs: TinyInputs, output: Path, **extra) -> dict:
    return {"manifest_uri": str(inputs.manifest), "coadd_cache_prefix": str(inputs.coadd_prefix),
            "cosmos_bank_h5": str(inputs.bank), "output_prefix": str(output), "num_partitions": 2, **extra}


@pytest.fixture(scope="session")
def baseline(tiny, tmp_path_factory) -> dict:
    """One uninterrupted spark-submit of the inject step (through the step definition)."""
    import time

    from emr_steps.steps import inject_step, run_local
    from pipeline.dataset import rows_digest

    out = tmp_path_factory.mktemp("steps_baseline") / "D"
    t0 = time.perf_counter()
    # planned_core_hours: what the plan would pass (pipeline.sizing); the step records it beside its own
    proc = run_local(inject_step(inject_params(tiny, out, planned_core_hours=0.0125)), env=step_env(), stream=False)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-4000:]
    summary = read_summary(proc.stdout)
    return {"root": out, "data": out / "phase4c", "summary": summary, "wall_s": wall,
            "hash": rows_digest(str(out / "phase4c")), "log": proc.stdout}
