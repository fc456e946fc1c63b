"""validation.json's seed-summary VALUES (issue 20), checked against numbers computed in this test
from the Parquet files with pyarrow and numpy (no Spark, no gate code): rows and files per split,
cutout_ok_pct, the arc_snr statistics of the ok injections, theta_E range, COSMOS indices in use.

Two datasets: the clean one (every cutout ok, half controls: a cutout rate fed from the control
fraction reads 50 instead of 100) gated with the demo suite, and `cutout_rate_95` (1 task in 20
failed, controls and injections alike) gated with the PRODUCTION suite, whose verdict is checked
too (each suite variant runs against a dataset in a test: demo and strict in test_gate_*.py).
"""

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.gate_factories import clean_validation, gate_cases  # noqa: F401 - fixtures


#: half a unit of the 6th decimal, plus float slack
R6 = 5.000001e-7


def _truth(dataset_root: Path) -> dict:
    """split -> independent numbers, from the Parquet files."""
    out = {}
    for part in sorted((Path(dataset_root) / "phase4c").glob("region_split=*")):
        split = part.name.split("=", 1)[1]
        files = sorted(part.glob("*.parquet"))
        t = pq.read_table(files, columns=["cutout_ok", "is_control", "arc_snr", "theta_e_arcsec", "cosmos_index"]) \
            if len(files) == 1 else None
        if t is None:
            import pyarrow as pa

            t = pa.concat_tables([pq.read_table(f, columns=["cutout_ok", "is_control", "arc_snr", "theta_e_arcsec",
                                                            "cosmos_index"]) for f in files])
        ok = np.asarray(t.column("cutout_ok").to_pylist(), bool)
        ctrl = np.asarray(t.column("is_control").to_pylist(), bool)
        snr = np.array([np.nan if v is None else v for v in t.column("arc_snr").to_pylist()], float)
        theta = np.array([np.nan if v is None else v for v in t.column("theta_e_arcsec").to_pylist()], float)
        cosmos = [v for v, k, c in zip(t.column("cosmos_index").to_pylist(), ok, ctrl) if k and not c and v is not None]
        inj_snr = np.sort(snr[ok & ~ctrl])
        out[split] = {
            "rows": t.num_rows,
            "files": len(files),
            "rows_in_footer": sum(pq.ParquetFile(f).metadata.num_rows for f in files),
            "cutout_ok_pct": 100.0 * ok.sum() / len(ok),
            "control_pct": 100.0 * ctrl.sum() / len(ctrl),
            "snr": inj_snr,
            "theta": theta[ok & ~ctrl],
            "cosmos_unique": len(set(cosmos)),
        }
    return out


def _check_summary(doc: dict, truth: dict) -> None:
    assert set(doc["splits"]) == set(truth)
    assert doc["estimated_total_stamps"] == sum(t["rows"] for t in truth.values())
    for split, t in truth.items():
        s = doc["splits"][split]
        # rows: counted two ways here (rows read, rows in the Parquet footers)
        assert t["rows"] == t["rows_in_footer"]
        assert s["sampled_rows"] == t["rows"] and s["estimated_total_rows"] == t["rows"], split
        assert s["total_files"] == t["files"], split
        assert s["cutout_ok_pct"] == pytest.approx(t["cutout_ok_pct"], abs=1e-4), split
        snr = t["snr"]
        a = s["arc_snr"]
        # the profile stores floats rounded to 6 decimals (pipeline.gate.profile._r)
        assert a["min"] == pytest.approx(snr[0], abs=R6) and a["max"] == pytest.approx(snr[-1], abs=R6)
        assert a["mean"] == pytest.approx(snr.mean(), abs=R6)
        assert a["std"] == pytest.approx(snr.std(ddof=1), abs=R6)  # Spark's stddev is the sample one
        # the median is Spark's percentile_approx (an element of the data at accuracy 10,000, which
        # is exact at these sizes): one of the two middle order statistics
        n = len(snr)
        assert a["median"] in (round(snr[(n - 1) // 2], 6), round(snr[n // 2], 6)), \
            (split, a["median"], snr[(n - 1) // 2], snr[n // 2], snr.mean())
        assert a["median"] == a["p50"]
        for q in (5, 25, 75, 95):  # each quantile an element of the data, within one rank of numpy's
            k = q / 100 * (n - 1)
            assert snr[max(int(np.floor(k)) - 1, 0)] - R6 <= a[f"p{q}"] <= snr[min(int(np.ceil(k)) + 1, n - 1)] + R6, (split, q)
        assert a["gt_1_pct"] == pytest.approx(100.0 * (snr > 1).mean(), abs=1e-4)
        assert a["gt_10_pct"] == pytest.approx(100.0 * (snr > 10).mean(), abs=1e-4)
        assert a["gt_50_pct"] == pytest.approx(100.0 * (snr > 50).mean(), abs=1e-4)
        assert s["theta_e"]["min"] == pytest.approx(t["theta"].min(), abs=R6)
        assert s["theta_e"]["max"] == pytest.approx(t["theta"].max(), abs=R6)
        assert s["theta_e"]["mean"] == pytest.approx(t["theta"].mean(), abs=R6)
        assert s["cosmos_unique_indices"] == t["cosmos_unique"]


def test_clean_summary_values_are_the_data(clean_validation, gate_cases):
    result, out = clean_validation
    doc = json.loads((out / "validation.json").read_text())
    truth = _truth(gate_cases("clean")[0])
    # the clean dataset: every cutout ok, half controls (the two must not be confused)
    assert all(t["cutout_ok_pct"] == 100.0 and t["control_pct"] == 50.0 for t in truth.values())
    _check_summary(doc, truth)


@pytest.fixture(scope="module")
def production_on_failed_cutouts(spark, gate_cases, tmp_path_factory):
    from pipeline.gate.validate import validate_dataset

    d, m = gate_cases("cutout_rate_95")
    out = tmp_path_factory.mktemp("val_production")
    result = validate_dataset(str(d), manifest_uri=str(m), variant="production", out_dir=str(out), spark=spark,
                              build_docs=False, build_report=False)
    return result, json.loads((out / "validation.json").read_text()), d


def test_summary_values_with_failed_cutouts(production_on_failed_cutouts):
    _, doc, d = production_on_failed_cutouts
    truth = _truth(d)
    # 1 in 20 tasks failed: 95% ok in each split, and not the 50% control share
    assert all(t["cutout_ok_pct"] == pytest.approx(95.0, abs=1.0) for t in truth.values())
    _check_summary(doc, truth)


def test_production_suite_runs_on_a_dataset_and_fails_the_cutout_rate(production_on_failed_cutouts):
    result, doc, _ = production_on_failed_cutouts
    assert doc["suite"] == "production" and not result.passed and not doc["passed"]
    failed = {e["name"] for e in doc["expectations"] if not e["success"]}
    assert "cutout_success_rate" in failed, doc["failures"]
    assert any(f.startswith("cutout_success_rate:") for f in doc["failures"])
