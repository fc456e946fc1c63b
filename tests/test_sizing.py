"""Cluster sizing from the work (issue 19): pipeline/sizing.py, the plan task, the form, EMR's
safety nets (auto-termination, step failure action) and the inject step's cost record.

Independent truth: the node counts are worked out here by hand from the cost model's figures
(read from the JSON file directly, not through the module), and docs/cost_model.md's table must
state the same counts."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest

from pipeline import sizing
from pipeline.errors import InputError

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "plugins") not in sys.path:
    sys.path.append(str(REPO / "plugins"))  # what Airflow does for the plugins folder
COSTS = json.loads((REPO / "pipeline" / "data" / "cost_model.json").read_text())


def _by_hand(stamps: int, hours: float, vcpus: int) -> int:
    marginal = sum(COSTS["steps"][s]["marginal_core_s_per_stamp"] for s in ("inject", "compact", "validate"))
    fixed_h = sum(COSTS["steps"][s]["fixed_wall_s"] for s in ("inject", "compact", "validate")) / 3600
    return max(2, math.ceil(stamps * marginal / 3600 / ((vcpus - 1) * (hours - fixed_h))))


def test_every_cost_names_where_it_was_measured():
    for step in ("inject", "compact", "validate"):
        entry = COSTS["steps"][step]
        assert entry["marginal_core_s_per_stamp"] > 0 and entry["fixed_wall_s"] >= 0
        assert "benchmarks" in entry["source"] or "dhs " in entry["source"], entry["source"]
    assert "AMD EPYC" in COSTS["machine"] or "Xeon" in COSTS["machine"]


def test_the_seeds_run_at_two_hours_gets_the_node_count_the_cost_model_predicts():
    plan = sizing.plan_cluster(11_750_000, target_wall_hours=2.0, core_instance_type="m5.2xlarge")
    assert plan.core_instance_count == _by_hand(11_750_000, 2.0, 8)
    assert not plan.overridden and plan.sized_instance_count == plan.core_instance_count
    assert plan.predicted_wall_hours <= 2.0
    # minimal: one node fewer would miss the target
    fewer = sizing.predicted_wall_hours(11_750_000, plan.core_instance_count - 1, 7, sizing.load_cost_model())
    assert fewer > 2.0
    assert plan.core_instance_count < 34  # the seed's cluster was sized for ~0.2 core-s per stamp


def test_docs_state_the_same_node_counts():
    text = (REPO / "docs" / "cost_model.md").read_text()
    for stamps in (1_000_000, 11_750_000, 50_000_000):
        n = _by_hand(stamps, 2.0, 8)
        row = [ln for ln in text.splitlines() if ln.startswith(f"| {stamps:,} ")]
        assert row, f"docs/cost_model.md has no sizing row for {stamps:,} stamps"
        assert re.search(rf"\*\*{n} x m5\.2xlarge\*\*", row[0]), (row[0], n)


def test_a_small_manifest_gets_the_minimum_cluster():
    plan = sizing.plan_cluster(6_000, target_wall_hours=2.0)
    assert plan.core_instance_count == sizing.MIN_CORE_NODES == 2
    assert plan.predicted_wall_hours < 0.1


def test_an_explicit_count_overrides_and_keeps_what_the_work_needed():
    plan = sizing.plan_cluster(11_750_000, target_wall_hours=2.0, core_instance_count=34)
    assert plan.core_instance_count == 34 and plan.overridden
    assert plan.sized_instance_count == _by_hand(11_750_000, 2.0, 8)
    # the cluster holds its cores for the whole (shorter) run: more core-hours than the work
    assert plan.planned_core_hours == pytest.approx(34 * 7 * plan.predicted_wall_hours)
    assert plan.planned_core_hours > plan.work_core_hours


@pytest.mark.parametrize("kwargs, field", [
    ({"core_instance_type": "x9.mega"}, "core_instance_type"),
    ({"target_wall_hours": 0.001}, "target_wall_hours"),       # shorter than the steps' fixed cost
    ({"target_wall_hours": float("nan")}, "target_wall_hours"),
    ({"stamps": 10**12}, "target_wall_hours"),                  # more than 200 nodes
    ({"stamps": -1}, "manifest"),
])
def test_bad_sizing_input_names_the_field(kwargs, field):
    stamps = kwargs.pop("stamps", 11_750_000)
    with pytest.raises(InputError) as exc:
        sizing.plan_cluster(stamps, **kwargs)
    assert exc.value.source == field


def test_a_broken_cost_model_is_named(tmp_path):
    bad = tmp_path / "cost_model.json"
    bad.write_text('{"steps": {"inject": {}}}')
    with pytest.raises(InputError) as exc:
        sizing.load_cost_model(bad)
    assert str(bad) in str(exc.value)


# ------------------------------------------------------------------ the plan task and the form


def _manifest(tmp_path, n_tasks) -> Path:
    m = tmp_path / "manifest"
    m.mkdir()
    (m / "manifest.json").write_text(json.dumps({"n_tasks": n_tasks}))
    return m


@pytest.fixture
def emr_form(tmp_path, monkeypatch):
    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", "s3://bkt/")
    monkeypatch.setenv("DHS_ALLOWED_CODE_ROOTS", "s3://bkt/code")
    monkeypatch.setenv("DHS_ALLOWED_LOG_ROOTS", "s3://bkt/code/logs")
    from dhs_airflow.plan import DEFAULTS

    return {**DEFAULTS, "backend": "emr", "manifest_uri": "s3://bkt/m", "coadd_cache_prefix": "s3://bkt/c",
            "cosmos_bank_h5": "s3://bkt/x.h5", "output_prefix": "s3://bkt/out", "code_prefix": "s3://bkt/code",
            "emr_log_uri": "s3://bkt/code/logs"}


def test_plan_sizes_the_core_group_and_passes_the_planned_core_hours(emr_form):
    from dhs_airflow.plan import plan_run

    plan = plan_run(emr_form, airflow_run_id="manual__size", stamps=11_750_000)
    core = [g for g in plan["job_flow_overrides"]["Instances"]["InstanceGroups"] if g["InstanceRole"] == "CORE"][0]
    assert core["InstanceCount"] == _by_hand(11_750_000, 2.0, 8) == plan["cluster"]["core_instance_count"]
    args = plan["emr_inject"][0]["HadoopJarStep"]["Args"]
    planned = float(args[args.index("--planned-core-hours") + 1])
    assert planned == pytest.approx(plan["cluster"]["planned_inject_core_hours"], rel=1e-6)
    # inject alone: its marginal work plus its fixed wall time on every core of the cluster
    cores = core["InstanceCount"] * 7
    inject = COSTS["steps"]["inject"]
    assert planned == pytest.approx((11_750_000 * inject["marginal_core_s_per_stamp"] + cores * inject["fixed_wall_s"]) / 3600)
    # a longer target needs fewer nodes
    longer = plan_run({**emr_form, "target_wall_hours": 8}, airflow_run_id="manual__size", stamps=11_750_000)
    assert longer["cluster"]["core_instance_count"] < core["InstanceCount"]


def test_plan_reads_the_task_count_from_the_manifest(tmp_path, monkeypatch):
    from dhs_airflow.plan import DEFAULTS, start_run

    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", str(tmp_path))
    m = _manifest(tmp_path, 6000)
    plan = start_run({**DEFAULTS, "manifest_uri": str(m), "output_prefix": str(tmp_path / "ds")},
                     airflow_run_id="manual__local")
    argv = plan["local_inject"]
    planned = float(argv[argv.index("--planned-core-hours") + 1])
    inject = COSTS["steps"]["inject"]
    assert planned == pytest.approx((6000 * inject["marginal_core_s_per_stamp"] + 2 * inject["fixed_wall_s"]) / 3600)
    assert plan["cluster"] is None  # local backend: no EMR cluster to size


def test_a_manifest_without_a_task_count_is_named(tmp_path, monkeypatch):
    from dhs_airflow.plan import DEFAULTS, start_run

    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", str(tmp_path))
    for content in (None, "not json", json.dumps({"n_tasks": "many"})):
        m = tmp_path / f"m{hash(content) & 0xffff}"
        m.mkdir()
        if content is not None:
            (m / "manifest.json").write_text(content)
        with pytest.raises(InputError) as exc:
            start_run({**DEFAULTS, "manifest_uri": str(m), "output_prefix": str(tmp_path / "ds")}, airflow_run_id="manual__x")
        assert exc.value.source == "manifest_uri"


def test_form_refuses_an_unknown_instance_type_and_a_silly_target(emr_form):
    from dhs_airflow.form import check_form

    for change, field in (({"core_instance_type": "q7.tiny"}, "core_instance_type"),
                          ({"target_wall_hours": 0}, "target_wall_hours"),
                          ({"target_wall_hours": 1000}, "target_wall_hours"),
                          ({"core_instance_count": -1}, "core_instance_count")):
        with pytest.raises(InputError) as exc:
            check_form({**emr_form, **change})
        assert exc.value.source == field


# ------------------------------------------------------------------ EMR's own safety nets


def test_cluster_terminates_itself_when_idle_and_on_a_failed_step(emr_form):
    """boto3 validates the request against EMR's API model (moto answers it): a misspelt policy
    would be a ParamValidationError here, not on the first real run."""
    import boto3
    from moto import mock_aws

    from dhs_airflow.plan import plan_run

    plan = plan_run(emr_form, airflow_run_id="manual__idle", stamps=6000)
    overrides = plan["job_flow_overrides"]
    assert overrides["AutoTerminationPolicy"] == {"IdleTimeout": 3600}
    for step in ("inject", "compact", "validate"):
        assert plan[f"emr_{step}"][0]["ActionOnFailure"] == "TERMINATE_CLUSTER"
    with mock_aws():
        emr = boto3.client("emr", region_name="us-east-2")
        cluster = emr.run_job_flow(**overrides)["JobFlowId"]
        emr.add_job_flow_steps(JobFlowId=cluster, Steps=plan["emr_inject"])
        assert emr.describe_cluster(ClusterId=cluster)["Cluster"]["Status"]["State"] in ("STARTING", "WAITING", "RUNNING")


def test_dhs_size_prints_the_plan_and_names_bad_flags(capsys, tmp_path):
    from dhs_cli.main import main

    assert main(["size", "--tasks", "11750000", "--target-wall-hours", "2"]) == 0
    out = capsys.readouterr().out
    assert f"-> {_by_hand(11_750_000, 2.0, 8)} x m5.2xlarge" in out
    assert main(["size", "--manifest-uri", str(_manifest(tmp_path, 6000))]) == 0
    assert "-> 2 x m5.2xlarge" in capsys.readouterr().out
    for argv, flag in ((["--tasks", "-5"], "--tasks"), (["--tasks", "5", "--target-wall-hours", "0"], "--target-wall-hours"),
                       (["--tasks", "5", "--core-instance-type", "q1.x"], "--core-instance-type"),
                       (["--tasks", "5", "--core-instance-count", "0"], "--core-instance-count")):
        assert main(["size", *argv]) == 2
        assert f"dhs size: error: {flag}:" in capsys.readouterr().err


def test_dhs_stage_code_refuses_outside_the_roots_and_a_non_wheel(capsys, tmp_path, monkeypatch):
    """`dhs stage-code` writes the code every EMR node runs as root: the output-root allow-list
    applies, and --wheel must be this checkout's wheel file."""
    from dhs_cli.main import main

    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", str(tmp_path / "ok"))
    assert main(["stage-code", str(tmp_path / "elsewhere")]) == 2
    assert "dhs stage-code: error: CODE_PREFIX:" in capsys.readouterr().err
    not_a_wheel = tmp_path / "x.txt"
    not_a_wheel.write_text("x")
    for wheel in (str(not_a_wheel), str(tmp_path / "missing.whl")):
        assert main(["stage-code", str(tmp_path / "ok" / "code"), "--wheel", wheel]) == 2
        assert "dhs stage-code: error: --wheel:" in capsys.readouterr().err
    wrong = tmp_path / "dark_halo_scope-9.9.9-py3-none-any.whl"
    wrong.write_bytes(b"PK")
    assert main(["stage-code", str(tmp_path / "ok" / "code"), "--wheel", str(wrong)]) == 2
    assert "is not this checkout's version" in capsys.readouterr().err
    assert not (tmp_path / "ok" / "code").exists()  # nothing uploaded
