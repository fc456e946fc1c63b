"""Promotion: record that a dataset passed its gate. Never moves, copies or deletes data.

The record (DATASET/promotion.json by default) pins the dataset's content checksum: promotion
refuses when the data files changed after validation, and promoting twice returns the same record.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from pipeline import storage
from pipeline.errors import InputError
from pipeline.gate import datasets


class PromotionRefused(Exception):
    """The dataset may not be promoted (gate failed, or data changed since validation)."""


def load_validation(validation_uri: str) -> tuple[str, dict]:
    uri = str(validation_uri)
    if not uri.endswith(".json"):
        uri = storage.join(uri, "validation.json")
    if not storage.exists(uri):
        raise InputError(uri, "no validation.json: the validation did not finish (or this is not a validation "
                              "folder); run `dhs validate` again")
    try:
        doc = json.loads(storage.read_bytes(uri))
    except ValueError as exc:
        raise InputError(uri, f"not valid JSON: {exc}") from None
    if "passed" not in doc or "dataset" not in doc:
        raise InputError(uri, "not a dhs validation.json (no 'passed' / 'dataset')")
    return uri, doc


def promote_dataset(dataset_uri: str, *, validation: str, record_out: str | None = None) -> tuple[str, dict]:
    """Write the promotion record; return (record URI, record). Raises PromotionRefused."""
    val_uri, val = load_validation(validation)
    if not val["passed"]:
        n = len(val.get("failures", []))
        raise PromotionRefused(f"validation {val_uri} FAILED ({n} failed check(s)); the dataset stays unpromoted:\n  "
                               + "\n  ".join(val.get("failures", [])))
    ds = datasets.open_dataset(dataset_uri)
    checksum = datasets.content_checksum(ds.files)
    recorded = val["dataset"].get("content_checksum")
    if checksum != recorded:
        raise PromotionRefused(f"dataset {ds.data_uri} changed since validation {val_uri}: content checksum "
                               f"{checksum[:12]} != validated {str(recorded)[:12]}; validate it again")
    record_uri = record_out or storage.join(ds.dataset_uri, "promotion.json")
    if storage.exists(record_uri):
        try:
            old = json.loads(storage.read_bytes(record_uri))
        except ValueError:
            old = {}
        if old.get("content_checksum") == checksum and old.get("validation", {}).get("uri") == val_uri:
            return record_uri, old  # idempotent: same data, same validation -> the same record
    record = {
        "dataset_uri": ds.dataset_uri,
        "data_uri": ds.data_uri,
        "content_checksum": checksum,
        "checksum_method": "sha256 over sorted (relative path, size, sha256 | S3 ETag) of the Parquet files",
        "rows_per_split": val["dataset"].get("rows_per_split"),
        "files": len(ds.files),
        "profile": val.get("profile"),
        "validation": {"uri": val_uri, "timestamp": val.get("timestamp"), "variant": val.get("variant")},
        "promoted_at": datetime.now(timezone.utc).isoformat(),
    }
    storage.write_bytes(record_uri, json.dumps(record, indent=1, default=str).encode())
    return record_uri, record
