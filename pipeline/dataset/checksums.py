"""The two hashes of a dataset, for two different questions.

- `rows_digest(data)` -> {"sha256", "rows", "distinct_task_ids"}: a hash of the ROW VALUES,
  independent of file layout, row order and column order (sha256 over each row's digest, sorted by
  task_id). "Are these the same rows?": compaction proves it wrote exactly the rows it read, a
  re-run proves it reproduced the same rows. Reads every row (Spark or pyarrow).
- `files_checksum(files)` -> hex: a checksum of the BYTES the gate judged: sha256 over the sorted
  (relative path, size, sha256-or-S3-ETag) of the data files, from `layout.list_data_files`. "Is
  this still exactly what was validated?": the receipts, validation.json, the promotion record and
  `verify_promoted` carry it as `content_checksum` (that JSON key never changes). Any rewritten,
  added or removed file changes it, even with the same rows; on S3 it costs one listing.

(`rows_digest` was `pipeline.dataset.content_hash`, `files_checksum` was
`pipeline.gate.datasets.content_checksum`.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa

from pipeline import storage
from pipeline.dataset.layout import CURRENT_FILE, DataFile, data_files, resolve_data_uri
from pipeline.errors import InputError


def files_checksum(files: list[DataFile]) -> str:
    """sha256 over the sorted (relative path, size, sha256-or-ETag) of the data files: any
    rewritten, added or removed file changes it."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.relpath):
        h.update(f"{f.relpath}\t{f.size_bytes}\t{f.digest}\n".encode())
    return h.hexdigest()


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


def rows_digest(data, exclude: Iterable[str] = ()) -> dict[str, Any]:
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
