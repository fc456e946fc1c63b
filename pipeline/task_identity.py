"""Task identity of a manifest, summarised so the gate can check the rows against it without a shuffle.

The gate must know that no task_id appears twice and that no LRG leaks across splits or serves as
both a control and an injection host. Checked on the rows alone that is a shuffle of every row
(twice: by task and by LRG), which on 2 cores took about half of a 12M-row gate. But the rows
must be exactly the manifest's tasks (one row per task, failed ones included: nothing is lost),
each with the manifest's LRG, split and role. So:

- `write_manifest` records here, from the table it writes: a multiset hash of the identity tuples
  (task_id, lrg_id, region_split, is_control), the task_id duplicates (none: the manifest readers
  refuse duplicates) and the LRG leakage, computed exactly with numpy;
- the gate sums the same hash over the rows inside the scan it already makes (two more sums), and
  when the sums and the row count equal the manifest's, the rows ARE the manifest's tasks: their
  duplicates and leakage are the manifest's. Otherwise the gate falls back to the exact shuffle,
  which also names the offending tasks and LRGs.

The hash is Spark's own `xxhash64(task_id, lrg_id, region_split, is_control)` (seed 42, columns
chained as Spark chains them), re-implemented here with numba over Arrow string buffers and
tested equal to Spark's on every type involved. The fingerprint is the exact integer sum of the
low and of the high 32-bit halves of the per-task hashes (no overflow below 2^31 tasks). A row
set that differs from the manifest's (a duplicate, a lost or foreign task, an LRG, split or role
changed) leaves both sums equal only if the hash differences cancel in both halves: probability
about 2^-64 for non-adversarial data.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pyarrow as pa

IDENTITY_COLUMNS = ("task_id", "lrg_id", "region_split", "is_control")
#: Spark's Murmur3/XXH64 expressions start from seed 42.
SPARK_HASH_SEED = 42

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)
_LOW32 = (1 << 32) - 1


@numba.njit(inline="always")
def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@numba.njit(inline="always")
def _fmix(h):
    h ^= h >> np.uint64(33)
    h *= _P2
    h ^= h >> np.uint64(29)
    h *= _P3
    h ^= h >> np.uint64(32)
    return h


@numba.njit(inline="always")
def _read_le(buf, i, nbytes):
    """The unsigned little-endian integer in buf[i:i+nbytes] (Spark reads words little-endian)."""
    v = np.uint64(0)
    for k in range(nbytes):
        v |= np.uint64(buf[i + k]) << np.uint64(8 * k)
    return v


@numba.njit(inline="always")
def _round(acc, lane):
    acc += lane * _P2
    acc = _rotl(acc, 31)
    return acc * _P1


@numba.njit(inline="always")
def _merge(h, v):
    h ^= _round(np.uint64(0), v)
    return h * _P1 + _P4


@numba.njit
def _xxh64_bytes(buf, start, length, seed):
    """XXH64 of buf[start:start+length] (Spark's XXH64.hashUnsafeBytes: the reference algorithm)."""
    end = start + length
    i = start
    if length >= 32:
        v1 = seed + _P1 + _P2
        v2 = seed + _P2
        v3 = seed
        v4 = seed - _P1
        while i <= end - 32:
            v1 = _round(v1, _read_le(buf, i, 8))
            v2 = _round(v2, _read_le(buf, i + 8, 8))
            v3 = _round(v3, _read_le(buf, i + 16, 8))
            v4 = _round(v4, _read_le(buf, i + 24, 8))
            i += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge(h, v1)
        h = _merge(h, v2)
        h = _merge(h, v3)
        h = _merge(h, v4)
    else:
        h = seed + _P5
    h += np.uint64(length)
    while i <= end - 8:
        h ^= _round(np.uint64(0), _read_le(buf, i, 8))
        h = _rotl(h, 27) * _P1 + _P4
        i += 8
    if i + 4 <= end:
        h ^= _read_le(buf, i, 4) * _P1
        h = _rotl(h, 23) * _P2 + _P3
        i += 4
    while i < end:
        h ^= np.uint64(buf[i]) * _P5
        h = _rotl(h, 11) * _P1
        i += 1
    return _fmix(h)


@numba.njit(inline="always")
def _xxh64_long(value, seed):
    """Spark's XXH64.hashLong."""
    h = seed + _P5 + np.uint64(8)
    h ^= _rotl(value * _P2, 31) * _P1
    h = _rotl(h, 27) * _P1 + _P4
    return _fmix(h)


@numba.njit(inline="always")
def _xxh64_int(value, seed):
    """Spark's XXH64.hashInt (value as its unsigned 32 bits)."""
    h = seed + _P5 + np.uint64(4)
    h ^= value * _P1
    h = _rotl(h, 23) * _P2 + _P3
    return _fmix(h)


@numba.njit
def _identity_hashes(tid_off, tid_buf, tid_valid, lrg, lrg_valid, spl_off, spl_buf, spl_valid,
                     ctl, ctl_valid, seed):
    """Per task: Spark's xxhash64(task_id, lrg_id, region_split, is_control); NULLs are skipped,
    as Spark skips them."""
    n = len(lrg)
    out = np.empty(n, np.uint64)
    for r in range(n):
        h = seed
        if tid_valid[r]:
            h = _xxh64_bytes(tid_buf, tid_off[r], tid_off[r + 1] - tid_off[r], h)
        if lrg_valid[r]:
            h = _xxh64_long(lrg[r], h)
        if spl_valid[r]:
            h = _xxh64_bytes(spl_buf, spl_off[r], spl_off[r + 1] - spl_off[r], h)
        if ctl_valid[r]:
            h = _xxh64_int(np.uint64(1 if ctl[r] else 0), h)
        out[r] = h
    return out


def _string_parts(arr: pa.Array):
    """(offsets int64, data uint8, valid bool) of an Arrow string array."""
    arr = pa.concat_arrays(arr.chunks) if isinstance(arr, pa.ChunkedArray) else arr
    arr = arr.cast(pa.large_string())
    validity, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, np.int64)[arr.offset: arr.offset + len(arr) + 1]
    buf = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    return off, buf, ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), bool)


