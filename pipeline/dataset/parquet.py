"""Writing rows: the contract's Arrow schema as Spark reads it, contract records -> Arrow batches,
and the Parquet options of every Spark step that writes pixel rows."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pyarrow as pa

from pipeline.contract import BY_NAME, arrow_schema

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
