"""Stage 4c: exactly one row per task through real local Spark; failed bricks; reruns."""

import json

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from pipeline.contract import COLUMN_NAMES, PIXEL_LAYOUT
from pipeline.dataset import completeness, read_metadata
from tests.steps_fixtures import remove_brick, run_module

# fixtures `tiny` and `baseline` are shared (one instance per session) with test_steps_rerun.py
pytest_plugins = ["tests.steps_fixtures"]

pytestmark = pytest.mark.spark


def test_one_row_per_task_and_metadata(tiny, baseline):
    table = pads.dataset(str(baseline["data"]), format="parquet", partitioning="hive").to_table()
    manifest = pq.read_table(tiny.manifest / "manifest.parquet")
    assert table.num_rows == tiny.n_tasks == manifest.num_rows
    assert sorted(table.column("task_id").to_pylist()) == sorted(manifest.column("task_id").to_pylist())
    assert set(table.schema.names) == set(COLUMN_NAMES)
    assert table.schema.field("image").type == pa.list_(pa.float32()) or pa.types.is_list(table.schema.field("image").type)
    # every split directory holds only its own rows
    by_split = {s: n for s, n in zip(*pa.compute.value_counts(table.column("region_split").cast(pa.string())).flatten())}
    meta = read_metadata(str(baseline["data"]))
    assert {k.as_py(): v.as_py() for k, v in by_split.items()} == meta["rows_per_split"]
    assert meta["rows"] == tiny.n_tasks
    assert meta["pixel_layout"] == json.loads(json.dumps(PIXEL_LAYOUT))
    assert meta["columns"]["arc_flux_r"]["unit"] == "nmgy"
    assert len(meta["bank"]["sha256"]) == 64 and meta["bank"]["hlr_filter_arcsec"] == [0.1, 1.0]
    assert meta["manifest"]["tasks"] == tiny.n_tasks and len(meta["manifest"]["sha256"]) == 64
    assert meta["files"] >= 1 and meta["bytes"] > 0
    assert baseline["hash"]["rows"] == baseline["hash"]["distinct_task_ids"] == tiny.n_tasks
    # the step's measured core-hours beside the plan's (issue 19): local[2] holds 2 cores for the step
    cost = meta["cost"]
    assert cost["cores"] == 2 and cost["planned_core_hours"] == 0.0125
    assert cost["actual_core_hours"] == pytest.approx(meta["timing"]["step_s"] * 2 / 3600, abs=2e-6)
    ok = table.filter(table.column("cutout_ok")).num_rows
    print(f"\n4c local[2]: {tiny.n_tasks} stamps in {baseline['wall_s']:.1f} s end to end "
          f"({tiny.n_tasks / baseline['wall_s']:.2f} stamps/s incl. Spark start-up; job "
          f"{meta['timing']['stamps_per_s']} stamps/s); {ok} ok; {meta['files']} files, {meta['bytes']} bytes")


def test_complete_output_is_skipped_or_refused(tiny, baseline):
    common = ["--manifest-uri", str(tiny.manifest), "--coadd-cache-prefix", str(tiny.coadd_prefix),
              "--cosmos-bank-h5", str(tiny.bank), "--output-prefix", str(baseline["root"])]
    before = {p: p.stat().st_mtime_ns for p in baseline["data"].rglob("*")}
    skipped = run_module("emr_steps.inject", common + ["--skip-if-exists", "1"])
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert '"skipped": true' in skipped.stdout
    refused = run_module("emr_steps.inject", common)
    assert refused.returncode == 2 and "--skip-if-exists 1" in refused.stderr
    assert {p: p.stat().st_mtime_ns for p in baseline["data"].rglob("*")} == before  # untouched


def test_completeness_notices_a_different_manifest_and_lost_files(tmp_path, baseline):
    meta = read_metadata(str(baseline["data"]))
    sha, n = meta["manifest"]["sha256"], meta["rows"]
    assert completeness(str(baseline["data"]), manifest_sha256=sha, tasks=n) == (True, "complete")
    assert not completeness(str(baseline["data"]), manifest_sha256="0" * 64, tasks=n)[0]
    assert not completeness(str(baseline["data"]), manifest_sha256=sha, tasks=n + 1)[0]
    import shutil

    copy = tmp_path / "phase4c"
    shutil.copytree(baseline["data"], copy)
    next(copy.rglob("part-*.parquet")).unlink()
    ok, reason = completeness(str(copy), manifest_sha256=sha, tasks=n)
    assert not ok and "data files" in reason


def _tasks_batches(tiny):
    return pq.read_table(tiny.manifest / "manifest.parquet").sort_by([("brickname", "ascending"), ("task_id", "ascending")]).to_batches(max_chunksize=5)


def _settings(tiny, coadd_prefix):
    from pipeline import __version__
    from pipeline.config import load_run_config

    return {"run_config": load_run_config("demo").to_dict(), "run_id": "4c-test", "pipeline_version": __version__,
            "bank_uri": str(tiny.bank), "coadd_prefix": str(coadd_prefix)}


def test_brick_that_cannot_load_gives_failed_rows_naming_it(tiny, tmp_path):
    """The executor body, in process: a brick without files -> failed rows for all its tasks."""
    from emr_steps.inject import inject_partition

    lost = tiny.bricks[0]
    prefix = remove_brick(tiny.coadd_prefix, lost, tmp_path / "coadd")
    out = pa.Table.from_batches(list(inject_partition(_tasks_batches(tiny), settings=_settings(tiny, prefix))))
    assert out.num_rows == tiny.n_tasks and len(set(out.column("task_id").to_pylist())) == tiny.n_tasks
    rows = out.to_pylist()
    lost_rows = [r for r in rows if r["brickname"] == lost]
    assert lost_rows and all(not r["cutout_ok"] and lost in r["cutout_error"] and r["image"] is None for r in lost_rows)
    assert any(r["cutout_ok"] for r in rows if r["brickname"] != lost)


def test_unexpected_exception_in_a_brick_does_not_kill_the_partition(tiny, monkeypatch):
    import pipeline.survey.coadds as coadds
    from emr_steps.inject import inject_partition

    real = coadds.load_brick
    bad = tiny.bricks[-1]

    def flaky(prefix, brickname, bands):
        if brickname == bad:
            raise MemoryError("simulated executor trouble")
        return real(prefix, brickname, bands)

    monkeypatch.setattr(coadds, "load_brick", flaky)
    out = pa.Table.from_batches(list(inject_partition(_tasks_batches(tiny), settings=_settings(tiny, tiny.coadd_prefix)))).to_pylist()
    assert len(out) == tiny.n_tasks
    bad_rows = [r for r in out if r["brickname"] == bad]
    assert bad_rows and all("MemoryError: simulated executor trouble" in r["cutout_error"] for r in bad_rows)


def test_bad_inputs_stop_before_any_output(tiny, tmp_path):
    out = tmp_path / "D"
    proc = run_module("emr_steps.inject", ["--manifest-uri", str(tiny.manifest), "--coadd-cache-prefix", str(tiny.coadd_prefix),
                                           "--cosmos-bank-h5", str(tmp_path / "missing.h5"), "--output-prefix", str(out)])
    assert proc.returncode == 2 and "missing.h5" in proc.stderr
    grz = run_module("emr_steps.inject", ["--manifest-uri", str(tiny.manifest), "--coadd-cache-prefix", str(tiny.coadd_prefix),
                                          "--cosmos-bank-h5", str(tiny.bank), "--output-prefix", str(out), "--bands", "grz"])
    assert grz.returncode == 2 and "g,r,z" in grz.stderr
    assert not out.exists()
