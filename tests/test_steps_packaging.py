"""EMR packaging: the wheel (uv build) carries pipeline + emr_steps; bootstrap.sh installs it."""

import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from emr_steps.steps import REPO, build_wheel

BOOTSTRAP = REPO / "emr_steps" / "bootstrap.sh"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_contains_the_package_and_entry_scripts(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for mod in ("pipeline/__init__.py", "pipeline/contract.py", "pipeline/dataset/__init__.py",
                "pipeline/dataset/checksums.py", "pipeline/storage.py", "pipeline/run_params.py",
                "pipeline/bands.py", "pipeline/injection/psf.py", "pipeline/gate/profile.py",
                "pipeline/configs/demo.yaml", "dhs_cli/main.py", "emr_steps/__init__.py", "emr_steps/inject.py", "emr_steps/compact.py",
                "emr_steps/steps.py", "emr_steps/args.py", "emr_steps/bootstrap.sh"):
        assert mod in names, f"{mod} missing from {wheel.name}"
    assert not any(n.startswith("tests/") for n in names)


def test_bootstrap_script_is_valid_and_installs_lock_and_wheel():
    subprocess.run(["bash", "-n", str(BOOTSTRAP)], check=True)
    text = BOOTSTRAP.read_text()
    assert "set -euo pipefail" in text
    assert re.search(r"requirements\.lock", text) and re.search(r"-m pip install", text)
    assert "--constraint" in text and '"${WORK}/${WHEEL}"' in text
    assert "chmod 1777" not in text and "chmod 777" not in text  # no shared, world-writable numba cache (issue 15)
    assert "fail " in text  # failures name what failed


def test_bootstrap_fails_loudly_without_arguments():
    proc = subprocess.run(["bash", str(BOOTSTRAP)], capture_output=True, text=True)
    assert proc.returncode != 0 and "usage: bootstrap.sh" in proc.stderr
