"""What the training consumer does with the promotion events that started it: verify each one
(pipeline.gate.verify, also `dhs verify-promoted`) before anything is read."""

from __future__ import annotations

import logging
from typing import Any, Mapping

log = logging.getLogger(__name__)


def verify_promotion_events(triggering_asset_events: Mapping[Any, Any] | None) -> list[dict]:
    """The verified promotions (data URI, checksum, suite, sequence, run), one per event. Fails the
    task (AirflowFailException) on any event that does not verify, and when there is none:
    training must only follow a passing gate."""
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
