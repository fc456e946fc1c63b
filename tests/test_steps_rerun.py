"""Kill a running inject step (spark-submit, SIGKILL to its process group), rerun it, and get
exactly the rows of an uninterrupted run: same content hash, no duplicates."""

import pytest

from emr_steps.steps import inject_step, run_local, start_local
from pipeline.dataset import rows_digest, read_metadata
from tests.steps_fixtures import inject_params, kill_group_when, read_summary, step_env

pytest_plugins = ["tests.steps_fixtures"]  # the `tiny` and `baseline` fixtures, shared with test_steps_inject.py

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _task_files(data):
    tmp = data / "_temporary"
    return [p for p in tmp.rglob("part-*")] if tmp.exists() else []


def test_killed_run_then_rerun_equals_uninterrupted_run(tiny, baseline, tmp_path):
    out = tmp_path / "D"
    defn = inject_step(inject_params(tiny, out))
    proc = start_local(defn, env=step_env())
    try:  # killed as soon as a task has written (part of) its output
        killed_mid_write = kill_group_when(proc, lambda: bool(_task_files(out / "phase4c")), timeout_s=300)
    finally:
        proc.wait()
        proc.stdout.close()
    assert killed_mid_write, "the step finished before it could be killed; make the manifest larger"
    assert read_metadata(str(out / "phase4c")) is None  # never marked complete

    rerun = run_local(defn, env=step_env(), stream=False)
    assert rerun.returncode == 0, rerun.stdout[-4000:]
    assert read_summary(rerun.stdout)["rows"] == tiny.n_tasks
    h = rows_digest(str(out / "phase4c"))
    assert h["rows"] == h["distinct_task_ids"] == tiny.n_tasks
    assert h == baseline["hash"]
