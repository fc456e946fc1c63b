"""The folder rules of docs/architecture.md, read from the code (every import, including those
inside functions): data flows down the floors, never back up.

    dhs_cli/  -> emr_steps, pipeline            (the user-facing command line)
    dags/     -> airflow, dhs_airflow (plugins), pipeline.errors
    plugins/  -> airflow, emr_steps, pipeline
    emr_steps -> pipeline, pyspark
    pipeline/ -> neither Airflow, nor our adapters (emr_steps, plugins, dhs_cli)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: folder -> top-level packages it must never import
FORBIDDEN = {
    "pipeline": {"airflow", "emr_steps", "dhs_airflow", "dhs_cli", "tests", "benchmarks"},
    "emr_steps": {"airflow", "dhs_airflow", "dhs_cli", "tests", "benchmarks"},
    "plugins": {"dhs_cli", "tests", "benchmarks"},
    "dags": {"emr_steps", "dhs_cli", "tests", "benchmarks"},
    "dhs_cli": {"airflow", "dhs_airflow", "tests", "benchmarks"},
}
#: what a DAG may take from the core: wiring only (its errors for a clean task failure)
DAG_CORE_ALLOWED = {"pipeline.errors"}


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def violations(folder: str) -> list[str]:
    bad = []
    for path in sorted((REPO / folder).rglob("*.py")):
        for line, module in imports_of(path):
            top = module.split(".")[0]
            where = f"{path.relative_to(REPO)}:{line} imports {module}"
            if top in FORBIDDEN[folder]:
                bad.append(where)
            elif folder == "dags" and top == "pipeline" and module not in DAG_CORE_ALLOWED:
                bad.append(where + " (a DAG only wires tasks: put the logic in pipeline/ or plugins/)")
    return bad


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_never_run_back_up_a_floor(folder):
    assert violations(folder) == []


def test_the_rule_trips_on_a_planted_upward_import(tmp_path, monkeypatch):
    """The check itself: a core module importing an adapter is reported with file and line."""
    fake = tmp_path / "pipeline"
    fake.mkdir()
    (fake / "ok.py").write_text("import numpy\n")
    (fake / "leak.py").write_text("def f():\n    from emr_steps.steps import inject_step\n")
    import sys

    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert violations("pipeline") == ["pipeline/leak.py:2 imports emr_steps.steps"]
