"""A dataset's metadata file `_dhs_dataset.json`: what it records, how it is written and read.

`_dhs_dataset.json` is written LAST, after the data has been verified: its presence with a
matching manifest checksum and row count is what "complete" means
(pipeline.dataset.layout.completeness, `--skip-if-exists`).

Two readers, two contracts:
- `read_metadata`: a `dhs-dataset/1` document written by this pipeline, or None when there is
  none (an incomplete or foreign directory); InputError when the file is not valid JSON or not
  that format;
- `read_any_metadata`: whatever JSON the producer left there, {} when absent (the gate also
  judges bare Spark outputs and the benchmark table, and looks the run config up in whatever
  they recorded); InputError only when it is not valid JSON.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline import __version__ as PIPELINE_VERSION
from pipeline import storage
from pipeline.contract import COLUMNS, PIXEL_LAYOUT
from pipeline.errors import InputError
from pipeline.pixels import STORAGE_QUANTIZATION

METADATA_FILE = "_dhs_dataset.json"
FORMAT = "dhs-dataset/1"


def column_docs() -> dict[str, dict[str, Any]]:
    """Column -> type, unit, doc, nullability, as written into the metadata."""
    return {
        c.name: {
            "type": str(c.type),
            "unit": c.unit,
            "doc": c.doc,
            "nullable": c.nullable,
            "null_for_controls": c.injection_only,
        }
        for c in COLUMNS
    }


def git_commit() -> str | None:
    """The code's git commit: DHS_GIT_COMMIT (set when the wheel is built for EMR) or `git`."""
    if os.environ.get("DHS_GIT_COMMIT"):
        return os.environ["DHS_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_metadata(
    *,
    stage: str,
    run_id: str,
    run_config: Mapping[str, Any],
    rows_per_split: Mapping[str, int],
    files: int,
    bytes_: int,
    manifest: Mapping[str, Any] | None = None,
    bank: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `_dhs_dataset.json` document. `manifest` = {uri, sha256, tasks, tasks_per_split};
    `bank` = {uri, sha256, hlr_filter_arcsec, n_galaxies}."""
    meta = {
        "format": FORMAT,
        "stage": stage,
        "run_id": run_id,
        "pipeline_version": PIPELINE_VERSION,
        "git_commit": git_commit(),
        "created_utc": utc_now(),
        "variant": run_config.get("variant"),
        "experiment_id": run_config.get("experiment_id"),
        "run_config": dict(run_config),
        "manifest": dict(manifest or {}),
        "bank": dict(bank or {}),
        "pixel_layout": PIXEL_LAYOUT,
        "pixel_quantization": STORAGE_QUANTIZATION,
        "columns": column_docs(),
        "partitioning": ["region_split"],
        "rows_per_split": {k: int(v) for k, v in sorted(rows_per_split.items())},
        "rows": int(sum(rows_per_split.values())),
        "files": int(files),
        "bytes": int(bytes_),
    }
    meta.update(extra or {})
    return meta


def write_metadata(data_uri: str, meta: Mapping[str, Any]) -> str:
    uri = storage.join(data_uri, METADATA_FILE)
    storage.write_bytes(uri, (json.dumps(meta, indent=2, sort_keys=True, default=_json_default) + "\n").encode())
    return uri


def remove_metadata(data_uri: str) -> None:
    """Delete `_dhs_dataset.json` (the completeness marker) before its data is replaced."""
    storage.delete(storage.join(data_uri, METADATA_FILE))


def read_metadata(data_uri: str) -> dict[str, Any] | None:
    """The dataset's metadata, or None when there is none (an incomplete or foreign directory).
    A metadata file that exists but is not valid JSON raises InputError naming it."""
    uri = storage.join(data_uri, METADATA_FILE)
    if not storage.exists(uri):
        return None
    try:
        meta = json.loads(storage.read_bytes(uri))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(uri, f"not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(uri, f"not a {FORMAT} metadata document")
    return meta


def read_any_metadata(data_uri: str) -> dict:
    """`_dhs_dataset.json` next to the data, whoever wrote it (run config, bank sha256 and hlr
    filter, rows per split); {} when absent (the gate then falls back to the manifest and the
    built-in config). Not valid JSON: InputError naming it."""
    uri = storage.join(data_uri, METADATA_FILE)
    if not storage.exists(uri):
        return {}
    try:
        return json.loads(storage.read_bytes(uri))
    except ValueError as exc:
        raise InputError(uri, f"not valid JSON: {exc}") from None


def jsonable(obj):
    """`obj` as it reads back from the metadata file (tuples as lists, numpy scalars as numbers)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (tuple, set, np.ndarray)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
