"""emr_steps/bootstrap.sh, run for real (issue 19): what an EMR node does before YARN starts.

The script runs unchanged under bash with stand-ins on PATH for the three things an EMR node has
and this machine does not:

- `aws`: `aws s3 cp s3://<bucket>/<key> <dest>` copies from a local folder that plays the bucket
  (the wheel and lock served from a local "code prefix", as `emr_steps.steps.stage_code` lays it out);
- `sudo`: runs the command as is (the test runs as whoever runs the tests);
- `dnf`: logs its arguments and fails (a node that cannot install python3.11).

The node's Python is a scratch venv of this machine's Python 3.11. pip runs with PIP_NO_INDEX (no
network, so nothing can come from anywhere but the code prefix): the third-party dependencies are
made visible to the scratch venv through a .pth line pointing at this checkout's .venv (the same
pinned versions the lock names), so pip resolves them against the lock's constraints and installs
the wheel itself. The import check is the script's own, run outside the checkout (so `pipeline`
can only come from the installed wheel). Every failure case checks the script's own message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from emr_steps.steps import REPO, build_wheel, code_files

BOOTSTRAP = REPO / "emr_steps" / "bootstrap.sh"
BUCKET = "dhs-test-code"
PREFIX = f"s3://{BUCKET}/code/dhs/0.1.0"

AWS = textwrap.dedent("""\
    #!/usr/bin/env bash
    # stand-in for `aws s3 cp [--only-show-errors] s3://bucket/key dest` over $FAKE_S3_ROOT/bucket/key
    set -euo pipefail
    echo "aws $*" >> "$STANDIN_LOG"
    [ "$1 $2" = "s3 cp" ] || { echo "aws stand-in: only 's3 cp' is supported" >&2; exit 2; }
    shift 2
    args=()
    for a in "$@"; do [ "$a" = "--only-show-errors" ] || args+=("$a"); done
    src="${args[0]#s3://}"
    if [ ! -f "$FAKE_S3_ROOT/$src" ]; then
      echo "fatal error: An error occurred (404) when calling the HeadObject operation: Key \\"${src#*/}\\" does not exist" >&2
      exit 1
    fi
    cp "$FAKE_S3_ROOT/$src" "${args[1]}"
    """)
SUDO = '#!/usr/bin/env bash\necho "sudo $*" >> "$STANDIN_LOG"\nexec "$@"\n'
DNF = '#!/usr/bin/env bash\necho "dnf $*" >> "$STANDIN_LOG"\necho "Error: Unable to find a match: $*" >&2\nexit 1\n'


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("bootstrap_wheel"))


def _venv(path: Path, *, with_pip: bool = True) -> Path:
    """A scratch Python 3.11 (the venv module of the interpreter running the tests)."""
    cmd = [sys.executable, "-m", "venv", str(path)] + ([] if with_pip else ["--without-pip"])
    # venv from inside our .venv still builds on the base interpreter
    subprocess.run(cmd, check=True, capture_output=True)
    python = path / "bin" / "python"
    if with_pip:
        purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        # the pinned third-party packages, visible but not importable as our code (the editable
        # install's finder .pth in .venv is not processed from a .pth-added path)
        Path(purelib, "dhs_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.fixture(scope="module")
def node_python(tmp_path_factory) -> Path:
    """One scratch Python for the failure cases: each fails before pip changes anything in it
    (a refused install changes nothing), so they can share it."""
    return _venv(tmp_path_factory.mktemp("node_python") / "py")


def _node(tmp_path: Path, wheel: Path, *, python: Path | str, omit: tuple[str, ...] = (),
          lock_text: str | None = None, wheel_bytes: bytes | None = None) -> tuple[dict, Path]:
    """A fake bucket holding the code prefix, the stand-ins on PATH, the environment to run with."""
    root = tmp_path / "s3"
    code = root / BUCKET / "code" / "dhs" / "0.1.0"
    for rel, src in code_files(wheel).items():
        if rel in omit:
            continue
        dest = code / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    if lock_text is not None:
        (code / "requirements.lock").write_text(lock_text)
    if wheel_bytes is not None:
        (code / wheel.name).write_bytes(wheel_bytes)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("aws", AWS), ("sudo", SUDO), ("dnf", DNF)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "standins.log"
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
        "FAKE_S3_ROOT": str(root), "STANDIN_LOG": str(log), "DHS_PYTHON": str(python),
        "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1",
    }
    return env, log


def _bootstrap(env: dict, wheel: Path, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(["bash", str(BOOTSTRAP), PREFIX + "/", wheel.name], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    proc.args_env_tmp = env["TMPDIR"]  # where the script's mktemp folder lives
    return proc


def _failed(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    tmp = Path(proc.args_env_tmp) if hasattr(proc, "args_env_tmp") else None
    assert tmp is None or not list(tmp.glob("dhs_bootstrap.*")), "the download folder is removed on failure too"
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("dhs bootstrap FAILED: ")]
    assert lines, f"no message of the script's own:\n{proc.stderr[-3000:]}"
    return lines[-1]


def test_bootstrap_installs_the_wheel_under_the_lock_and_imports(tmp_path, wheel):
    python = _venv(tmp_path / "node_python")
    env, log = _node(tmp_path, wheel, python=python)
    work = tmp_path / "cwd"
    work.mkdir()
    proc = _bootstrap(env, wheel, work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "dhs bootstrap: done"
    calls = log.read_text().splitlines()
    # both files came from the code prefix, pip ran through sudo, dnf was not needed
    assert f"aws s3 cp --only-show-errors {PREFIX}/requirements.lock" in "\n".join(calls)
    assert any(c.startswith(f"aws s3 cp --only-show-errors {PREFIX}/{wheel.name}") for c in calls)
    assert any(c.startswith(f"sudo {python} -m pip install") and "--constraint" in c for c in calls)
    assert not any(c.startswith("dnf") for c in calls)
    # the package is the wheel's, installed into the node's Python (not this checkout)
    probe = subprocess.run([str(python), "-c", "import pipeline, emr_steps.inject, importlib.metadata as m; "
                                               "print(pipeline.__file__); print(m.version('dark-halo-scope'))"],
                           cwd=work, capture_output=True, text=True, env={"PATH": env["PATH"]})
    assert probe.returncode == 0, probe.stderr
    where, version = probe.stdout.split()
    assert str(tmp_path / "node_python") in where and str(REPO) not in where
    assert wheel.name.startswith(f"dark_halo_scope-{version}-")
    assert not list(tmp_path.glob("dhs_bootstrap.*")), "the script removes its download folder"


def test_missing_lock_names_the_lock(tmp_path, wheel, node_python):
    env, _ = _node(tmp_path, wheel, python=node_python, omit=("requirements.lock",))
    assert _failed(_bootstrap(env, wheel, tmp_path)) == f"dhs bootstrap FAILED: cannot download {PREFIX}/requirements.lock"


def test_missing_wheel_names_the_wheel(tmp_path, wheel, node_python):
    env, _ = _node(tmp_path, wheel, python=node_python, omit=(wheel.name,))
    assert _failed(_bootstrap(env, wheel, tmp_path)) == f"dhs bootstrap FAILED: cannot download {PREFIX}/{wheel.name}"


def test_broken_wheel_fails_the_install_naming_it(tmp_path, wheel, node_python):
    env, _ = _node(tmp_path, wheel, python=node_python, wheel_bytes=b"PK\x03\x04 not a zip at all")
    message = _failed(_bootstrap(env, wheel, tmp_path))
    assert message == f"dhs bootstrap FAILED: pip install of {wheel.name} (constrained by requirements.lock) failed"


def test_a_lock_the_node_cannot_satisfy_fails_the_install(tmp_path, wheel, node_python):
    """The lock is a real constraint: pin numpy to a version that is not there and pip must refuse."""
    lock = (REPO / "requirements.lock").read_text().splitlines()
    pinned = [ln for ln in lock if ln.startswith("numpy==")]
    assert pinned, "requirements.lock pins numpy"
    changed = "\n".join("numpy==1.26.0" if ln.startswith("numpy==") and ln != "numpy==1.26.0" else
                        ("numpy==1.26.1" if ln == "numpy==1.26.0" else ln) for ln in lock) + "\n"
    env, _ = _node(tmp_path, wheel, python=node_python, lock_text=changed)
    assert "pip install of" in _failed(_bootstrap(env, wheel, tmp_path))


def test_python_without_pip_is_named(tmp_path, wheel):
    python = _venv(tmp_path / "nopip", with_pip=False)
    env, _ = _node(tmp_path, wheel, python=python)
    assert _failed(_bootstrap(env, wheel, tmp_path)) == f"dhs bootstrap FAILED: {python} has no pip"


def test_python_missing_and_dnf_failing_is_named(tmp_path, wheel):
    env, log = _node(tmp_path, wheel, python="python3.99")
    assert _failed(_bootstrap(env, wheel, tmp_path)) == "dhs bootstrap FAILED: could not install python3.99 with dnf"
    assert "sudo dnf install -y python3.11 python3.11-pip" in log.read_text()


def test_the_wheel_under_test_is_a_real_wheel(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "pipeline/__init__.py" in names and any(n.endswith(".dist-info/METADATA") for n in names)
    assert os.access(BOOTSTRAP, os.R_OK)
