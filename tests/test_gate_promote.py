"""Promotion: only a passed validation of unchanged data; idempotent; data never moved."""

import json
import shutil

import pytest

from pipeline.cli.main import main
from pipeline.gate.promote import PromotionRefused, promote_dataset
from tests.gate_factories import clean_validation, gate_cases, strict_validation  # noqa: F401 - fixtures


@pytest.fixture
def validated(gate_cases, clean_validation, tmp_path):
    """A private copy of the clean dataset and the shared validation of the clean dataset (demo
    suite, run once per session). Promotion compares content checksums (relative paths, sizes,
    sha256), so the copy is the data that was validated; the copy is free to be changed."""
    src, m = gate_cases("clean")
    result, val = clean_validation
    assert result.passed
    d = tmp_path / "dataset"
    shutil.copytree(src, d)
    return d, m, val


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


def test_promote_refuses_failed_validation(validated, strict_validation):
    d, _, _ = validated
    r, strict = strict_validation
    assert not r.passed
    with pytest.raises(PromotionRefused, match="FAILED"):
        promote_dataset(str(d), validation=str(strict))
    assert main(["promote", str(d), "--validation", str(strict)]) == 1
    assert not (d / "promotion.json").exists()
