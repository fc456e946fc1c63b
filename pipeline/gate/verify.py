"""Before anything reads a promoted dataset: is it still exactly what the gate passed?

`verify_promoted(D)` re-checks, and refuses with PromotionInvalid naming what failed:
1. D/promotion.json exists and is a promotion record;
2. it is the promotion the caller was told about (the Asset event's data URI and checksum), when
   given;
3. it is current: D/CURRENT points at its data (moving CURRENT withdraws a promotion);
4. the data files' content checksum, recomputed now (sha256 of every local file, the ETag of
   every S3 object), equals the record's: one changed byte in one file is refused;
5. the validation it cites passed, judged that very checksum and data URI, and ran the suite the
   record names;
6. that suite is at least as strict as the run config's minimum suite (and as `min_suite`, when
   the consumer demands more), computed from today's suite files.
Returns the record; the caller reads `record["data_uri"]`, never D/CURRENT.
"""

from __future__ import annotations

import json

from pipeline import storage
from pipeline.errors import InputError
from pipeline.gate.promote import PROMOTION_FILE, RECORD_FORMAT, load_validation


class PromotionInvalid(Exception):
    """The promoted dataset must not be read: the message says why."""


def verify_promoted(dataset_uri: str, *, expect_data_uri: str | None = None, expect_checksum: str | None = None,
                    min_suite: str | None = None) -> dict:
    from pipeline import dataset  # noqa: PLC0415 - numpy/pyarrow stay out of the consumer DAG's import

    root = storage.normalize(dataset_uri)
    record_uri = storage.join(root, PROMOTION_FILE)
    if not storage.exists(record_uri):
        raise PromotionInvalid(f"{root}: nothing is promoted (no {PROMOTION_FILE})")
    try:
        record = json.loads(storage.read_bytes(record_uri))
    except ValueError as exc:
        raise PromotionInvalid(f"{record_uri}: not valid JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise PromotionInvalid(f"{record_uri}: not a {RECORD_FORMAT} promotion record (promote the dataset again)")
    data_uri, checksum = record["data_uri"], record["content_checksum"]

    if expect_data_uri is not None and storage.normalize(expect_data_uri) != storage.normalize(data_uri):
        raise PromotionInvalid(f"the promotion you were told about ({expect_data_uri}) is no longer current: "
                               f"{record_uri} now promotes {data_uri}")
    if expect_checksum is not None and expect_checksum != checksum:
        raise PromotionInvalid(f"the promotion you were told about (checksum {expect_checksum[:16]}) is no longer "
                               f"current: {record_uri} now has checksum {checksum[:16]}")

    try:
        current = dataset.resolve_data_uri(root)
    except InputError as exc:
        raise PromotionInvalid(f"{root}/CURRENT is unreadable ({exc.problem}): the promotion is withdrawn") from None
    if storage.normalize(current) != storage.normalize(data_uri):
        raise PromotionInvalid(f"the promotion of {data_uri} is withdrawn: {root}/CURRENT now points at {current}")

    files = dataset.list_data_files(data_uri)
    if not files:
        raise PromotionInvalid(f"{data_uri}: the promoted data files are gone")
    found = dataset.files_checksum(files)
    if found != checksum:
        raise PromotionInvalid(f"{data_uri} changed after promotion: content checksum {found[:16]} != promoted "
                               f"{checksum[:16]} ({record_uri}); do not train on it; validate and promote it again")

    val_ref = (record.get("validation") or {}).get("uri")
    try:
        val_uri, val = load_validation(val_ref)
    except InputError as exc:
        raise PromotionInvalid(f"the validation the promotion cites is unusable: {exc}") from None
    if not val.get("passed"):
        raise PromotionInvalid(f"{val_uri} did not pass, yet {record_uri} cites it")
    if val["dataset"].get("content_checksum") != checksum or storage.normalize(val["dataset"].get("data_uri", "")) != storage.normalize(data_uri):
        raise PromotionInvalid(f"{val_uri} judged {val['dataset'].get('data_uri')} (checksum "
                               f"{str(val['dataset'].get('content_checksum'))[:16]}), not the promoted {data_uri} "
                               f"({checksum[:16]})")
    suite = record.get("suite")
    if (val.get("suite") or val.get("variant")) != suite:
        raise PromotionInvalid(f"{record_uri} says suite {suite!r}, but {val_uri} ran {val.get('suite') or val.get('variant')!r}")

    from pipeline.gate.thresholds import load_thresholds, strictness_gaps  # noqa: PLC0415

    for need, why in ((record.get("min_gate_suite"), "its run config's minimum suite"), (min_suite, "the suite you require")):
        if not need:
            continue
        try:
            gaps = strictness_gaps(load_thresholds(suite), load_thresholds(need))
        except InputError as exc:
            raise PromotionInvalid(f"cannot compare suite {suite!r} with {need!r}: {exc}") from None
        if gaps:
            raise PromotionInvalid(f"{data_uri} passed suite {suite!r}, which is weaker than {need!r} ({why}): "
                                   + "; ".join(gaps[:3]))
    return record
