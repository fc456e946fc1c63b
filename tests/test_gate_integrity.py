"""Gate integrity (issue 14): a promotion certifies exactly the bytes that were validated, and a
consumer can prove it.

One dataset (the clean synthetic one) is validated once per module; the tests change its bytes,
its CURRENT pointer or its promotion files and restore them. Every content change keeps each
file's size (a byte flipped in place), so only a real content hash can notice it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "plugins") not in sys.path:
    sys.path.append(str(REPO / "plugins"))  # what Airflow does for the plugins folder

from pipeline import conditional_io, lineage, run_lock
from dhs_cli.main import main
from pipeline.errors import InputError
from pipeline.gate.promote import PromotionRefused, history, promote_dataset
from pipeline.gate.verify import PromotionInvalid, verify_promoted
from tests.gate_factories import clean_validation, gate_cases, strict_validation  # noqa: F401 - fixtures
from tests.gate_factories import _cached_clean, load_run_config, write_dataset, write_manifest, identity_of

pytestmark = pytest.mark.spark


def flip_one_byte(path: Path) -> bytes:
    """Change one byte in the middle of a file, keeping its size; returns the original bytes."""
    data = path.read_bytes()
    i = len(data) // 2
    path.write_bytes(data[:i] + bytes([data[i] ^ 0x5A]) + data[i + 1:])
    assert path.stat().st_size == len(data)
    return data


@pytest.fixture(scope="module")
def validated(spark, gate_cases, tmp_path_factory):
    """(D, M, validation dir) of a private copy of the clean dataset, validated with the demo suite
    (no Data Docs or report: they are not what is tested here)."""
    from pipeline.gate.validate import validate_dataset

    src, m = gate_cases("clean")
    d = tmp_path_factory.mktemp("integrity") / "D"
    shutil.copytree(src, d)
    out = d / "validation" / "run1"
    result = validate_dataset(str(d), manifest_uri=str(m), variant="demo", out_dir=str(out), spark=spark,
                              build_docs=False, build_report=False, pipeline_run="run1")
    assert result.passed, result.failures
    return d, m, out


@pytest.fixture()
def promoted(validated):
    """The validated copy, promoted; every promotion file removed again afterwards."""
    d, m, val = validated
    uri, record = promote_dataset(str(d), validation=str(val))
    yield d, m, val, record
    for p in (d / "promotion.json", d / "CURRENT"):
        p.unlink(missing_ok=True)
    shutil.rmtree(d / "promotions", ignore_errors=True)


def test_validation_json_binds_the_verdict_to_data_suite_run_and_code(validated):
    d, _, val = validated
    doc = json.loads((val / "validation.json").read_text())
    assert doc["dataset"]["data_uri"] == str(d / "phase4c") and len(doc["dataset"]["content_checksum"]) == 64
    assert doc["suite"] == "demo" and doc["run"] == "run1"
    assert doc["suite_policy"] == {"min_gate_suite": "demo", "suite": "demo", "satisfied": True, "gaps": []}
    assert doc["run_config"]["variant"] == "demo" and len(doc["run_config"]["sha256"]) == 64
    assert doc["code"]["pipeline_version"]
    # no reference profile given: the report and validation.json say so
    assert doc["drift"]["checked"] is False and "no reference" in doc["drift"]["note"]
    checks = doc["row_contract"]["checks"]
    assert checks["matches_manifest"]["failed_rows"] == 0
    assert {"pixels_agree:arc_snr", "pixels_agree:arc_flux_g", "pixels_agree:psf_fwhm_z",
            "pixels_agree:bad_pixel_frac"} <= set(checks)


def test_promotion_record_history_current_and_verify(promoted):
    d, _, val, record = promoted
    assert record["data_uri"] == str(d / "phase4c") and record["sequence"] == 1
    assert record["suite"] == "demo" and record["min_gate_suite"] == "demo" and record["run"] == "run1"
    assert record["validation"]["uri"] == str(val / "validation.json")
    assert json.loads((d / "CURRENT").read_text())["data"] == "phase4c"
    assert [h["sequence"] for h in history(str(d))] == [1]
    # idempotent: the same validation again is the same record, no second history entry
    assert promote_dataset(str(d), validation=str(val))[1] == record
    assert [h["sequence"] for h in history(str(d))] == [1]
    assert verify_promoted(str(d))["content_checksum"] == record["content_checksum"]
    assert main(["verify-promoted", str(d)]) == 0


def test_one_byte_changed_after_promotion_is_refused(promoted, capsys):
    d, _, _, record = promoted
    victim = sorted((d / "phase4c").rglob("*.parquet"))[1]
    original = flip_one_byte(victim)
    try:
        with pytest.raises(PromotionInvalid, match="changed after promotion"):
            verify_promoted(str(d))
        assert main(["verify-promoted", str(d)]) == 1
        assert "changed after promotion" in capsys.readouterr().err
    finally:
        victim.write_bytes(original)
    verify_promoted(str(d))


def test_promote_refuses_data_changed_since_validation_same_size(validated):
    d, _, val = validated
    victim = sorted((d / "phase4c").rglob("*.parquet"))[0]
    original = flip_one_byte(victim)
    try:
        with pytest.raises(PromotionRefused, match="changed since validation"):
            promote_dataset(str(d), validation=str(val))
        assert not (d / "promotion.json").exists() and not (d / "promotions").exists()
    finally:
        victim.write_bytes(original)


def test_moving_current_withdraws_the_promotion(promoted):
    from pipeline.dataset import set_current

    d, _, _, _ = promoted
    set_current(str(d), "compacted/someone-elses")
    with pytest.raises(PromotionInvalid, match="withdrawn"):
        verify_promoted(str(d))
    set_current(str(d), "phase4c")
    verify_promoted(str(d))


def test_an_event_for_a_replaced_promotion_is_refused(promoted):
    d, _, _, record = promoted
    verify_promoted(str(d), expect_data_uri=record["data_uri"], expect_checksum=record["content_checksum"])
    with pytest.raises(PromotionInvalid, match="no longer current"):
        verify_promoted(str(d), expect_checksum="0" * 64)


def test_consumer_min_suite_is_enforced(promoted):
    d, _, _, _ = promoted
    with pytest.raises(PromotionInvalid, match="weaker than 'production'"):
        verify_promoted(str(d), min_suite="production")
    assert main(["verify-promoted", str(d), "--min-suite", "production"]) == 1


def test_a_record_whose_suite_is_weaker_than_its_run_config_minimum_is_refused(promoted):
    d, _, _, record = promoted
    doctored = dict(record, min_gate_suite="production")
    (d / "promotion.json").write_text(json.dumps(doctored))
    with pytest.raises(PromotionInvalid, match="weaker than 'production'"):
        verify_promoted(str(d))


def test_concurrent_promotion_loses_cleanly(validated):
    """Another promoter claims the next history slot first: this one changes nothing."""
    d, _, val = validated
    try:
        (d / "promotions").mkdir()
        (d / "promotions" / "000001.json").write_text("{}")  # not a record: history stays empty,
        with pytest.raises(PromotionRefused, match="at the same time"):  # so seq 1 is taken
            promote_dataset(str(d), validation=str(val))
        assert not (d / "promotion.json").exists() and not (d / "CURRENT").exists()
    finally:
        shutil.rmtree(d / "promotions", ignore_errors=True)


def test_promotion_json_replaced_in_between_is_a_conflict(validated, monkeypatch):
    from pipeline.gate import promote as promote_mod

    d, _, val = validated
    real = conditional_io.replace_if_version

    def racing(uri, data, version):
        Path(uri).write_text('{"someone": "else"}')  # another writer, after our read
        return real(uri, data, version)

    monkeypatch.setattr(promote_mod.conditional_io, "replace_if_version", racing)
    try:
        with pytest.raises(PromotionRefused, match="changed while promoting"):
            promote_dataset(str(d), validation=str(val))
        assert not (d / "CURRENT").exists()
    finally:
        for p in (d / "promotion.json", d / "CURRENT"):
            p.unlink(missing_ok=True)
        shutil.rmtree(d / "promotions", ignore_errors=True)


def test_promote_refuses_other_data_than_the_run_produced(validated):
    d, _, val = validated
    with pytest.raises(PromotionRefused, match="but this run produced"):
        promote_dataset(str(d), validation=str(val),
                        expected={"data_uri": str(d / "compacted" / "c-other"), "content_checksum": "1" * 64})


# --- suite policy --------------------------------------------------------------------------------

def test_plan_refuses_a_suite_weaker_than_the_run_config_minimum(tmp_path, monkeypatch):
    from dhs_airflow.plan import DEFAULTS, plan_run

    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", str(tmp_path))
    params = {**DEFAULTS, "output_prefix": str(tmp_path / "ds"), "run_config": "production", "gate_suite": "demo"}
    with pytest.raises(InputError, match="weaker than 'production'") as exc:
        plan_run(params, airflow_run_id="manual__policy")
    assert exc.value.source == "gate_suite"
    assert plan_run({**params, "gate_suite": "production"}, airflow_run_id="manual__policy")["gate_suite"] == "production"


def test_a_production_dataset_gated_with_the_demo_suite_fails_and_is_not_promoted(spark, tmp_path):
    from pipeline.gate.validate import validate_dataset

    c = {k: v.copy() for k, v in _cached_clean().items()}
    meta = {"run_config": load_run_config("production").to_dict(), "rows_per_split": {}}
    d = write_dataset(c, tmp_path / "D", metadata=meta)
    m = write_manifest(tmp_path / "M", identity=identity_of(c), tasks=c)
    result = validate_dataset(str(d), manifest_uri=str(m), variant="demo", out_dir=str(tmp_path / "val"), spark=spark,
                              build_docs=False, build_report=False)
    assert any(f.startswith("suite_policy: suite 'demo' is weaker than 'production'") for f in result.failures)
    with pytest.raises(PromotionRefused):
        promote_dataset(str(d), validation=str(tmp_path / "val"))


# --- one run per prefix --------------------------------------------------------------------------

def _lock_cycle(root: str):
    assert run_lock.acquire(root, "run-a")["run"] == "run-a"
    assert run_lock.acquire(root, "run-a")["run"] == "run-a"  # a retry of the same run
    with pytest.raises(run_lock.LockHeld, match="run 'run-a' holds this dataset prefix") as exc:
        run_lock.acquire(root, "run-b")
    assert "dhs unlock" in str(exc.value)
    assert run_lock.release(root, "run-b") is False  # never another run's lock
    assert run_lock.holder(root)["run"] == "run-a"
    assert run_lock.release(root, "run-a") is True
    assert run_lock.holder(root) is None
    assert run_lock.acquire(root, "run-b")["run"] == "run-b"
    assert run_lock.release(root, "run-b")


def test_run_lock_local(tmp_path):
    _lock_cycle(str(tmp_path / "D"))


def test_run_lock_s3(s3):
    _lock_cycle("s3://dhs/phase4/D")


def test_conditional_writes_s3(s3):
    uri = "s3://dhs/D/promotion.json"
    v1 = conditional_io.create_exclusive(uri, b"one")
    with pytest.raises(conditional_io.ConflictError):
        conditional_io.create_exclusive(uri, b"two")
    v2 = conditional_io.replace_if_version(uri, b"two", v1)
    with pytest.raises(conditional_io.ConflictError):
        conditional_io.replace_if_version(uri, b"three", v1)  # stale version: lost update refused
    assert conditional_io.read_versioned(uri) == (b"two", v2)


def test_unlock_command(tmp_path, capsys):
    root = str(tmp_path / "D")
    run_lock.acquire(root, "dead-run")
    assert main(["unlock", root, "--run", "other"]) == 1
    assert main(["unlock", root, "--run", "dead-run"]) == 0
    assert run_lock.holder(root) is None


# --- drift reference found automatically ---------------------------------------------------------

def test_drift_reference_is_the_last_promotion_of_the_variant(promoted, monkeypatch):
    from dhs_airflow.plan import DEFAULTS, drift_reference, start_run

    d, m, val, _ = promoted
    assert drift_reference(str(d), "demo") == str(val / "profile.json")
    assert drift_reference(str(d), "v5_cosmos_production") is None
    monkeypatch.setenv("DHS_ALLOWED_OUTPUT_ROOTS", str(d.parent))
    plan = start_run({**DEFAULTS, "output_prefix": str(d), "manifest_uri": str(m)}, airflow_run_id="manual__drift")
    assert plan["reference_profile"] == str(val / "profile.json")
    assert "--reference-profile" in plan["local_validate"]
    assert plan["local_validate"][plan["local_validate"].index("--reference-profile") + 1] == str(val / "profile.json")


# --- unreadable data is exit 2, naming the file --------------------------------------------------

def test_corrupt_parquet_under_a_crc_sidecar_is_exit_2_naming_the_file(spark, gate_cases, tmp_path, capsys):
    """A compacted copy written by Spark (with Hadoop .crc sidecars) whose file changed in place:
    Spark's ChecksumException becomes `dhs validate` exit 2 naming the file, not exit 1."""
    src, m = gate_cases("clean")
    d = tmp_path / "D" / "phase4c"
    spark.read.parquet(str(src / "phase4c")).write.partitionBy("region_split").parquet(str(d))
    shutil.copy(src / "phase4c" / "_dhs_dataset.json", d / "_dhs_dataset.json")
    victim = sorted(d.rglob("part-*.parquet"))[0]
    assert (victim.parent / f".{victim.name}.crc").exists()
    flip_one_byte(victim)
    code = main(["validate", str(tmp_path / "D"), "--manifest-uri", str(m), "--gate-suite", "demo",
                 "--out", str(tmp_path / "val"), "--no-docs"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert victim.name in err and "unreadable data file" in err
    assert "Traceback" not in err and "Py4JJavaError" not in err


# --- the identity chain between the steps ---------------------------------------------------------

def test_receipts_and_chain_checks(tmp_path):
    root = str(tmp_path / "D")
    with pytest.raises(InputError, match="did not finish"):
        lineage.read_receipt(root, "run1", "compact")
    uri = lineage.write_receipt(root, "run1", "compact", {"data_uri": f"{root}/compacted/c-1", "content_checksum": "a" * 64})
    assert uri == f"{root}/runs/run1/compact.json"
    receipt = lineage.read_receipt(root, "run1", "compact")
    lineage.check_same_data(found=dict(receipt), expected=receipt, found_what="x", expected_what="y")
    with pytest.raises(lineage.ChainBroken, match="a{16}.*b{16}|b{16}.*a{16}"):
        lineage.check_same_data(found={**receipt, "content_checksum": "b" * 64}, expected=receipt,
                                found_what="the data to validate", expected_what="what compact wrote")
    for bad in ("../escape", "-rf", "", "a/b"):
        with pytest.raises(InputError):
            lineage.check_run_name(bad)


def test_promote_refuses_a_failed_validation(validated, strict_validation):
    d, _, _ = validated
    result, strict = strict_validation
    assert not result.passed
    with pytest.raises(PromotionRefused, match="FAILED"):
        promote_dataset(str(d), validation=str(strict))
    assert main(["promote", str(d), "--validation", str(strict)]) == 1
    assert not (d / "promotion.json").exists() and not (d / "CURRENT").exists()


def test_band_order_declared_by_the_metadata_is_checked(spark, tmp_path):
    """Pixels written z, r, g under metadata that says so: the order differs from the contract's
    (every reader assumes g, r, z), and the per-band fluxes recomputed in the declared order
    contradict the rows' g and z fluxes."""
    from pipeline.contract import PIXEL_LAYOUT
    from pipeline.dataset import open_dataset, read_rows
    from pipeline.gate.pixel_agreement import pixel_agreement

    c = {k: v.copy() for k, v in _cached_clean({"train": 20, "val": 10, "test": 10}).items()}
    meta = {"run_config": load_run_config("demo").to_dict(), "pixel_layout": {**PIXEL_LAYOUT, "band_order": ["z", "r", "g"]}}
    d = write_dataset(c, tmp_path / "D", metadata=meta)
    ds = open_dataset(str(d))
    found = pixel_agreement(read_rows(spark, ds), metadata=ds.metadata)
    assert "band order ['z', 'r', 'g']" in found["pixels_agree:band_order"]["problem"]
    injections = int((~c["is_control"]).sum())
    assert found["pixels_agree:arc_flux_g"]["failed_rows"] == injections
    assert found["pixels_agree:arc_flux_z"]["failed_rows"] == injections
    assert found["pixels_agree:arc_flux_r"]["failed_rows"] == 0 and found["pixels_agree:arc_snr"]["failed_rows"] == 0


def test_verify_promoted_bad_input_is_named(tmp_path, capsys):
    """Nothing promoted, an unreadable record, an old-format record: refused with the reason."""
    assert main(["verify-promoted", str(tmp_path / "missing")]) == 1
    assert "nothing is promoted" in capsys.readouterr().err
    d = tmp_path / "D"
    d.mkdir()
    (d / "promotion.json").write_text("{not json")
    assert main(["verify-promoted", str(d)]) == 1
    assert "promotion.json: not valid JSON" in capsys.readouterr().err
    (d / "promotion.json").write_text(json.dumps({"dataset_uri": str(d), "content_checksum": "0" * 64}))
    assert main(["verify-promoted", str(d)]) == 1
    err = capsys.readouterr().err
    assert "promote the dataset again" in err and "Traceback" not in err
