"""Downstream of promotion: runs only when a dataset has been promoted (an Asset event), verifies it
before anything is read, and hands the verified, immutable data URI to training (out of scope:
the `train` task only logs what it would read).

The verification (dhs_airflow.consume -> pipeline.gate.verify, also `dhs verify-promoted`) refuses, failing this run, when
the promotion was withdrawn or replaced, when any data file changed after promotion, when the
validation it cites did not pass or judged other data, or when the suite is weaker than the run
config's minimum.
"""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import DAG, task

from dhs_airflow.consume import verify_promotion_events
from dhs_airflow.promote import TRAINING_DATASET

log = logging.getLogger(__name__)

with DAG(
    dag_id="dhs_training_consumer",
    description="Starts when a Phase 4 dataset is promoted; verifies it, then hands its data URI to training",
    schedule=[TRAINING_DATASET],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["dark-halo-scope", "training"],
) as dag:

    @task
    def verify_promotion(triggering_asset_events=None):
        return verify_promotion_events(triggering_asset_events)

    @task
    def train(verified: list):
        for v in verified:
            log.info("training would read %s (content checksum %s, passed suite %s)", v["data_uri"],
                     v["content_checksum"], v["suite"])
        return verified

    train(verify_promotion())
