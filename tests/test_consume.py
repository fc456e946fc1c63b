"""The training consumer's task (dhs_airflow.consume): nothing is handed to training without a
verified promotion. The verification itself is pipeline.gate.verify (tests/test_gate_integrity.py);
the consumer DAG end to end runs in tests/test_dag_local.py and tests/test_airflow_production.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest_plugins = ["tests.airflow_fixtures"]


def test_no_event_and_an_event_without_a_dataset_both_fail_the_task(airflow_home):
    from airflow.sdk.exceptions import AirflowFailException

    from dhs_airflow.consume import verify_promotion_events

    with pytest.raises(AirflowFailException, match="without a promotion event"):
        verify_promotion_events({})
    with pytest.raises(AirflowFailException, match="without a promotion event"):
        verify_promotion_events(None)
    with pytest.raises(AirflowFailException, match="refusing to train on the promotion of asset-x: 'dataset_uri'"):
        verify_promotion_events({"asset-x": [SimpleNamespace(extra={"data_uri": "s3://b/d"})]})


def test_a_promotion_that_does_not_verify_fails_the_task_naming_why(airflow_home, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    from dhs_airflow.consume import verify_promotion_events

    event = SimpleNamespace(extra={"dataset_uri": str(tmp_path / "D"), "data_uri": str(tmp_path / "D/compacted/c-1"),
                                   "content_checksum": "0" * 64})
    with pytest.raises(AirflowFailException, match=r"refusing to train on the promotion of a: .*promotion"):
        verify_promotion_events({"a": [event]})
