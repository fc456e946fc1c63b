"""Promotion: record that exactly these bytes passed exactly this gate. Never copies or deletes data.

What a promotion writes, in this order (each step only after the previous one succeeded):
1. D/promotions/<seq>.json  the record, in an append-only history: created only if absent
   (O_EXCL / S3 If-None-Match), never rewritten, so two concurrent promotions cannot both claim
   the same place and no promotion is ever lost from the history;
2. D/promotion.json         the current record, replaced only if it is still the version read at
   the start (If-Match / compare-and-swap): no lost update;
3. D/CURRENT                -> the promoted data folder (one atomic write).
A promotion is current only while D/CURRENT points at its data: moving CURRENT to anything else
(a hand-run `dhs compact`, another tool) withdraws it, and `verify_promoted` refuses it.

The record binds the verdict to the data: the immutable data URI (D/compacted/<content address>)
and its content checksum (re-computed here from the files, and compared with what the validation
judged), the suite that passed and the run config's minimum suite, the code version, the run and
the validation URI.
"""

from __future__ import annotations

import json
import posixpath
from datetime import datetime, timezone

from pipeline import conditional_io, storage
from pipeline.errors import InputError

PROMOTION_FILE = "promotion.json"
HISTORY_DIR = "promotions"
RECORD_FORMAT = "dhs-promotion/2"


class PromotionRefused(Exception):
    """The dataset may not be promoted (gate failed, data changed since validation, suite too weak,
    another promotion won the race)."""


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
    if not isinstance(doc, dict) or "passed" not in doc or "dataset" not in doc:
        raise InputError(uri, "not a dhs validation.json (no 'passed' / 'dataset')")
    return uri, doc


def relative_to_root(root: str, data_uri: str) -> str:
    """data_uri as a path relative to the dataset root (what D/CURRENT holds)."""
    root, data = storage.normalize(root), storage.normalize(data_uri)
    if not data.startswith(root + "/"):
        raise PromotionRefused(f"the validated data {data_uri} is not inside the dataset root {root}: only a folder "
                               f"of the dataset itself can become its current data")
    return data[len(root) + 1:]


def history(dataset_uri: str) -> list[dict]:
    """Every promotion of the dataset, oldest first (D/promotions/<seq>.json)."""
    prefix = storage.join(dataset_uri, HISTORY_DIR)
    out = []
    if not storage.exists(prefix):
        return out
    for uri in sorted(storage.list_files(prefix, ".json")):
        try:
            doc = json.loads(storage.read_bytes(uri))
        except (ValueError, InputError):
            continue
        if isinstance(doc, dict) and doc.get("format") == RECORD_FORMAT:
            out.append(doc)
    return sorted(out, key=lambda d: int(d.get("sequence", 0)))


def last_promotion_of(dataset_uri: str, run_config_variant: str) -> dict | None:
    """The newest promotion of the dataset made from a run config of this variant (drift reference)."""
    same = [r for r in history(dataset_uri) if (r.get("run_config") or {}).get("variant") == run_config_variant]
    return same[-1] if same else None


def _check_validation(val_uri: str, val: dict) -> None:
    if not val["passed"]:
        n = len(val.get("failures", []))
        raise PromotionRefused(f"validation {val_uri} FAILED ({n} failed check(s)); the dataset stays unpromoted:\n  "
                               + "\n  ".join(val.get("failures", [])))
    policy = val.get("suite_policy") or {}
    if not policy:
        raise PromotionRefused(f"validation {val_uri} records no suite policy (written by an older gate): validate "
                               f"it again")
    if not policy.get("satisfied"):
        raise PromotionRefused(f"validation {val_uri} ran suite {policy.get('suite')!r}, weaker than "
                               f"{policy.get('min_gate_suite')!r} that its run config requires")
    from pipeline.gate.thresholds import load_thresholds, strictness_gaps  # noqa: PLC0415

    # again from today's suite files: a suite edited since the validation cannot sneak through
    gaps = strictness_gaps(load_thresholds(policy["suite"]), load_thresholds(policy["min_gate_suite"]))
    if gaps:
        raise PromotionRefused(f"suite {policy['suite']!r} is weaker than {policy['min_gate_suite']!r} "
                               f"(min_gate_suite of the run config): {'; '.join(gaps[:3])}")


