"""Promotion: the only task with an Asset outlet. Training DAGs schedule on TRAINING_DATASET, so
they start only after a gate has passed and a promotion record exists; each event carries what a
consumer needs to verify before it reads (pipeline.gate.verify)."""

from __future__ import annotations

from airflow.sdk import Asset, task

#: The promoted training dataset. Each promotion's record travels as the asset event's extra.
TRAINING_DATASET = Asset(name="dhs_training_dataset", uri="dhs://training-dataset", group="dark-halo-scope")


def event_extra(record_uri: str, record: dict) -> dict:
    """The Asset event's extra: the immutable data URI and checksum the gate passed, the suite,
    the run config, the code version and where the validation and the record are."""
    return {
        "dataset_uri": record["dataset_uri"],
        "data_uri": record["data_uri"],
        "content_checksum": record["content_checksum"],
        "suite": record.get("suite"),
        "min_gate_suite": record.get("min_gate_suite"),
        "run_config_variant": (record.get("run_config") or {}).get("variant"),
        "run_config_sha256": (record.get("run_config") or {}).get("sha256"),
        "code_version": (record.get("code") or {}).get("rows_written_by"),
        "git_commit": (record.get("code") or {}).get("rows_git_commit"),
        "run": record.get("run"),
        "sequence": record.get("sequence"),
        "rows_per_split": record.get("rows_per_split") or {},
        "promotion_record": record_uri,
        "validation": (record.get("validation") or {}).get("uri", ""),
    }


@task(outlets=[TRAINING_DATASET])
def promote_dataset(dataset_uri: str, gate_summary: dict, *, outlet_events=None):
    """Promote exactly the data the gate passed (refused unless the gate passed, the data is
    unchanged since validation and the suite meets the run config's minimum) and attach the record
    to the asset event."""
    from airflow.sdk.exceptions import AirflowFailException  # noqa: PLC0415
    from pipeline.gate.promote import PromotionRefused, promote_dataset as promote  # noqa: PLC0415

    if not gate_summary or not gate_summary.get("passed"):
        raise AirflowFailException("refusing to promote: the gate did not pass")
    expected = None
    if gate_summary.get("data_uri") and gate_summary.get("content_checksum"):
        expected = {"data_uri": gate_summary["data_uri"], "content_checksum": gate_summary["content_checksum"]}
    try:
        record_uri, record = promote(dataset_uri, validation=gate_summary["validation_json"], expected=expected)
    except PromotionRefused as exc:
        raise AirflowFailException(str(exc)) from None
    outlet_events[TRAINING_DATASET].extra = event_extra(record_uri, record)
    return {"record_uri": record_uri, **{k: record[k] for k in ("dataset_uri", "data_uri", "content_checksum",
                                                                 "promoted_at", "sequence")}}
