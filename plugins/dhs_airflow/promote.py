"""Promotion: the only task with an Asset outlet. Training DAGs schedule on TRAINING_DATASET, so
they start only after a gate has passed and a promotion record exists."""

from __future__ import annotations

from airflow.sdk import Asset, task

#: The promoted training dataset. Each promotion's record travels as the asset event's extra.
TRAINING_DATASET = Asset(name="dhs_training_dataset", uri="dhs://training-dataset", group="dark-halo-scope")


@task(outlets=[TRAINING_DATASET])
def promote_dataset(dataset_uri: str, gate_summary: dict, *, outlet_events=None):
    """Write the promotion record (refused unless the gate passed and the data is unchanged since
    validation) and attach it to the asset event."""
    from airflow.sdk.exceptions import AirflowFailException  # noqa: PLC0415
    from pipeline.gate.promote import PromotionRefused, promote_dataset as promote  # noqa: PLC0415

    if not gate_summary or not gate_summary.get("passed"):
        raise AirflowFailException("refusing to promote: the gate did not pass")
    try:
        record_uri, record = promote(dataset_uri, validation=gate_summary["validation_json"])
    except PromotionRefused as exc:
        raise AirflowFailException(str(exc)) from None
    outlet_events[TRAINING_DATASET].extra = {
        "dataset_uri": record["dataset_uri"],
        "content_checksum": record["content_checksum"],
        "rows_per_split": record.get("rows_per_split") or {},
        "promotion_record": record_uri,
        "validation": (record.get("validation") or {}).get("uri", ""),
    }
    return {"record_uri": record_uri, **{k: record[k] for k in ("dataset_uri", "content_checksum", "promoted_at")}}