def promote_dataset(dataset_uri: str, *, validation: str, record_out: str | None = None,
                    expected: dict | None = None) -> tuple[str, dict]:
    """Promote the data `validation` judged; return (record URI, record). Raises PromotionRefused.

    `expected` ({"data_uri", "content_checksum"}, e.g. from the run's compact receipt via the
    gate task) must name the same data the validation judged. `record_out` writes the current
    record elsewhere than D/promotion.json (CURRENT and the history stay with D)."""
    from pipeline import dataset  # noqa: PLC0415 - numpy/pyarrow stay out of the Airflow plugins' import

    val_uri, val = load_validation(validation)
    _check_validation(val_uri, val)
    root = storage.normalize(dataset_uri)
    data_uri = val["dataset"].get("data_uri")
    recorded = val["dataset"].get("content_checksum")
    if not data_uri or not recorded:
        raise PromotionRefused(f"validation {val_uri} names no data URI / checksum: validate again")
    if expected and (storage.normalize(expected["data_uri"]) != storage.normalize(data_uri) or expected["content_checksum"] != recorded):
        raise PromotionRefused(f"validation {val_uri} judged {data_uri} (checksum {recorded[:16]}), but this run "
                               f"produced {expected['data_uri']} (checksum {expected['content_checksum'][:16]})")
    rel = relative_to_root(root, data_uri)
    files = dataset.list_data_files(data_uri)
    checksum = dataset.files_checksum(files)
    if checksum != recorded:
        raise PromotionRefused(f"dataset {data_uri} changed since validation {val_uri}: content checksum "
                               f"{checksum[:16]} != validated {recorded[:16]}; validate it again")

    record_uri = record_out or storage.join(root, PROMOTION_FILE)
    current_bytes, current_version = conditional_io.read_versioned(record_uri)
    current = _json_or_none(current_bytes)
    if (current and current.get("content_checksum") == checksum and current.get("data_uri") == data_uri
            and (current.get("validation") or {}).get("uri") == val_uri):
        # idempotent: same data, same validation -> the same record (and CURRENT on it)
        if storage.normalize(dataset.resolve_data_uri(root)) != storage.normalize(data_uri):
            dataset.set_current(root, rel)
        return record_uri, current

    previous = history(root)
    seq = (int(previous[-1]["sequence"]) + 1) if previous else 1
    from pipeline import __version__ as pipeline_version  # noqa: PLC0415

    record = {
        "format": RECORD_FORMAT,
        "sequence": seq,
        "dataset_uri": root,
        "data_uri": data_uri,
        "current_pointer": rel,
        "content_checksum": checksum,
        "checksum_method": "sha256 over sorted (relative path, size, sha256 | S3 ETag) of the Parquet files",
        "rows_per_split": val["dataset"].get("rows_per_split"),
        "files": len(files),
        "suite": val.get("suite") or val.get("variant"),
        "min_gate_suite": (val.get("suite_policy") or {}).get("min_gate_suite"),
        "run": val.get("run"),
        "run_config": val.get("run_config") or {},
        "code": {**(val.get("code") or {}), "promoted_by": pipeline_version, "promoted_by_commit": dataset.git_commit()},
        "validation": {"uri": val_uri, "timestamp": val.get("timestamp"), "variant": val.get("variant"),
                       "profile_uri": posixpath.join(posixpath.dirname(val_uri), "profile.json")
                       if storage.is_s3(val_uri) else str(_sibling(val_uri, "profile.json"))},
        "previous": ({"sequence": previous[-1]["sequence"], "content_checksum": previous[-1]["content_checksum"],
                      "data_uri": previous[-1]["data_uri"]} if previous else None),
        "promoted_at": datetime.now(timezone.utc).isoformat(),
    }
    body = json.dumps(record, indent=1, default=str).encode()
    history_uri = storage.join(root, HISTORY_DIR, f"{seq:06d}.json")
    try:
        conditional_io.create_exclusive(history_uri, body)
    except conditional_io.ConflictError:
        raise PromotionRefused(f"another promotion of {root} was written at the same time ({history_uri} exists); "
                               f"nothing was changed: promote again") from None
    try:
        conditional_io.replace_if_version(record_uri, body, current_version)
    except conditional_io.ConflictError as exc:
        raise PromotionRefused(f"{record_uri} changed while promoting ({exc.problem}); the history keeps "
                               f"{history_uri}, but it is not current: promote again") from None
    dataset.set_current(root, rel)
    return record_uri, record


def _sibling(uri: str, name: str):
    from pathlib import Path  # noqa: PLC0415

    return Path(uri).with_name(name)


def _json_or_none(data: bytes | None):
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
