"""The run's hold on its output prefix (pipeline.run_lock), as a setup / teardown pair of tasks:
`acquire_lock` right after the plan, before any Spark step; `release_lock` at the very end,
however the run ended (a teardown does not decide the run's state: a failed gate still fails it)."""

from __future__ import annotations

from airflow.sdk import task


@task
def acquire_lock(dataset_uri: str, pipeline_run: str):
    """Refuse the run (no retry) when another run holds the prefix, naming the holder."""
    from airflow.sdk.exceptions import AirflowFailException  # noqa: PLC0415
    from pipeline import run_lock  # noqa: PLC0415

    try:
        return run_lock.acquire(dataset_uri, pipeline_run)
    except run_lock.LockHeld as exc:
        raise AirflowFailException(f"refused before anything ran: {exc}") from None


@task
def release_lock(dataset_uri: str, pipeline_run: str):
    """Let go of the prefix if this run holds it (never another run's lock)."""
    from pipeline import run_lock  # noqa: PLC0415

    return {"released": run_lock.release(dataset_uri, pipeline_run)}
