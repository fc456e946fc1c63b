"""Promotion: only a passed validation of unchanged data; idempotent; data never moved."""

import json
import shutil

import pytest

from pipeline.cli.main import main
from pipeline.gate.promote import PromotionRefused, promote_dataset
from pipeline.gate.validate import validate_dataset
from tests.gate_factories import gate_cases  # noqa: F401 - fixture


@pytest.fixture
def validated(spark, gate_cases, tmp_path):
    """A private copy of the clean dataset, validated with the demo suite."""
    src, m = gate_cases("clean")
    d = tmp_path / "dataset"
    shutil.copytree(src, d)
    r = validate_dataset(str(d), manifest_uri=str(m), variant="demo", out_dir=str(tmp_path / "val"),
                         spark=spark, build_docs=False, build_report=False)
    assert r.passed
    return d, m, tmp_path / "val"


def test_promote_twice_is_idempotent(validated):
    d, _, val = validated
    files_before = sorted(p.name for p in (d / "phase4c").rglob("*.parquet"))
    uri, first = promote_dataset(str(d), validation=str(val))
    assert uri == str(d / "promotion.json")
    assert first["rows_per_split"] == {"train": 240, "val": 180, "test": 180}
    assert main(["promote", str(d), "--validation", str(val / "validation.json")]) == 0
    assert json.loads((d / "promotion.json").read_text()) == first
    assert sorted(p.name for p in (d / "phase4c").rglob("*.parquet")) == files_before


def test_promote_refuses_changed_data(validated):
    d, _, val = validated
    victim = next((d / "phase4c").rglob("part-00000.parquet"))
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(PromotionRefused, match="changed since validation"):
        promote_dataset(str(d), validation=str(val))
    assert main(["promote", str(d), "--validation", str(val)]) == 1
    assert not (d / "promotion.json").exists()


def test_promote_refuses_failed_validation(spark, validated, tmp_path):
    d, m, _ = validated
    r = validate_dataset(str(d), manifest_uri=str(m), variant="strict", out_dir=str(tmp_path / "strict"),
                         spark=spark, build_docs=False, build_report=False)
    assert not r.passed
    with pytest.raises(PromotionRefused, match="FAILED"):
        promote_dataset(str(d), validation=str(tmp_path / "strict"))
    assert main(["promote", str(d), "--validation", str(tmp_path / "strict")]) == 1
    assert not (d / "promotion.json").exists()
