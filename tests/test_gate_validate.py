"""validate_dataset end to end and `dhs validate` exit codes."""

import json

from dhs_cli.main import main
from tests.gate_factories import clean_validation, gate_cases  # noqa: F401 - fixtures

SEED_SPLIT_KEYS = {"sampled_rows", "total_files", "estimated_total_rows", "cutout_ok_pct", "arc_snr", "theta_e",
                   "cosmos_unique_indices", "cosmos_hlr", "psfsize_r"}
SEED_SNR_KEYS = {"min", "max", "mean", "median", "std", "gt_1_pct", "gt_10_pct", "gt_50_pct",
                 "p5", "p25", "p50", "p75", "p95"}


def test_clean_dataset_passes_and_writes_outputs(clean_validation):
    result, out = clean_validation
    assert result.passed, result.failures
    for rel in ("validation.json", "profile.json", "data_docs/index.html", "report/index.html", "report/arc_snr.png",
                "report/stamp_0.png"):
        assert (out / rel).exists(), rel


def test_validation_json_keeps_seed_keys(clean_validation, gate_cases):
    import pyarrow.parquet as pq

    from tests.gate_factories import SPLIT_ROWS

    doc = json.loads((clean_validation[1] / "validation.json").read_text())
    assert {"timestamp", "splits", "estimated_total_stamps", "expectations", "row_contract", "profile", "passed"} <= set(doc)
    assert set(doc["splits"]) == {"train", "val", "test"}
    # independent counts: rows in the Parquet footers and files per split folder on disk
    data = gate_cases("clean")[0] / "phase4c"
    on_disk = {p.name.split("=", 1)[1]: sorted(p.glob("*.parquet")) for p in data.glob("region_split=*")}
    rows = {s: sum(pq.ParquetFile(f).metadata.num_rows for f in files) for s, files in on_disk.items()}
    assert rows == SPLIT_ROWS  # what the factory was asked to write
    for name, split in doc["splits"].items():
        assert SEED_SPLIT_KEYS <= set(split)
        assert SEED_SNR_KEYS <= set(split["arc_snr"])
        # every row is read: sampled = estimated = the rows on disk (not merely each other)
        assert split["sampled_rows"] == split["estimated_total_rows"] == rows[name], name
        assert split["total_files"] == len(on_disk[name]), name
    assert doc["estimated_total_stamps"] == sum(rows.values()) == 600
    e = doc["expectations"][0]
    assert {"name", "success", "observed", "expected"} <= set(e)
    assert doc["dataset"]["content_checksum"]


def test_cli_exit_codes(spark, gate_cases, tmp_path, capsys):
    d, m = gate_cases("clean")
    assert main(["validate", str(d), "--manifest-uri", str(m), "--gate-suite", "demo", "--out", str(tmp_path / "a"), "--no-docs"]) == 0
    assert "gate PASSED" in capsys.readouterr().out
    assert main(["validate", str(d), "--manifest-uri", str(m), "--gate-suite", "strict", "--out", str(tmp_path / "b"), "--no-docs"]) == 1
    assert "cosmos_unique_sources" in capsys.readouterr().out


def _unusable(argv, capsys) -> str:
    """Run `dhs validate` expecting exit 2; return its one-line error."""
    assert main(["validate", *argv, "--no-docs"]) == 2
    err = capsys.readouterr().err
    assert "dhs validate: error" in err
    return err


def test_cli_unusable_input_exits_2_naming_it(gate_cases, tmp_path, capsys):
    d, m = gate_cases("clean")
    out = str(tmp_path / "out")
    missing = tmp_path / "missing"
    assert str(missing) in _unusable([str(missing), "--manifest-uri", str(m), "--out", out], capsys)
    no_manifest = tmp_path / "no_manifest"
    assert str(no_manifest) in _unusable([str(d), "--manifest-uri", str(no_manifest), "--out", out], capsys)
    empty = tmp_path / "empty"
    (empty / "phase4c").mkdir(parents=True)
    assert str(empty) in _unusable([str(empty), "--manifest-uri", str(m), "--out", out], capsys)
    assert "no_such_suite.yaml" in _unusable([str(d), "--manifest-uri", str(m), "--gate-suite", "no_such_suite",
                                               "--out", out], capsys)
    assert not (tmp_path / "out").exists()  # nothing written for unusable input


def test_cli_gate_failure_lists_checks(spark, gate_cases, tmp_path, capsys):
    d, m = gate_cases("faint_arcs")
    code = main(["validate", str(d), "--manifest-uri", str(m), "--gate-suite", "demo", "--out", str(tmp_path), "--no-docs"])
    assert code == 1
    assert "arc_flux_consistent" in capsys.readouterr().out


def test_validation_to_s3_copies_data_docs_and_report_beside_it(spark, gate_cases, s3):
    """GX builds Data Docs on local disk only: with an S3 output the gate builds them locally, then
    copies them (and the report) beside validation.json, whose `outputs` point at the S3 copies."""
    from pipeline.gate.validate import validate_dataset

    d, m = gate_cases("clean")
    result = validate_dataset(str(d), manifest_uri=str(m), variant="demo", out_dir="s3://dhs/ds/validation/run1",
                              spark=spark)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="dhs", Prefix="ds/validation/run1/")["Contents"]}
    doc = json.loads(s3.get_object(Bucket="dhs", Key="ds/validation/run1/validation.json")["Body"].read())
    head = s3.head_object(Bucket="dhs", Key="ds/validation/run1/data_docs/index.html")
    assert result.passed and doc["passed"]
    assert doc["outputs"] == {"data_docs": "s3://dhs/ds/validation/run1/data_docs/index.html",
                              "report": "s3://dhs/ds/validation/run1/report/index.html"}
    assert result.data_docs_index == doc["outputs"]["data_docs"]
    assert {"ds/validation/run1/data_docs/index.html", "ds/validation/run1/report/index.html",
            "ds/validation/run1/profile.json"} <= keys
    assert any(k.startswith("ds/validation/run1/data_docs/validations/") for k in keys)
    assert any(k.startswith("ds/validation/run1/report/") and k.endswith(".png") for k in keys)
    assert head["ContentType"] == "text/html"


def test_report_says_what_the_verdict_is_about(clean_validation):
    """The report names the exact data, checksum and suite it judged, and that drift had no
    reference (the first promotion of a variant)."""
    result, out = clean_validation
    page = (out / "report" / "index.html").read_text()
    doc = json.loads((out / "validation.json").read_text())
    assert "What this verdict is about" in page
    assert doc["dataset"]["content_checksum"] in page and doc["dataset"]["data_uri"] in page
    assert "no reference" in page
