"""What the gate judges the rows against: the manifest's task counts and identity record, the run
config and the COSMOS bank's half-light-radius filter, looked up in the dataset metadata and
manifest.json (the dataset itself is opened by pipeline.dataset.open_dataset)."""

from __future__ import annotations

import json
import posixpath

from pipeline import storage
from pipeline.errors import InputError


def manifest_identity_for(manifest_json) -> dict | None:
    """manifest.json's `identity` record (pipeline.task_identity.manifest_identity) when it is
    complete, else None: the gate then checks uniqueness and leakage on the rows alone."""
    ident = manifest_json.get("identity") if isinstance(manifest_json, dict) else None
    need = ("fingerprint", "rows", "dup_rows", "dup_examples", "multi_split", "multi_ex", "shared", "shared_ex")
    if not isinstance(ident, dict) or any(k not in ident for k in need):
        return None
    fp = ident["fingerprint"]
    if not (isinstance(fp, list) and len(fp) == 2 and all(isinstance(x, int) for x in fp)):
        return None
    if not isinstance(ident["rows"], int) or not isinstance(ident["dup_rows"], int):
        return None
    return ident


#: Keys under which the producers may record the run config and the bank filter; the first found wins.
_RUN_CONFIG_KEYS = ("run_config", "config")
_HLR_FILTER_KEYS = ("hlr_filter_arcsec", "hlr_filter", "hlr_range_arcsec")


def find_key(doc, keys):
    """Depth-first search of nested dicts for the first of `keys`; None when absent."""
    if isinstance(doc, dict):
        for k in keys:
            if k in doc:
                return doc[k]
        for v in doc.values():
            found = find_key(v, keys)
            if found is not None:
                return found
    return None


def read_manifest_counts(manifest_uri: str) -> dict:
    """{"tasks_per_split": {split: n}, "json": manifest.json or {}} for manifest `M` (or a file in it).

    The counts are manifest.json's `tasks_per_split`, which pipeline.manifest.write_manifest
    computes from the validated table; without manifest.json the table is read and checked by
    pipeline.manifest.read_manifest, the one reader of manifest.parquet."""
    from pipeline.manifest import manifest_counts, read_manifest  # noqa: PLC0415

    manifest_uri = str(manifest_uri).rstrip("/")
    base = posixpath.dirname(manifest_uri) if manifest_uri.endswith((".json", ".parquet")) else manifest_uri
    json_uri, parquet_uri = storage.join(base, "manifest.json"), storage.join(base, "manifest.parquet")
    if not storage.exists(json_uri) and not storage.exists(parquet_uri):
        raise InputError(manifest_uri, "no manifest here (need manifest.json or manifest.parquet)")
    doc = {}
    if storage.exists(json_uri):
        try:
            doc = json.loads(storage.read_bytes(json_uri))
        except ValueError as exc:
            raise InputError(json_uri, f"not valid JSON: {exc}") from None
    counts = doc.get("tasks_per_split") if isinstance(doc, dict) else None
    if counts is None:
        if not storage.exists(parquet_uri):
            raise InputError(json_uri, "no tasks_per_split, and no manifest.parquet beside it to count")
        counts = manifest_counts(read_manifest(parquet_uri))
    # write_manifest records {split: {"tasks": n, ...}}; plain {split: n} is accepted too
    try:
        tasks = {str(k): int(v["tasks"] if isinstance(v, dict) else v) for k, v in counts.items()}
    except (AttributeError, KeyError, TypeError, ValueError):
        raise InputError(json_uri, f"cannot read task counts per split from {counts!r}") from None
    tasks = {k: n for k, n in tasks.items() if n > 0}  # a split the manifest left empty is not expected
    if not tasks:
        raise InputError(manifest_uri, "the manifest has no tasks")
    return {"tasks_per_split": tasks, "json": doc}


def run_config_for(metadata: dict, manifest_json: dict, variant: str):
    """The run config the rows were made with: the dataset metadata's, else the manifest's, else
    the built-in config of the gate variant (demo / production)."""
    from pipeline.config import RunConfig, load_run_config

    for doc, name in ((metadata, "dataset metadata"), (manifest_json, "manifest.json")):
        raw = find_key(doc, _RUN_CONFIG_KEYS)
        if isinstance(raw, dict):
            known = set(RunConfig.__dataclass_fields__)
            try:
                return RunConfig(**{k: v for k, v in raw.items() if k in known})
            except (InputError, TypeError) as exc:
                raise InputError(f"{name}: run config", str(exc)) from None
    return load_run_config(variant if variant in ("demo", "production") else "demo")


def hlr_filter_for(metadata: dict, manifest_json: dict, default=(0.1, 1.0)) -> tuple[float, float]:
    """The COSMOS bank's half-light-radius filter (arcsec) recorded with the data."""
    for doc in (metadata, manifest_json):
        raw = find_key(doc, _HLR_FILTER_KEYS)
        if isinstance(raw, dict):
            raw = (raw.get("min"), raw.get("max"))
        if isinstance(raw, (list, tuple)) and len(raw) == 2 and None not in raw:
            return float(raw[0]), float(raw[1])
    return default
