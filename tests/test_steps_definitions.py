"""One step definition, two renderings (EMR step dict, local spark-submit argv); the seed's flags;
s3:// / s3a:// handling (moto for every S3 touch)."""

import json

import pytest

from emr_steps import args as stepargs
from emr_steps.steps import (
    compact_step,
    default_job_flow_overrides,
    inject_step,
    stage_code,
    to_emr_step,
    to_local_argv,
    validate_step,
)
from pipeline import dataset as ds
from pipeline.errors import InputError

PARAMS = {
    "manifest_uri": "s3a://darkhaloscope/phase4_pipeline/phase4a/manifests/m1",
    "coadd_cache_prefix": "s3://darkhaloscope/dr10/coadd_cache",
    "cosmos_bank_h5": "s3://darkhaloscope/data/cosmos_banks/cosmos_bank_20k_gen5.h5",
    "output_prefix": "s3://darkhaloscope/phase4_pipeline/v5_cosmos_production",
    "variant": "v5_cosmos_production",
    "experiment_id": "train_stamp64_bandsgrz_cosmos",
    "psf_model": "moffat", "moffat_beta": 3.5, "source_mode": "cosmos",
    "control_frac_train": 0.5, "unpaired_controls": True, "skip_if_exists": 1, "force": 1,
    "bands": ["g", "r", "z"], "target_file_mb": 256, "gate_suite": "production",
}


def _opt(argv, flag):
    return argv[argv.index(flag) + 1]


