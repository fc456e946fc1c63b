"""Issue 15 case 4: every trigger-form value is checked once, before any Spark or EMR call
(plugins/dhs_airflow/form.py, called first by plan_run). Each probe here was accepted by
plan_run before the check existed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeline.errors import InputError

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "plugins") not in sys.path:
    sys.path.append(str(REPO / "plugins"))  # what Airflow does for the plugins folder

from dhs_airflow.plan import DEFAULTS, plan_run  # noqa: E402


@pytest.fixture()
def roots(tmp_path, monkeypatch):
    """Local outputs under tmp_path/out, S3 outputs under s3://dhs-ok/runs/; the seed's code and
    log roots (the defaults)."""
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", f"{out},s3://dhs-ok/runs/")
    for env in ("DHS_ALLOWED_CODE_ROOTS", "DHS_ALLOWED_LOG_ROOTS", "DHS_ALLOWED_SPARK_MASTERS", "DHS_RUN_CONFIG_DIR"):
        monkeypatch.delenv(env, raising=False)
    return out


def _params(out: Path, **change):
    return {**DEFAULTS, "output_prefix": str(out / "ds"), **change}


def _refused(params) -> InputError:
    with pytest.raises(InputError) as exc:
        plan_run(params, airflow_run_id="manual__probe")
    return exc.value


def test_good_form_still_plans(roots):
    plan = plan_run(_params(roots), airflow_run_id="manual__ok")
    assert plan["dataset_uri"] == str(roots / "ds")
    assert plan["local_compact"][plan["local_compact"].index("--master") + 1] == "local[2]"


def test_undeclared_conf_key_is_refused(roots):
    """{"run_id": "../../../escaped"} was merged into the params and became the compaction id:
    `--run-id ../../../escaped` wrote the compacted copy outside the allowed output roots."""
    err = _refused(_params(roots, run_id="../../../escaped"))
    assert err.source == "run_id" and "not a field" in err.problem


@pytest.mark.parametrize("field, value", [
    ("code_prefix", "s3://attacker-bucket/code"),
    ("code_prefix", "s3://darkhaloscope/code/../../evil"),
    ("emr_log_uri", "s3://attacker-bucket/logs/"),
])
def test_code_and_log_prefixes_must_be_under_their_roots(roots, field, value):
    err = _refused(_params(roots, **{field: value}))
    assert err.source == field, err


def test_code_roots_come_from_the_environment(roots, monkeypatch):
    monkeypatch.setenv("DHS_ALLOWED_CODE_ROOTS", "s3://team-code/dhs/")
    monkeypatch.setenv("DHS_ALLOWED_LOG_ROOTS", "s3://team-code/logs/")
    plan = plan_run(_params(roots, code_prefix="s3://team-code/dhs/0.2.0", emr_log_uri="s3://team-code/logs/x"))
    assert plan["job_flow_overrides"]["LogUri"] == "s3://team-code/logs/x/"
    assert _refused(_params(roots, code_prefix=DEFAULTS["code_prefix"])).source == "code_prefix"


@pytest.mark.parametrize("master", ["spark://any-host:7077", "yarn", "local[2] --conf x=y", "local[0]", "k8s://h"])
def test_local_master_is_local_n_only(roots, master):
    assert _refused(_params(roots, local_master=master)).source == "local_master"


def test_allow_listed_master(roots, monkeypatch):
    monkeypatch.setenv("DHS_ALLOWED_SPARK_MASTERS", "spark://spark-master.internal:7077")
    plan = plan_run(_params(roots, local_master="spark://spark-master.internal:7077"))
    assert "spark://spark-master.internal:7077" in plan["local_inject"]
    assert _refused(_params(roots, local_master="spark://other:7077")).source == "local_master"


@pytest.mark.parametrize("field, value", [
    ("variant", "--conf"),
    ("experiment_id", "-Dx=1"),
    ("manifest_uri", "--py-files=s3://evil/x.zip"),
    ("cosmos_bank_h5", "-x"),
    ("master_instance_type", "-m5.xlarge"),
])
def test_no_value_may_start_with_a_dash(roots, field, value):
    err = _refused(_params(roots, **{field: value}))
    assert err.source == field, err


@pytest.mark.parametrize("field, value", [
    ("variant", "demo/../../x"), ("variant", "a b"), ("experiment_id", "x;rm -rf"), ("variant", "é"),
    ("emr_release_label", "emr-6.15.0"), ("core_instance_type", "m5.2xlarge --x"),
    ("gate_suite", "/etc/passwd.yaml"), ("gate_suite", "../expectations/demo"),
    ("backend", "shell"), ("core_instance_count", 10_000), ("target_file_mb", "1e9"),
    ("moffat_beta", float("nan")), ("control_frac_train", True),
])
def test_ids_enums_and_ranges(roots, field, value):
    assert _refused(_params(roots, **{field: value})).source == field


def test_run_config_is_a_builtin_name_or_a_file_under_the_configured_dir(roots, tmp_path, monkeypatch):
    """Before: any file on the worker was read as YAML, and its error quoted the file."""
    secret = tmp_path / "secret.yaml"
    secret.write_text("AKIAEXAMPLESECRET: wJalrXUtnFEMI\n")
    err = _refused(_params(roots, run_config=str(secret)))
    assert err.source == "run_config" and "wJalrXUtnFEMI" not in str(err) and "AKIAEXAMPLESECRET" not in str(err)
    assert _refused(_params(roots, run_config="/etc/passwd")).source == "run_config"

    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "mine.yaml").write_text("variant: mine\nseed: 7\n")
    (configs / "broken.yaml").write_text("AKIAEXAMPLESECRET: wJalrXUtnFEMI\n")
    monkeypatch.setenv("DHS_RUN_CONFIG_DIR", str(configs))
    assert plan_run(_params(roots, run_config="mine.yaml"))  # allowed
    err = _refused(_params(roots, run_config="broken.yaml"))
    assert err.source == "run_config" and "wJalrXUtnFEMI" not in str(err) and "AKIAEXAMPLESECRET" not in str(err)
    assert _refused(_params(roots, run_config="../secret.yaml")).source == "run_config"
    assert _refused(_params(roots, run_config=str(secret))).source == "run_config"


@pytest.mark.parametrize("prefix", [
    "s3://dhs-ok/runs/../other", "s3://dhs-ok/runs/./x", "s3://dhs-ok/runs//x", "s3://dhs-ok/runs/%2e%2e/x",
    "s3://dhs-ok/runs/%2E%2E/x", "s3a://dhs-ok/runs/a/..", "s3://dhs-ok/runs/a\\..\\..\\x", "s3://dhs-ok/runs-old/x",
])
def test_s3_output_prefix_is_normalised(roots, prefix):
    err = _refused(_params(roots, output_prefix=prefix))
    assert err.source == "output_prefix", err


def test_s3_output_prefix_spellings_accepted(roots):
    plan = plan_run(_params(roots, output_prefix="s3a://dhs-ok/runs/v5/"), airflow_run_id="manual__x")
    assert plan["dataset_uri"] == "s3://dhs-ok/runs/v5"
