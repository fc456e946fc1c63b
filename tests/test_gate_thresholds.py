"""Where the gate finds its suites: $DHS_EXPECTATIONS_DIR first, then the source tree, then the copy a
wheel installs under <prefix>/share/dark-halo-scope/expectations; a missing suite names where it looked."""

import shutil
import sys

import pytest

from pipeline.errors import InputError
from pipeline.gate import thresholds
from pipeline.gate.thresholds import ENV_VAR, SOURCE_DIR, load_thresholds, search_dirs, thresholds_path

ONE_CHECK = """variant: mine
checks:
  - {name: only_check, metric: cutout_ok_rate, min: 0.5}
"""


def test_env_dir_wins_over_the_source_tree(tmp_path, monkeypatch):
    (tmp_path / "demo.yaml").write_text(ONE_CHECK)  # same name as the shipped suite
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    th = load_thresholds("demo")
    assert th.source == str(tmp_path / "demo.yaml")
    assert [c.name for c in th.checks] == ["only_check"]


def test_env_dir_falls_back_to_the_source_tree_for_other_suites(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))  # holds no production.yaml
    assert thresholds_path("production") == SOURCE_DIR / "production.yaml"


def test_env_dir_that_does_not_exist_is_an_input_error(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "not_mounted"))
    with pytest.raises(InputError) as exc:
        load_thresholds("demo")
    assert ENV_VAR in str(exc.value) and "not_mounted" in str(exc.value)


def test_unknown_suite_names_every_place_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(InputError) as exc:
        load_thresholds("no_such_suite")
    msg = str(exc.value)
    assert "no_such_suite.yaml" in msg
    for d in search_dirs():
        assert str(d) in msg
    assert "demo" in msg and "production" in msg and "strict" in msg  # known variants listed


def test_installed_copy_is_found_without_a_source_tree(tmp_path, monkeypatch):
    """A non-editable install: no expectations/ beside the package, the suites under sys.prefix."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(thresholds, "SOURCE_DIR", tmp_path / "site-packages" / "expectations")
    share = tmp_path / "prefix" / "share" / "dark-halo-scope" / "expectations"
    share.mkdir(parents=True)
    shutil.copy(SOURCE_DIR / "production.yaml", share)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    th = load_thresholds("production")
    assert th.source == str(share / "production.yaml") and th.variant == "production"


def test_missing_yaml_path_is_named(tmp_path):
    with pytest.raises(InputError) as exc:
        load_thresholds(str(tmp_path / "mine.yaml"))
    assert "mine.yaml" in str(exc.value)


def test_shipped_suites_are_in_the_wheel_data_files():
    """pyproject.toml installs what the loader looks for under share/ (a wheel has no source tree)."""
    import tomllib

    doc = tomllib.loads((SOURCE_DIR.parent / "pyproject.toml").read_text())
    data_files = doc["tool"]["setuptools"]["data-files"]
    assert data_files[str(thresholds.INSTALLED_SUBDIR)] == ["expectations/*.yaml"]
