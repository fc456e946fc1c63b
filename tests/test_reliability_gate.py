"""Reliability (issue #8) at the gate: an interrupted or partial validation promotes nothing, and
what the gate writes for people (validation.json, Data Docs, report) carries no credentials.

Promotion integrity itself (checksum binding, refusal of changed data, idempotence, refusal of a
failed gate) is in test_gate_integrity.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dhs_cli.main import main
from tests.gate_factories import clean_validation, gate_cases  # noqa: F401 - fixtures
from tests.steps_fixtures import kill_group_when
from tests.test_no_secrets import PATTERNS

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[1]
FAKE_KEY_ID = "AKIA" + "DHSRELIABILITY02"  # assembled at run time: the repository scan must not see it
FAKE_SECRET = "dhsFakeGateSecret/" + "y" * 24


def _promote(dataset, validation, capsys):
    code = main(["promote", str(dataset), "--validation", str(validation)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.fixture
def dataset_copy(gate_cases, tmp_path):
    src, manifest = gate_cases("clean")
    d = tmp_path / "dataset"
    shutil.copytree(src, d)
    return d, manifest


@pytest.mark.slow
def test_validate_killed_mid_run_leaves_nothing_to_promote(dataset_copy, tmp_path, capsys):
    """`dhs validate` SIGKILLed (with its Spark JVM) once it has started writing its output folder:
    no validation.json, and `dhs promote` refuses, naming the missing file."""
    d, manifest = dataset_copy
    out = d / "validation" / "killed"
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    proc = subprocess.Popen([sys.executable, "-m", "dhs_cli.main", "validate", str(d), "--manifest-uri", str(manifest),
                             "--gate-suite", "demo", "--out", str(out)], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # out/ appears when the profile is done and the suites / Data Docs are being written
    killed = kill_group_when(proc, out.exists, timeout_s=400)
    _, err = proc.communicate()
    assert killed, f"validate ended (exit {proc.returncode}) before it could be killed:\n{err[-3000:]}"
    assert not (out / "validation.json").exists()

    code, err = _promote(d, out, capsys)
    assert code == 2
    assert f"dhs promote: error: {out}/validation.json: no validation.json: the validation did not finish" in err, err
    assert not (d / "promotion.json").exists()


@pytest.mark.parametrize("damage", ["truncated", "no_verdict"])
def test_partial_validation_json_is_refused(dataset_copy, clean_validation, tmp_path, capsys, damage):
    """A validation.json cut short (a crashed copy, a half upload) or without its verdict never
    promotes, even though the complete file would have passed."""
    d, _ = dataset_copy
    result, val_dir = clean_validation
    assert result.passed
    text = (val_dir / "validation.json").read_text()
    val = tmp_path / "val"
    val.mkdir()
    if damage == "truncated":
        (val / "validation.json").write_text(text[: len(text) // 2])
        expect = f"dhs promote: error: {val}/validation.json: not valid JSON"
    else:
        doc = json.loads(text)
        del doc["passed"]
        (val / "validation.json").write_text(json.dumps(doc))
        expect = f"dhs promote: error: {val}/validation.json: not a dhs validation.json (no 'passed' / 'dataset')"
    code, err = _promote(d, val, capsys)
    assert code == 2 and expect in err, err
    assert not (d / "promotion.json").exists()
    # the complete file promotes the same data: the refusal above was the file's doing. (The shared
    # validation judged the shared case's folder; this copy holds the same files, so the complete
    # document, pointed at the copy's folder, names exactly these bytes.)
    doc = json.loads(text)
    doc["dataset"]["data_uri"] = str(d / "phase4c")
    (val / "validation.json").write_text(json.dumps(doc))
    assert _promote(d, val, capsys)[0] == 0 and (d / "promotion.json").exists()


def test_gate_outputs_hold_no_credentials(spark, gate_cases, tmp_path, monkeypatch):
    """Validation with AWS keys in the environment: validation.json, profile.json, the GX Data Docs
    and the HTML report contain neither the keys nor anything shaped like one."""
    from pipeline.gate.validate import validate_dataset

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    d, m = gate_cases("faint_arcs")
    out = tmp_path / "validation"
    result = validate_dataset(str(d), manifest_uri=str(m), variant="demo", out_dir=str(out), spark=spark)
    assert not result.passed  # a failing gate writes its reasons: those must be clean too
    files = [p for p in out.rglob("*") if p.is_file() and p.suffix in {".json", ".html", ".js", ".css", ".txt", ".yml", ".yaml", ""}]
    names = {p.relative_to(out).parts[0] for p in files}
    assert {"validation.json", "profile.json", "data_docs", "report"} <= names, names
    assert PATTERNS["AWS access key id"].search(FAKE_KEY_ID)
    for path in files:
        text = path.read_text(errors="ignore")
        assert FAKE_KEY_ID not in text and FAKE_SECRET not in text, path
        for what, pattern in PATTERNS.items():
            assert not pattern.search(text), f"{path}: {what}"
