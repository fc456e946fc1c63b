"""Finding and reading a Phase 4c dataset: `D` -> the data folder -> Spark DataFrame.

Layout (docs/architecture.md): `D/CURRENT` = {"data": "compacted/<stamp>"} when a compacted copy
exists, else `D/phase4c`. A path that already holds `region_split=<split>/` folders is accepted
as the data folder itself, so the gate also runs on a bare Spark output.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from dataclasses import dataclass, field

from pipeline import storage
from pipeline.errors import InputError

METADATA_FILE = "_dhs_dataset.json"


def _is_data_dir(uri: str) -> bool:
    return any("region_split=" in f for f in storage.list_files(uri, ".parquet"))


def resolve_data_uri(dataset_uri: str) -> str:
    """The folder holding `region_split=*/part-*.parquet` for dataset `D`: the pipeline's layout
    first (`D/CURRENT`, else `D/phase4c`: pipeline.dataset.resolve_data_uri), else `D` itself when
    it is a bare folder of `region_split=<split>/` Parquet files."""
    from pipeline.dataset import resolve_data_uri as layout_data_uri  # noqa: PLC0415

    dataset_uri = str(dataset_uri).rstrip("/")
    data_uri = layout_data_uri(dataset_uri)
    if storage.exists(data_uri) and _is_data_dir(data_uri):
        return data_uri
    if storage.exists(dataset_uri) and _is_data_dir(dataset_uri):
        return dataset_uri
    if not storage.exists(dataset_uri):
        raise InputError(dataset_uri, "no such dataset")
    raise InputError(dataset_uri, "no Parquet files under region_split=<split>/ (nor in phase4c/ or CURRENT)")


def read_metadata(data_uri: str) -> dict:
    """`_dhs_dataset.json` next to the data (run config, bank sha256 and hlr filter, rows per split);
    {} when absent (the gate then falls back to the manifest and the built-in config)."""
    uri = storage.join(data_uri, METADATA_FILE)
    if not storage.exists(uri):
        return {}
    try:
        return json.loads(storage.read_bytes(uri))
    except ValueError as exc:
        raise InputError(uri, f"not valid JSON: {exc}") from None


@dataclass(frozen=True)
class DataFile:
    relpath: str
    size_bytes: int
    #: sha256 of the content for local files, the S3 ETag for s3:// objects (not re-downloaded).
    digest: str


@dataclass
class Dataset:
    dataset_uri: str
    data_uri: str
    files: list[DataFile]
    metadata: dict = field(default_factory=dict)

    def files_per_split(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.files:
            split = next((p.split("=", 1)[1] for p in f.relpath.split("/") if p.startswith("region_split=")), "?")
            counts[split] = counts.get(split, 0) + 1
        return counts


def list_data_files(data_uri: str, with_digest: bool = True) -> list[DataFile]:
    """The Parquet data files of a dataset, sorted by relative path."""
    out = []
    if storage.is_s3(data_uri):
        bucket, key = storage.split_s3(data_uri)
        prefix = key.rstrip("/") + "/"
        client = storage._s3_client()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".parquet"):
                    out.append(DataFile(obj["Key"][len(prefix):], int(obj["Size"]), obj["ETag"].strip('"')))
    else:
        import os

        for path in storage.list_files(data_uri, ".parquet"):
            rel = os.path.relpath(path, data_uri).replace(os.sep, "/")
            out.append(DataFile(rel, os.path.getsize(path), storage.sha256_file(path) if with_digest else ""))
    return sorted(out, key=lambda f: f.relpath)


def content_checksum(files: list[DataFile]) -> str:
    """sha256 over the sorted (relative path, size, sha256-or-ETag) of the data files: any
    rewritten, added or removed file changes it."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.relpath):
        h.update(f"{f.relpath}\t{f.size_bytes}\t{f.digest}\n".encode())
    return h.hexdigest()


def check_split_names(data_uri: str, files: list[DataFile]) -> None:
    """Refuse `region_split=<name>` folders other than train/val/test: the name reaches the GX
    Data Docs and the report (served on the Airflow origin) and every per-split metric, so a folder
    named like `<img src=x onerror=...>` must stop here. The message shows the name escaped."""
    from pipeline.config import SPLITS  # noqa: PLC0415

    for f in files:
        for part in f.relpath.split("/"):
            if part.startswith("region_split=") and part.split("=", 1)[1] not in SPLITS:
                raise InputError(data_uri, f"unknown split folder {part.split('=', 1)[1][:40]!r} "
                                           f"(region_split must be one of {', '.join(SPLITS)})")


def open_dataset(dataset_uri: str, with_digest: bool = True) -> Dataset:
    data_uri = resolve_data_uri(dataset_uri)
    files = list_data_files(data_uri, with_digest=with_digest)
    if not files:
        raise InputError(data_uri, "no Parquet data files")
    check_split_names(data_uri, files)
    return Dataset(str(dataset_uri).rstrip("/"), data_uri, files, read_metadata(data_uri))


def read_rows(spark, dataset: Dataset, columns: list[str] | None = None):
    """The rows as a Spark DataFrame; `region_split` comes from the partition folders."""
    path = storage.to_spark(dataset.data_uri)
    df = spark.read.option("basePath", path).parquet(*[posixpath.join(path, f.relpath) for f in dataset.files])
    if columns is not None:
        df = df.select(*[c for c in columns if c in df.columns])
    return df


# --- the manifest and the run config the rows must match -------------------------------------

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
