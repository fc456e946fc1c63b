"""Where a dataset's rows live, which files are its data, and opening it for reading.

Layout (docs/architecture.md):
    D/phase4c/region_split=<s>/part-*.parquet     + D/phase4c/_dhs_dataset.json
    D/compacted/<id>/region_split=<s>/*.parquet   + D/compacted/<id>/_dhs_dataset.json
    D/CURRENT                                     {"data": "compacted/<id>"}, replaced atomically

Two resolvers, two contracts:
- `resolve_data_uri(D)`: the pipeline's layout only (CURRENT, else phase4c, else D when it holds
  the metadata file); the steps use it and never fail on a missing folder;
- `find_data_uri(D)`: what the gate opens: the layout's answer when it holds
  `region_split=<split>/` Parquet files, else D itself when it does (a bare Spark output), else
  InputError naming D.

Two file listings, two uses:
- `data_files(uri)`: Parquet data file URIs without hidden/`_` files and folders (an interrupted
  Spark job's `_temporary/`); the steps count them (`dir_stats`, `completeness`) and read them;
- `list_data_files(uri)`: every `.parquet` file as a `DataFile` (relative path, size, sha256 or
  S3 ETag): what the gate judges and pipeline.dataset.checksums.files_checksum certifies.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any, Mapping

from pipeline import storage
from pipeline.dataset.metadata import METADATA_FILE, jsonable, read_any_metadata, read_metadata, utc_now
from pipeline.errors import InputError

SUCCESS_FILE = "_SUCCESS"
CURRENT_FILE = "CURRENT"
PHASE4C_DIR = "phase4c"
COMPACTED_DIR = "compacted"


def phase4c_uri(root: str) -> str:
    return storage.join(root, PHASE4C_DIR)


def resolve_data_uri(root: str) -> str:
    """Where the dataset's current rows live: `D/CURRENT`'s target when present, else
    `D/phase4c`. A `root` that is itself a data directory (holds `_dhs_dataset.json`) is
    returned as is, so `dhs validate D/phase4c` works too. S3 URIs come back spelled s3://
    (storage.to_spark gives Spark its spelling)."""
    root = storage.to_s3(root).rstrip("/") if storage.is_s3(root) else str(root)
    current = storage.join(root, CURRENT_FILE)
    if storage.exists(current):
        try:
            target = json.loads(storage.read_bytes(current))["data"]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(current, f'must be JSON {{"data": "compacted/<id>"}}: {exc}') from None
        return storage.join(root, *str(target).split("/"))
    p4c = phase4c_uri(root)
    if not storage.exists(storage.join(p4c, METADATA_FILE)) and storage.exists(storage.join(root, METADATA_FILE)):
        return str(root)
    return p4c


def _is_data_dir(uri: str) -> bool:
    return any("region_split=" in f for f in storage.list_files(uri, ".parquet"))


def find_data_uri(dataset_uri: str) -> str:
    """The folder holding `region_split=*/part-*.parquet` for dataset `D`: the pipeline's layout
    first (`resolve_data_uri`), else `D` itself when it is a bare folder of
    `region_split=<split>/` Parquet files; InputError naming `D` otherwise."""
    dataset_uri = str(dataset_uri).rstrip("/")
    data_uri = resolve_data_uri(dataset_uri)
    if storage.exists(data_uri) and _is_data_dir(data_uri):
        return data_uri
    if storage.exists(dataset_uri) and _is_data_dir(dataset_uri):
        return dataset_uri
    if not storage.exists(dataset_uri):
        raise InputError(dataset_uri, "no such dataset")
    raise InputError(dataset_uri, "no Parquet files under region_split=<split>/ (nor in phase4c/ or CURRENT)")


def set_current(root: str, relative_data: str) -> str:
    """Point `D/CURRENT` at `relative_data` (e.g. "compacted/<id>"): one atomic write
    (local: temp file + rename; S3: a single PUT)."""
    uri = storage.join(root, CURRENT_FILE)
    storage.write_bytes(uri, (json.dumps({"data": relative_data, "switched_utc": utc_now()}) + "\n").encode())
    return uri


# --------------------------------------------------------------------------- the steps' view


def data_files(uri: str) -> list[str]:
    """The Parquet data files of a dataset directory (hidden and `_` files excluded)."""
    out = []
    for f in storage.list_files(uri, suffix=".parquet"):
        name = f.rstrip("/").rsplit("/", 1)[-1]
        rel = f[len(str(uri).rstrip("/")) + 1 :]
        if name.startswith((".", "_")) or any(p.startswith(("_", ".")) for p in rel.split("/")[:-1]):
            continue  # _temporary/ of an interrupted Spark job, .crc files
        out.append(f)
    return out


def dir_stats(uri: str) -> tuple[int, int]:
    """(number of Parquet data files, their total bytes) under `uri`."""
    files = data_files(uri)
    if storage.is_s3(uri):
        sizes = {o.uri: o.size_bytes for o in storage.list_objects(uri)}
        return len(files), sum(sizes.get(f, 0) for f in files)
    return len(files), sum(os.path.getsize(f) for f in files)


def completeness(data_uri: str, *, manifest_sha256: str, tasks: int, run_config: Mapping[str, Any] | None = None) -> tuple[bool, str]:
    """Is `data_uri` a COMPLETE output of this very run? Returns (ok, reason).

    Complete = `_SUCCESS` and `_dhs_dataset.json` present, same manifest checksum, one row per
    task, same run config (when given), and every data file the metadata counted still there.
    Spark's `_SUCCESS` alone is not enough: a step killed between the job commit and the
    row-count check leaves `_SUCCESS` behind."""
    if not storage.exists(storage.join(data_uri, SUCCESS_FILE)):
        return False, "no _SUCCESS (never written or interrupted)"
    try:
        meta = read_metadata(data_uri)
    except InputError as exc:
        return False, str(exc)
    if meta is None:
        return False, f"no {METADATA_FILE} (interrupted before verification)"
    if meta.get("manifest", {}).get("sha256") != manifest_sha256:
        return False, "written from a different manifest (checksum differs)"
    if meta.get("rows") != tasks:
        return False, f"has {meta.get('rows')} rows, the manifest has {tasks} tasks"
    if run_config is not None and meta.get("run_config") != jsonable(run_config):
        return False, "written with a different run config"
    files, _ = dir_stats(data_uri)
    if files != meta.get("files"):
        return False, f"{files} data files on disk, metadata lists {meta.get('files')}"
    return True, "complete"


# --------------------------------------------------------------------------- the gate's view


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
    """Every `.parquet` file under `data_uri`, sorted by relative path, with its size and digest
    (sha256 of a local file; the ETag of an S3 object, from the listing)."""
    out = []
    if storage.is_s3(data_uri):
        bucket, key = storage.split_s3(data_uri)
        base = f"s3://{bucket}/{key.rstrip('/')}/" if key else f"s3://{bucket}/"
        for obj in storage.list_objects(data_uri, ".parquet"):
            out.append(DataFile(obj.uri[len(base):], obj.size_bytes, obj.etag))
    else:
        for obj in storage.list_objects(data_uri, ".parquet"):
            rel = os.path.relpath(obj.uri, data_uri).replace(os.sep, "/")
            out.append(DataFile(rel, obj.size_bytes, storage.sha256(obj.uri) if with_digest else ""))
    return sorted(out, key=lambda f: f.relpath)


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
    """Dataset `D` as the gate judges it: its data folder (`find_data_uri`), its files with their
    digests, its metadata (`read_any_metadata`)."""
    data_uri = find_data_uri(dataset_uri)
    files = list_data_files(data_uri, with_digest=with_digest)
    if not files:
        raise InputError(data_uri, "no Parquet data files")
    check_split_names(data_uri, files)
    return Dataset(str(dataset_uri).rstrip("/"), data_uri, files, read_any_metadata(data_uri))


def read_rows(spark, dataset: Dataset, columns: list[str] | None = None):
    """The rows as a Spark DataFrame; `region_split` comes from the partition folders."""
    path = storage.to_spark(dataset.data_uri)
    df = spark.read.option("basePath", path).parquet(*[posixpath.join(path, f.relpath) for f in dataset.files])
    if columns is not None:
        df = df.select(*[c for c in columns if c in df.columns])
    return df
