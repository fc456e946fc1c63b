"""The gate package and the dataset/storage modules stay a readable layered graph (issue 18).

- their imports (module level AND inside functions) form no cycle;
- none imports a private name (`_x`) of another module, nor reads `module._x`;
- nothing reaches past storage.py's public API into its boto3 client (`_s3_client`);
- the modules Airflow's plugins and DAGs import (promote, verify, thresholds, ...) import neither
  Spark nor numpy/pyarrow/pandas, GX or pandera: a DAG parse stays cheap; the Spark-job modules of
  the gate import `pyspark.sql.functions` once, at module level.
No Spark session is started: the graph is read with `ast`, one fresh interpreter checks sys.modules.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The modules whose import graph is checked: the gate, the dataset package, and storage's neighbours.
CHECKED = sorted(
    [p for p in (ROOT / "pipeline" / "gate").glob("*.py")]
    + [p for p in (ROOT / "pipeline" / "dataset").glob("*.py")]
    + [ROOT / "pipeline" / f for f in ("storage.py", "conditional_io.py", "lineage.py", "run_lock.py")]
)
#: The gate modules that only run Spark jobs: pyspark is a hard dependency, imported at module level.
SPARK_MODULES = ("spark_physics", "histograms", "identity", "profile", "row_contract")
#: What Airflow's plugins/DAGs and the light CLI commands import: no heavy library at import time.
LIGHT_MODULES = ("pipeline.gate", "pipeline.gate.promote", "pipeline.gate.verify", "pipeline.gate.thresholds",
                 "pipeline.gate.validate", "pipeline.gate.inputs", "pipeline.lineage", "pipeline.storage",
                 "pipeline.conditional_io")
HEAVY = ("pyspark", "pyarrow", "numpy", "pandas", "great_expectations", "pandera")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _imports(path: Path):
    """(imported module, imported name or None, line) for every import in the file, at any depth;
    `from pkg import mod` counts as an import of pkg.mod."""
    me = _module_name(path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                yield (sub, None, node.lineno) if _is_module(sub) else (base, a.name, node.lineno)


def _graph() -> dict[str, set[str]]:
    names = {_module_name(p) for p in CHECKED}
    return {_module_name(p): {m for m, _, _ in _imports(p) if m in names and m != _module_name(p)} for p in CHECKED}


def test_import_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    # the profile fuses the row contract's counters: that edge runs one way only
    assert "pipeline.gate.row_contract" in graph["pipeline.gate.profile"]
    assert "pipeline.gate.profile" not in graph["pipeline.gate.row_contract"]


def test_no_private_name_crosses_a_module():
    bad = []
    for path in CHECKED:
        tree = ast.parse(path.read_text(), str(path))
        aliases = {}
        for m, name, line in _imports(path):
            if m.startswith("pipeline") and name and name.startswith("_") and not name.startswith("__"):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {m}.{name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline"):
                for a in node.names:
                    if _is_module(f"{node.module}.{a.name}"):
                        aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("pipeline") and a.asname:
                        aliases[a.asname] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} reads {aliases[node.value.id]}.{node.attr}")
    assert not bad, "\n".join(bad)


def test_only_storage_talks_to_its_s3_client():
    users = []
    for folder in ("pipeline", "emr_steps", "plugins", "dags", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            if path != ROOT / "pipeline" / "storage.py" and "_s3_client" in path.read_text():
                users.append(str(path.relative_to(ROOT)))
    assert not users, f"call pipeline.storage's public functions instead of _s3_client: {users}"


def test_spark_job_modules_import_pyspark_functions_once_at_module_level():
    for name in SPARK_MODULES:
        tree = ast.parse((ROOT / "pipeline" / "gate" / f"{name}.py").read_text())
        top = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module == "pyspark.sql"
               and any(a.name == "functions" for a in n.names)]
        nested = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "pyspark.sql"
                  and any(a.name == "functions" for a in n.names) and n not in top]
        assert len(top) == 1 and not nested, f"pipeline/gate/{name}.py: one module-level `functions as F` import"


def test_light_modules_import_no_heavy_library():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in LIGHT_MODULES)
            + f"print(' '.join(k for k in {HEAVY!r} if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported at import time: {out.stdout.strip()}"