def _numeric_parts(arr, dtype):
    arr = pa.chunked_array([arr]) if isinstance(arr, pa.Array) else arr
    valid = ~np.asarray(arr.is_null().to_numpy(), bool)
    values = np.asarray(arr.fill_null(False if dtype is bool else 0).to_numpy(), dtype)
    return values, valid


def spark_xxhash64(task_id, lrg_id, region_split, is_control) -> np.ndarray:
    """Spark's `xxhash64(task_id, CAST(lrg_id AS BIGINT), region_split, is_control)` per task, as
    int64 (Spark's sign convention). Arguments: anything pyarrow.array accepts (None = NULL)."""
    tid = _string_parts(_as_arrow(task_id, pa.string()))
    spl = _string_parts(_as_arrow(region_split, pa.string()))
    lrg, lrg_valid = _numeric_parts(_as_arrow(lrg_id, pa.int64()), np.int64)
    ctl, ctl_valid = _numeric_parts(_as_arrow(is_control, pa.bool_()), bool)
    h = _identity_hashes(tid[0], tid[1], tid[2], lrg.view(np.uint64), lrg_valid, spl[0], spl[1], spl[2], ctl, ctl_valid,
                         np.uint64(SPARK_HASH_SEED))
    return h.view(np.int64)


def _as_arrow(values, type_):
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.cast(type_)
    return pa.array(values, type=type_, from_pandas=True)


def fingerprint(hashes: np.ndarray) -> list[int]:
    """[sum of the low 32 bits, sum of the high 32 bits] of the per-task hashes (exact integers),
    what the gate's Spark sums compute over the rows."""
    u = np.asarray(hashes).view(np.uint64)
    return [int((u & np.uint64(_LOW32)).sum(dtype=np.uint64)), int((u >> np.uint64(32)).sum(dtype=np.uint64))]


def lrg_leakage(lrg_id, region_split, is_control, n_examples: int = 3) -> dict:
    """LRGs used in more than one split, and LRGs that are both a control and an injection host
    (exact; a NULL LRG, split or role is ignored, as the gate's Spark check ignores it): counts and
    the first few LRG ids (ascending)."""
    df = pd.DataFrame({"lrg": pd.array(lrg_id, dtype="Int64"), "split": pd.Series(region_split, dtype=object).values,
                       "ctl": pd.array(is_control, dtype="boolean")}).dropna(subset=["lrg"])
    g = df.groupby("lrg", sort=True)
    multi = g["split"].nunique() > 1
    roles = g["ctl"].agg(["min", "max"])
    shared = (roles["min"] == False) & (roles["max"] == True)  # noqa: E712 - nullable booleans
    shared = shared.fillna(False).astype(bool)
    return {"multi_split": int(multi.sum()), "multi_ex": [int(x) for x in multi.index[multi.to_numpy()][:n_examples]],
            "shared": int(shared.sum()), "shared_ex": [int(x) for x in shared.index[shared.to_numpy()][:n_examples]]}


def duplicate_task_ids(task_id, n_examples: int = 3) -> tuple[int, list[str]]:
    """(rows whose task_id occurs more than once, first few such ids); exact."""
    counts = pd.Series(task_id, dtype=object).dropna().value_counts()
    dup = counts[counts > 1].sort_index()
    return int(dup.sum()), [str(x) for x in dup.index[:n_examples]]


def manifest_identity(task_id, lrg_id, region_split, is_control, n_examples: int = 3) -> dict:
    """The manifest.json `identity` record: fingerprint, rows, task_id duplicates and LRG leakage."""
    hashes = spark_xxhash64(task_id, lrg_id, region_split, is_control)
    dup_rows, dup_ex = duplicate_task_ids(task_id, n_examples)
    return {
        "columns": list(IDENTITY_COLUMNS),
        "hash": f"spark xxhash64(task_id, lrg_id, region_split, is_control), seed {SPARK_HASH_SEED}",
        "fingerprint": fingerprint(hashes),
        "rows": int(len(hashes)),
        "dup_rows": dup_rows, "dup_examples": dup_ex,
        **lrg_leakage(lrg_id, region_split, is_control, n_examples),
    }
