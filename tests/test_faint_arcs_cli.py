"""`python -m dhs_cli.faint_arcs` (the faint-arc audit, an adapter in dhs_cli/): bad input is one
line on stderr naming the input, exit 2, as `dhs` prints an InputError; never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dhs_cli import faint_arcs

REPO = Path(__file__).resolve().parents[1]


def test_help_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "dhs_cli.faint_arcs", "--help"], check=False, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m dhs_cli.faint_arcs [-h]")
    assert "--supersampling" in done.stdout and "--n N" in done.stdout


def test_a_folder_without_a_dataset_is_named_without_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "dhs_cli.faint_arcs", str(tmp_path)], check=False, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"python -m dhs_cli.faint_arcs: error: {tmp_path}: no Parquet file under dataset/compacted\n"


def _one_parquet(out: Path) -> None:
    d = out / "dataset" / "compacted" / "c-0" / "region_split=test"
    d.mkdir(parents=True)
    pq.write_table(pa.table({"x": [1]}), d / "part-0.parquet")


def test_a_dataset_without_a_bank_names_the_bank_file(tmp_path, capsys):
    _one_parquet(tmp_path)
    assert faint_arcs.main([str(tmp_path)]) == 2
    bank = tmp_path / "bank" / "cosmos_bank.h5"
    assert capsys.readouterr().err == f"python -m dhs_cli.faint_arcs: error: {bank}: no bank file\n"


def test_bad_supersampling_is_named(tmp_path, capsys):
    _one_parquet(tmp_path)
    (tmp_path / "bank").mkdir()
    (tmp_path / "bank" / "cosmos_bank.h5").write_bytes(b"")
    assert faint_arcs.main([str(tmp_path), "--supersampling", "8,x"]) == 2
    assert capsys.readouterr().err == (
        "python -m dhs_cli.faint_arcs: error: --supersampling: need comma-separated integers, got '8,x'\n")


def test_n_below_one_is_refused_before_reading_anything(tmp_path, capsys):
    # `--n 0` used to end in "no ok injection row", which blamed the dataset for the flag
    with pytest.raises(SystemExit) as exit_:
        faint_arcs.main([str(tmp_path), "--n", "0"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.endswith("python -m dhs_cli.faint_arcs: error: --n must be at least 1, got 0\n")
