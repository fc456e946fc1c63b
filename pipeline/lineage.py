"""The identity chain of one pipeline run: what each step wrote, so the next step can check it.

Every run has a name (the Airflow run id, made safe: `run_name`). Each step of that run leaves a
receipt under the dataset root:

    D/runs/<run>/inject.json    {"data_uri": D/phase4c, "content_checksum": ..., ...}
    D/runs/<run>/compact.json   {"data_uri": D/compacted/<id>, "content_checksum": ..., "source_checksum": ...}

The compact step reads exactly the data its run's inject receipt names (never whatever
`D/CURRENT` points at) and refuses it when its content checksum differs from the receipt's; the
validation reads the compact receipt the same way; the gate and the promotion check that the
validation judged those very bytes. A mismatch anywhere raises `ChainBroken`, naming both ends.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pipeline import storage
from pipeline.errors import InputError

RUNS_DIR = "runs"
#: A run name is a path segment and a spark-submit argument: a safe alphabet, no leading '-' or '.'.
RUN_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,119}")
STEPS = ("inject", "compact")


class ChainBroken(Exception):
    """Two links of the identity chain disagree (the data is not what the previous step wrote)."""


def safe_run_name(airflow_run_id: str | None) -> str:
    """An Airflow run id as a run name (characters outside the safe alphabet become '_')."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", airflow_run_id or "manual")[:120]
    return name if RUN_NAME_PATTERN.fullmatch(name) else f"r{name}"[:120]


def check_run_name(run: str, *, source: str = "--pipeline-run") -> str:
    if not isinstance(run, str) or not RUN_NAME_PATTERN.fullmatch(run):
        raise InputError(source, "a run name is 1-120 characters of A-Z a-z 0-9 _ . - and starts with a letter "
                                 f"or digit; got {run!r}")
    return run


def receipt_uri(root: str, run: str, step: str) -> str:
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}")
    return storage.join(root, RUNS_DIR, check_run_name(run), f"{step}.json")


def data_fingerprint(data_uri: str) -> dict[str, Any]:
    """{"data_uri", "content_checksum", "files", "bytes"} of a data folder's Parquet files (the
    gate's checksum: sha256 of every local file, the ETag of every S3 object)."""
    from pipeline.dataset import files_checksum, list_data_files  # noqa: PLC0415

    files = list_data_files(data_uri)
    if not files:
        raise InputError(data_uri, "no Parquet data files")
    return {"data_uri": data_uri, "content_checksum": files_checksum(files), "files": len(files),
            "bytes": sum(f.size_bytes for f in files)}


def write_receipt(root: str, run: str, step: str, doc: dict[str, Any]) -> str:
    """Write (or, on a retry of the same step, replace) the step's receipt."""
    uri = receipt_uri(root, run, step)
    storage.write_bytes(uri, (json.dumps({"run": run, "step": step, **doc}, indent=1, sort_keys=True, default=str)
                              + "\n").encode())
    return uri


def read_receipt(root: str, run: str, step: str) -> dict[str, Any]:
    uri = receipt_uri(root, run, step)
    if not storage.exists(uri):
        raise InputError(uri, f"no {step} receipt for run {run!r}: the {step} step of this run did not finish")
    try:
        doc = json.loads(storage.read_bytes(uri))
    except ValueError as exc:
        raise InputError(uri, f"not valid JSON: {exc}") from None
    for key in ("data_uri", "content_checksum"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise InputError(uri, f"not a {step} receipt (no {key})")
    if doc.get("run") != run:
        raise InputError(uri, f"belongs to run {doc.get('run')!r}, not {run!r}")
    return doc


def check_same_data(*, found: dict, expected: dict, found_what: str, expected_what: str) -> None:
    """ChainBroken unless both name the same data URI and content checksum."""
    if storage.normalize(found["data_uri"]) != storage.normalize(expected["data_uri"]):
        raise ChainBroken(f"{found_what} is {found['data_uri']}, but {expected_what} is {expected['data_uri']}")
    if found["content_checksum"] != expected["content_checksum"]:
        raise ChainBroken(f"{found_what} ({found['data_uri']}) has content checksum {found['content_checksum'][:16]}, "
                          f"but {expected_what} recorded {expected['content_checksum'][:16]}: the data changed in "
                          f"between")
