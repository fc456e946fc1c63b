"""Downstream of promotion: runs only when a dataset has been promoted (an Asset event), verifies it
before anything is read, and hands the verified, immutable data URI to training (out of scope:
the `train` task only logs what it would read).

The verification (pipeline.gate.verify, also `dhs verify-promoted`) refuses, failing this run, when
the promotion was withdrawn or replaced, when any data file changed after promotion, when the
validation it cites did not pass or judged other data, or when the suite is weaker than the run
config's minimum.
"""

from __future__ import annotations

import logging

import pendulum
from airflow.sdk import DAG, task

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
        from airflow.sdk.exceptions import AirflowFailException  # noqa: PLC0415
        from pipeline.gate.verify import PromotionInvalid, verify_promoted  # noqa: PLC0415

        verified = []
        for asset, events in (triggering_asset_events or {}).items():
            for event in events:
                extra = dict(event.extra or {})
                try:
                    record = verify_promoted(extra["dataset_uri"], expect_data_uri=extra.get("data_uri"),
                                             expect_checksum=extra.get("content_checksum"),
                                             min_suite=extra.get("min_gate_suite"))
                except (PromotionInvalid, KeyError) as exc:
                    raise AirflowFailException(f"refusing to train on the promotion of {asset}: {exc}") from None
                log.info("verified %s (checksum %s, suite %s)", record["data_uri"], record["content_checksum"][:16],
                         record["suite"])
                verified.append({k: record.get(k) for k in ("data_uri", "content_checksum", "suite", "sequence", "run")})
        if not verified:
            raise AirflowFailException("started without a promotion event: training must only follow a passing gate")
        return verified

    @task
    def train(verified: list):
        for v in verified:
            log.info("training would read %s (content checksum %s, passed suite %s)", v["data_uri"],
                     v["content_checksum"], v["suite"])
        return verified

    train(verify_promotion())