def test_inject_definition_renders_emr_and_local_with_the_same_args():
    defn = inject_step(PARAMS)
    emr = to_emr_step(defn, "s3://darkhaloscope/code/dhs/0.1.0/")
    json.dumps(emr)  # plain JSON for boto3 / XCom
    hjs = emr["HadoopJarStep"]
    assert hjs["Jar"] == "command-runner.jar"
    a = hjs["Args"]
    assert a[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    assert _opt(a, "--executor-memory") == "6g" and _opt(a, "--driver-memory") == "4g" and _opt(a, "--executor-cores") == "2"
    confs = {a[i + 1] for i, x in enumerate(a) if x == "--conf"}
    assert {"spark.default.parallelism=600", "spark.sql.shuffle.partitions=600",
            "spark.executorEnv.NUMBA_CACHE_DIR={{PWD}}/numba_cache", "spark.yarn.appMasterEnv.NUMBA_CACHE_DIR={{PWD}}/numba_cache"} <= confs
    entry = a.index("s3://darkhaloscope/code/dhs/0.1.0/emr_steps/inject.py")
    emr_args = a[entry + 1:]
    assert _opt(emr_args, "--bands") == "g,r,z"
    assert _opt(emr_args, "--manifest-uri").startswith("s3://")  # s3a:// respelled for EMRFS
    assert all(not x.startswith("s3a://") for x in a)
    assert _opt(emr_args, "--skip-if-exists") == "1" and _opt(emr_args, "--force") == "1"

    local = to_local_argv(defn, python="/venv/bin/python", master="local[2]")
    assert local[0].endswith("spark-submit") and _opt(local, "--master") == "local[2]"
    assert "--deploy-mode" not in local and "spark.pyspark.python=/venv/bin/python" in local
    assert "spark.default.parallelism=600" not in local
    lentry = next(i for i, x in enumerate(local) if x.endswith("emr_steps/inject.py"))
    assert local[lentry + 1:] == list(defn.args)
    # same flags both ways; only the S3 spelling differs
    assert [x.replace("s3a://", "s3://") for x in defn.args] == emr_args


def test_compact_and_validate_definitions():
    c = to_emr_step(compact_step(PARAMS), "s3://b/code")["HadoopJarStep"]["Args"]
    assert "s3://b/code/emr_steps/compact.py" in c and _opt(c, "--target-file-mb") == "256" and _opt(c, "--stage") == "4p5"
    v = validate_step({**PARAMS, "validation_run": "r1"})
    assert v.entry == "emr_steps/validate.py" and _opt(list(v.args), "--out").endswith("/validation/r1")


def test_bands_are_comma_separated_and_grz_is_refused():
    assert _opt(list(inject_step({**PARAMS, "bands": "g, r,z"}).args), "--bands") == "g,r,z"
    with pytest.raises(InputError, match="comma-separated"):
        inject_step({**PARAMS, "bands": "grz"})
    with pytest.raises(SystemExit):
        stepargs.parse_args(["--output-prefix", "x", "--bands", "grz"], stage="4c")


def test_seed_flags_parse_including_s3_aliases():
    seed = ("--stage 4c --output-s3 s3://darkhaloscope/phase4_pipeline/phase4c/v5_cosmos_production/ "
            "--variant v5_cosmos_production --experiment-id train_stamp64_bandsgrz_cosmos "
            "--parent-s3 s3a://darkhaloscope/phase4_pipeline/phase4a/v4_sota_moffat/manifests/m "
            "--coadd-s3-cache-prefix s3://darkhaloscope/dr10/coadd_cache --psf-model moffat --moffat-beta 3.5 "
            "--source-mode cosmos --cosmos-bank-h5 s3://darkhaloscope/data/cosmos_banks/cosmos_bank_20k_gen5.h5 "
            "--control-frac-train 0.50 --unpaired-controls 1 --skip-if-exists 1 --force 1 --bands g,r,z").split()
    a = stepargs.parse_args(seed)
    assert a.stage == "4c" and a.bands == ("g", "r", "z") and a.skip_if_exists and a.force and a.unpaired_controls
    cfg = stepargs.run_config_from_args(a, base={"variant": "demo"})
    assert cfg.variant == "v5_cosmos_production" and cfg.control_frac["train"] == 0.5 and cfg.moffat_beta == 3.5
    paths = stepargs.dataset_paths(a.output_prefix)
    assert paths.data == "s3://darkhaloscope/phase4_pipeline/phase4c/v5_cosmos_production/phase4c"
    assert paths.data_spark.startswith("s3a://darkhaloscope/")


def test_every_run_parameter_reaches_its_step_under_its_one_flag():
    """The step builders and the step scripts' parser both come from pipeline.run_params: each
    parameter a step reads is rendered under its step flag and parsed back to the same name."""
    from pipeline import run_params

    inject = list(inject_step(PARAMS).args)
    parsed = stepargs.parse_args(inject)
    for p in run_params.RUN_PARAMS:
        if p.step_flag and p.name in PARAMS and p.name not in ("target_file_mb", "gate_suite"):
            assert p.step_flag in inject, p.name
            value, expected = getattr(parsed, p.name), PARAMS[p.name]
            if isinstance(expected, list):
                assert value == tuple(expected), p.name
            elif isinstance(expected, str):  # EMR respells s3a:// as s3://
                assert str(value).replace("s3a://", "s3://") == expected.replace("s3a://", "s3://"), p.name
            else:
                assert value == expected, p.name
    compact = list(compact_step({**PARAMS, "pipeline_run": None}).args)
    assert stepargs.parse_args(compact).target_file_mb == 256.0
    # the one name per flag: 4c reads a manifest, 4p5 compacts data; each refuses the other's
    with pytest.raises(InputError, match="--source"):
        stepargs.parse_args(["--stage", "4c", "--output-prefix", "x", "--source", "y"])
    with pytest.raises(InputError, match="--manifest-uri"):
        stepargs.parse_args(["--stage", "4p5", "--output-prefix", "x", "--manifest-uri", "y"])


def test_rerun_decision():
    assert stepargs.decide_rerun(True, "", skip_if_exists=True, force=True, where="D") == "skip"
    assert stepargs.decide_rerun(True, "", skip_if_exists=False, force=True, where="D") == "write"
    assert stepargs.decide_rerun(False, "", skip_if_exists=True, force=False, where="D") == "write"
    with pytest.raises(InputError, match="--force 1"):
        stepargs.decide_rerun(True, "", skip_if_exists=False, force=False, where="D")


def test_job_flow_overrides_seed_cluster():
    jf = default_job_flow_overrides(code_prefix="s3a://darkhaloscope/code/dhs/0.1.0")
    assert jf["ReleaseLabel"] == "emr-7.6.0" and jf["Applications"] == [{"Name": "Spark"}]
    groups = {g["InstanceRole"]: g for g in jf["Instances"]["InstanceGroups"]}
    assert (groups["MASTER"]["InstanceType"], groups["MASTER"]["InstanceCount"]) == ("m5.xlarge", 1)
    assert (groups["CORE"]["InstanceType"], groups["CORE"]["InstanceCount"]) == ("m5.2xlarge", 34)
    ba = jf["BootstrapActions"][0]["ScriptBootstrapAction"]
    assert ba["Path"] == "s3://darkhaloscope/code/dhs/0.1.0/bootstrap.sh" and ba["Args"][1].endswith(".whl")
    assert jf["LogUri"].startswith("s3://")




def test_dataset_metadata_current_and_completeness_on_s3(s3):
    root = "s3a://dhs/runs/D"
    data = stepargs.dataset_paths(root).data
    assert data == "s3://dhs/runs/D/phase4c"
    assert ds.resolve_data_uri(root) == data
    s3.put_object(Bucket="dhs", Key="runs/D/phase4c/region_split=train/part-0.parquet", Body=b"x" * 10)
    s3.put_object(Bucket="dhs", Key="runs/D/phase4c/_temporary/0/part-9.parquet", Body=b"x")  # debris: not data
    assert ds.completeness(data, manifest_sha256="a" * 64, tasks=5)[0] is False  # no _SUCCESS
    s3.put_object(Bucket="dhs", Key="runs/D/phase4c/_SUCCESS", Body=b"")
    assert "interrupted" in ds.completeness(data, manifest_sha256="a" * 64, tasks=5)[1]
    ds.write_metadata(data, ds.build_metadata(stage="4c", run_id="r", run_config={"variant": "v"}, rows_per_split={"train": 5},
                                              files=1, bytes_=10, manifest={"sha256": "a" * 64, "tasks": 5}))
    assert ds.dir_stats(data) == (1, 10)
    assert ds.completeness(data, manifest_sha256="a" * 64, tasks=5) == (True, "complete")
    ds.set_current("s3://dhs/runs/D", "compacted/c1")
    assert ds.resolve_data_uri(root) == "s3://dhs/runs/D/compacted/c1"
    ds.remove_metadata(data)
    assert ds.read_metadata(data) is None


def test_stage_code_uploads_wheel_lock_bootstrap_and_entries(s3, tmp_path):
    wheel = tmp_path / "dark_halo_scope-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    uris = stage_code("s3a://dhs/code/0.1.0", wheel)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="dhs", Prefix="code/0.1.0/")["Contents"]}
    assert {"code/0.1.0/dark_halo_scope-0.1.0-py3-none-any.whl", "code/0.1.0/requirements.lock",
            "code/0.1.0/bootstrap.sh", "code/0.1.0/emr_steps/inject.py", "code/0.1.0/emr_steps/compact.py"} <= keys
    assert all(u.startswith("s3://") for u in uris)
