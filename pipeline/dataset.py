"""A dataset on disk (or S3): its metadata file, where its current data lives, and a content hash.

Layout (docs/architecture.md):
    D/phase4c/region_split=<s>/part-*.parquet     + D/phase4c/_dhs_dataset.json
    D/compacted/<id>/region_split=<s>/*.parquet   + D/compacted/<id>/_dhs_dataset.json
    D/CURRENT                                     {"data": "compacted/<id>"}, replaced atomically

`_dhs_dataset.json` is written LAST, after the data has been verified: its presence with a
matching manifest checksum and row count is what "complete" means (`--skip-if-exists`).
Spark's `_SUCCESS` alone is not enough: a step killed between the job commit and the row-count
check leaves `_SUCCESS` behind.

Pure Python + pyarrow; Spark appears only in `content_hash` when it is handed a Spark DataFrame.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa

from pipeline import __version__ as PIPELINE_VERSION
from pipeline import storage
from pipeline.contract import BY_NAME, COLUMNS, PIXEL_LAYOUT, arrow_schema
from pipeline.errors import InputError
from pipeline.pixels import STORAGE_QUANTIZATION

METADATA_FILE = "_dhs_dataset.json"
SUCCESS_FILE = "_SUCCESS"
CURRENT_FILE = "CURRENT"
PHASE4C_DIR = "phase4c"
COMPACTED_DIR = "compacted"
FORMAT = "dhs-dataset/1"


# --------------------------------------------------------------------------- metadata


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
    uri = storage.join(data_uri, METADATA_FILE)
    if storage.is_s3(uri):
        bucket, key = storage.split_s3(uri)
        storage._s3_client().delete_object(Bucket=bucket, Key=key)
    else:
        Path(uri).unlink(missing_ok=True)


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


def completeness(data_uri: str, *, manifest_sha256: str, tasks: int, run_config: Mapping[str, Any] | None = None) -> tuple[bool, str]:
    """Is `data_uri` a COMPLETE output of this very run? Returns (ok, reason).

    Complete = `_SUCCESS` and `_dhs_dataset.json` present, same manifest checksum, one row per
    task, same run config (when given), and every data file the metadata counted still there."""
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
    if run_config is not None and meta.get("run_config") != _jsonable(run_config):
        return False, "written with a different run config"
    files, _ = dir_stats(data_uri)
    if files != meta.get("files"):
        return False, f"{files} data files on disk, metadata lists {meta.get('files')}"
    return True, "complete"


def _jsonable(obj):
    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (tuple, set, np.ndarray)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# --------------------------------------------------------------------------- layout


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


def set_current(root: str, relative_data: str) -> str:
    """Point `D/CURRENT` at `relative_data` (e.g. "compacted/<id>"): one atomic write
    (local: temp file + rename; S3: a single PUT)."""
    uri = storage.join(root, CURRENT_FILE)
    storage.write_bytes(uri, (json.dumps({"data": relative_data, "switched_utc": utc_now()}) + "\n").encode())
    return uri


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
        bucket, key = storage.split_s3(uri)
        client = storage._s3_client()
        wanted = set(files)
        total = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key.rstrip("/") + "/"):
            for o in page.get("Contents", []):
                if f"s3://{bucket}/{o['Key']}" in wanted:
                    total += int(o["Size"])
        return len(files), total
    return len(files), sum(Path(f).stat().st_size for f in files)


def uri_sha256(uri: str) -> str:
    """sha256 of one file, streamed (manifests can be large)."""
    h = hashlib.sha256()
    if storage.is_s3(uri):
        bucket, key = storage.split_s3(uri)
        client = storage._s3_client()
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
        except client.exceptions.ClientError as exc:
            raise InputError(uri, f"cannot read S3 object: {exc}") from None
        for chunk in body.iter_chunks(1 << 20):
            h.update(chunk)
        return h.hexdigest()
    path = Path(uri)
    if not path.is_file():
        raise InputError(uri, "no such file")
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- Parquet writing

#: Write options of every Spark step that writes pixel rows (DataFrameWriter.option; the
#: parquet.* key is parquet-mr 1.13's Hadoop conf). zstd level 3 is parquet-mr's default, stated so
#: the figures in docs/benchmarks.md stay reproducible. Dictionary encoding stays on (Spark's
#: default): on the quantized pixels (pipeline.pixels) it beats plain encoding, 19.3 vs 22.6 KB
#: per stamp on demo rows, since a page holds only ~10^4 distinct grid values. parquet-mr 1.13
#: writes BYTE_STREAM_SPLIT only through its Java builder (no Hadoop conf key), and Spark 3.5's
#: vectorized reader cannot read it: not used.
SPARK_PARQUET_OPTIONS = {
    "compression": "zstd",
    "parquet.compression.codec.zstd.level": "3",
}


# --------------------------------------------------------------------------- records -> Arrow


def spark_arrow_schema() -> pa.Schema:
    """The contract schema as Spark writes/reads it: fixed-size pixel lists become plain lists
    (Spark's array<float>/array<int>); the length is checked by the gate, the layout is in the
    metadata."""
    fields = []
    for f in arrow_schema():
        t = f.type
        if pa.types.is_fixed_size_list(t):
            t = pa.list_(t.value_type)
        fields.append(pa.field(f.name, t, nullable=True, metadata=f.metadata))
    return pa.schema(fields)


def records_to_batch(records: list[Mapping[str, Any]], schema: pa.Schema | None = None) -> pa.RecordBatch:
    """Contract records (pixel arrays as flat numpy arrays or None) -> one Arrow RecordBatch.

    Pixel columns are built from one concatenated buffer plus offsets (no per-pixel Python
    objects). A record missing a key or with a wrongly sized array raises ValueError: that is a
    bug in the producer, not a row problem."""
    schema = schema or spark_arrow_schema()
    arrays = []
    n = len(records)
    for field in schema:
        name, t = field.name, field.type
        if pa.types.is_list(t) or pa.types.is_fixed_size_list(t):
            np_dtype = np.dtype(t.value_type.to_pandas_dtype())
            want = BY_NAME[name].type.list_size if name in BY_NAME and pa.types.is_fixed_size_list(BY_NAME[name].type) else None
            parts, lengths, nulls = [], np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
            for i, rec in enumerate(records):
                v = rec[name]
                if v is None:
                    nulls[i] = True
                    continue
                a = np.asarray(v, dtype=np_dtype).ravel()
                if want is not None and a.size != want:
                    raise ValueError(f"{name}: task {rec.get('task_id')} has {a.size} values, the contract fixes {want}")
                parts.append(a)
                lengths[i] = a.size
            offsets = np.zeros(n + 1, dtype=np.int32)
            np.cumsum(lengths, out=offsets[1:])
            values = np.concatenate(parts) if parts else np.zeros(0, dtype=np_dtype)
            arr = pa.ListArray.from_arrays(
                pa.array(offsets), pa.array(values, type=t.value_type), mask=pa.array(nulls) if nulls.any() else None
            )
            if pa.types.is_fixed_size_list(t):
                arr = arr.cast(t)
        else:
            arr = pa.array([_scalar(rec[name]) for rec in records], type=t)
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _scalar(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:  # NaN stays NaN (a value), only None is null
        return v
    return v


# --------------------------------------------------------------------------- content hash


def _batch_row_digests(batch: pa.RecordBatch | pa.Table, exclude: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(task_id, sha256 hex of the row) for each row. Columns are visited by name so the
    hash does not depend on column order; values are hashed by exact bytes (floats through
    repr, pixel arrays through their little-endian buffers)."""
    exclude = set(exclude)
    names = sorted(n for n in batch.schema.names if n not in exclude)
    n = batch.num_rows
    hashers = [hashlib.sha256() for _ in range(n)]
    for name in names:
        col = batch.column(batch.schema.get_field_index(name))
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        tag = name.encode() + b"="
        if pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or pa.types.is_fixed_size_list(col.type):
            if pa.types.is_fixed_size_list(col.type):
                col = col.cast(pa.list_(col.type.value_type))
            offsets = col.offsets.to_numpy()
            values = col.values.to_numpy(zero_copy_only=False)
            values = values.astype(values.dtype.newbyteorder("<"), copy=False)
            valid = col.is_valid().to_numpy(zero_copy_only=False)
            for i in range(n):
                h = hashers[i]
                h.update(tag)
                if valid[i]:
                    h.update(b"L%d:" % (offsets[i + 1] - offsets[i]))
                    h.update(values[offsets[i] : offsets[i + 1]].tobytes())
                else:
                    h.update(b"N")
        else:
            for i, v in enumerate(col.to_pylist()):
                hashers[i].update(tag + repr(v).encode() + b"\x1f")
    ids = batch.column(batch.schema.get_field_index("task_id"))
    ids = ids.to_pylist()
    return [(str(t), h.hexdigest()) for t, h in zip(ids, hashers)]


def _combine(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    pairs.sort()
    h = hashlib.sha256()
    for tid, d in pairs:
        h.update(f"{tid}:{d}\n".encode())
    return {"sha256": h.hexdigest(), "rows": len(pairs), "distinct_task_ids": len({t for t, _ in pairs})}


def content_hash(data, exclude: Iterable[str] = (), spark=None) -> dict[str, Any]:
    """Order- and file-layout-independent hash of a dataset's rows:
    sha256 over the rows' digests sorted by task_id. Returns {sha256, rows, distinct_task_ids}.

    `data` is a Spark DataFrame (hashed on the executors; only 2 short strings per row come
    back) or a dataset URI / directory (read with pyarrow; `region_split` comes from the
    hive-style directory names, as Spark would see it)."""
    exclude = tuple(exclude)
    if hasattr(data, "mapInArrow"):
        return _combine([(r[0], r[1]) for r in _spark_digests(data, exclude).collect()])
    uri = resolve_data_uri(data) if storage.exists(storage.join(str(data), CURRENT_FILE)) else str(data)
    import pyarrow.dataset as pads  # noqa: PLC0415

    files = data_files(uri)
    if not files:
        raise InputError(uri, "no Parquet data files")
    filesystem = None
    paths = files
    if storage.is_s3(uri):
        import pyarrow.fs as pafs  # noqa: PLC0415

        filesystem = pafs.S3FileSystem(endpoint_override=os.environ.get("AWS_ENDPOINT_URL_S3") or None)
        paths = [storage.to_s3(f)[len("s3://"):] for f in files]
        base = storage.to_s3(uri)[len("s3://"):]
    else:
        base = str(Path(uri))
    ds = pads.dataset(paths, format="parquet", filesystem=filesystem, partitioning="hive", partition_base_dir=base)
    pairs: list[tuple[str, str]] = []
    for batch in ds.to_batches(batch_size=256):
        pairs += _batch_row_digests(batch, exclude)
    return _combine(pairs)


def _spark_digests(df, exclude):
    from pyspark.sql import types as T  # noqa: PLC0415

    schema = T.StructType([T.StructField("task_id", T.StringType()), T.StructField("digest", T.StringType())])

    def digests(batches, _exclude=exclude):
        for b in batches:
            pairs = _batch_row_digests(b, _exclude)
            yield pa.RecordBatch.from_arrays(
                [pa.array([p[0] for p in pairs], pa.string()), pa.array([p[1] for p in pairs], pa.string())],
                names=["task_id", "digest"],
            )

    return df.mapInArrow(digests, schema)
