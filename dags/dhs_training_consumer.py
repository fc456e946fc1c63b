"""Downstream of promotion: runs only when a dataset has been promoted (an Asset event), and logs
what a training job would read. Training itself is out of scope; this DAG shows the contract."""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import DAG, task

from dhs_airflow.promote import TRAINING_DATASET

log = logging.getLogger(__name__)

with DAG(
    dag_id="dhs_training_consumer",
    description="Starts when a Phase 4 dataset is promoted; logs the promoted dataset and its record",
    schedule=[TRAINING_DATASET],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["dark-halo-scope", "training"],
) as dag:

    @task
    def log_promoted_dataset(triggering_asset_events=None):
        records = []
        for asset, events in (triggering_asset_events or {}).items():
            for event in events:
                extra = dict(event.extra or {})
                log.info("promoted dataset %s (asset %s): %s", extra.get("dataset_uri"), asset, extra)
                records.append(extra)
        if not records:
            raise RuntimeError("started without a promotion event: training must only follow a passing gate")
        return records

    log_promoted_dataset()
