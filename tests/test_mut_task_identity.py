"""pipeline.task_identity without Spark: the per-task hash against a from-the-spec XXH64 (itself
checked against XXH64's published test vectors and the xxhash64 example in Spark's SQL function
reference), for every kind of input the manifest writer hands it (pandas columns, Python lists,
Arrow arrays that are chunked or sliced, NULLs in every column); the fingerprint's two sums by hand.

Spark's xxhash64(c1, c2, ...) is XXH64 chained over the columns: the seed starts at 42 and each
non-NULL value's XXH64 (seeded with the hash so far) becomes the next seed; a string is hashed as
its UTF-8 bytes, a long as its 8 little-endian bytes, an int or boolean (1/0) as 4 little-endian
bytes; NULL leaves the hash unchanged. (tests/test_task_identity.py also checks the numba hash
against Spark itself, in the Spark-marked tests.)"""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.task_identity import fingerprint, manifest_identity, spark_xxhash64

M64 = (1 << 64) - 1
P1, P2, P3, P4, P5 = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x85EBCA77C2B2AE63,
                      0x27D4EB2F165667C5)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _round(acc, lane):
    return (_rotl((acc + lane * P2) & M64, 31) * P1) & M64


def xxh64(data: bytes, seed: int) -> int:
    """XXH64 as the xxHash specification (doc/xxhash_spec.md) writes it, in plain Python integers."""
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M64, (seed + P2) & M64, seed, (seed - P1) & M64]
        while i + 32 <= n:
            v = [_round(v[k], struct.unpack_from("<Q", data, i + 8 * k)[0]) for k in range(4)]
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M64
        for lane in v:
            h = ((h ^ _round(0, lane)) * P1 + P4) & M64
    else:
        h = (seed + P5) & M64
    h = (h + n) & M64
    while i + 8 <= n:
        h = (_rotl(h ^ _round(0, struct.unpack_from("<Q", data, i)[0]), 27) * P1 + P4) & M64
        i += 8
    if i + 4 <= n:
        h = (_rotl(h ^ (struct.unpack_from("<I", data, i)[0] * P1 & M64), 23) * P2 + P3) & M64
        i += 4
    while i < n:
        h = (_rotl(h ^ (data[i] * P5 & M64), 11) * P1) & M64
        i += 1
    h ^= h >> 33
    h = h * P2 & M64
    h ^= h >> 29
    h = h * P3 & M64
    return h ^ (h >> 32)


def _signed(u):
    return u - (1 << 64) if u >= 1 << 63 else u


def spark_chain(*values) -> int:
    """Spark's xxhash64 of one row: str -> UTF-8, bool -> int 1/0 (4 bytes), int -> long (8 bytes)."""
    h = 42
    for v in values:
        if v is None:
            continue
        if isinstance(v, str):
            h = xxh64(v.encode("utf-8"), h)
        elif isinstance(v, bool):
            h = xxh64(struct.pack("<I", int(v)), h)
        elif isinstance(v, tuple):  # ("int", value): a 4-byte int column (Spark's hashInt)
            h = xxh64(struct.pack("<i", v[1]), h)
        else:
            h = xxh64(struct.pack("<q", v), h)
    return _signed(h)


def test_reference_xxh64_matches_published_vectors():
    # xxHash's own sanity values (XXH64, seed 0) and Spark's SQL reference:
    # SELECT xxhash64('Spark', array(123), 2) -> 5602566077635097486 (an array hashes its elements)
    assert xxh64(b"", 0) == 0xEF46DB3751D8E999
    assert xxh64(b"abc", 0) == 0x44BC2CF5AD770999
    assert spark_chain("Spark", ("int", 123), ("int", 2)) == 5602566077635097486


ROWS = [  # every tail of the byte loop: 0-3 bytes, 4-byte word, 8-byte words, >= 32-byte stripes
    ("", 0, "train", True),
    ("a", 1, "val", False),
    ("abcd", -1, "test", True),
    ("task-000123", 2**63 - 1, "train", False),
    ("é漢🙂" * 5, -2**63, "val", True),
    ("x" * 31, 123456789012, "", False),
    ("y" * 32, 7, "test", True),
    ("lrg-12345/inj-0007/θE=1.2″/seed=99", 42, "train" * 7, False),
]


def _expected(rows):
    return np.array([spark_chain(*r) for r in rows], np.int64)


def test_hash_equals_the_reference_for_python_lists():
    cols = [list(c) for c in zip(*ROWS)]
    np.testing.assert_array_equal(spark_xxhash64(*cols), _expected(ROWS))


def test_nulls_are_skipped_in_every_column():
    rows = [(None, 5, "val", True), ("t", None, "val", False), ("t", 5, None, True), ("t", 5, "val", None),
            (None, None, None, None), ("t", 5, "val", True)]
    cols = [list(c) for c in zip(*rows)]
    np.testing.assert_array_equal(spark_xxhash64(*cols), _expected(rows))
    # a NULL is not the same as an empty string, 0 or False
    assert len(set(spark_xxhash64(*cols).tolist())) == len(rows)


def test_hash_equals_the_reference_for_pandas_columns_with_nulls():
    df = pd.DataFrame({"task_id": [r[0] for r in ROWS] + [None],
                       "lrg_id": pd.array([r[1] for r in ROWS] + [None], dtype="Int64"),
                       "region_split": [r[2] for r in ROWS] + ["val"],
                       "is_control": pd.array([r[3] for r in ROWS] + [None], dtype="boolean")})
    rows = ROWS + [(None, None, "val", None)]
    np.testing.assert_array_equal(spark_xxhash64(df.task_id, df.lrg_id, df.region_split, df.is_control),
                                  _expected(rows))


def test_chunked_and_sliced_arrow_columns():
    """The manifest writer passes Arrow columns of a table: chunked, and slices whose buffers start
    before the slice (offset > 0)."""
    cols = list(zip(*ROWS))
    chunked = [pa.chunked_array([pa.array(c[:3]), pa.array(c[3:])]) for c in cols]
    np.testing.assert_array_equal(spark_xxhash64(*chunked), _expected(ROWS))
    full = [pa.array(list(c) + list(c)) for c in cols]
    sliced = [a.slice(len(ROWS) + 2, len(ROWS) - 3) for a in full]
    np.testing.assert_array_equal(spark_xxhash64(*sliced), _expected(ROWS[2:len(ROWS) - 1]))
    # a chunked string column whose second chunk is sliced
    tid = pa.chunked_array([pa.array([ROWS[0][0]]), pa.array([r[0] for r in ROWS]).slice(1)])
    np.testing.assert_array_equal(spark_xxhash64(tid, *[pa.array(c) for c in cols[1:]]), _expected(ROWS))


def test_string_column_all_null_or_all_empty():
    # an Arrow string array of only NULLs or only "" has no data buffer to read
    n = 3
    rows = [(None, i, None, True) for i in range(n)]
    np.testing.assert_array_equal(spark_xxhash64([None] * n, list(range(n)), [None] * n, [True] * n), _expected(rows))
    rows = [("", i, "", False) for i in range(n)]
    np.testing.assert_array_equal(spark_xxhash64([""] * n, list(range(n)), [""] * n, [False] * n), _expected(rows))


def test_fingerprint_is_the_two_32_bit_half_sums():
    hashes = np.array([-1, 1, (3 << 32) + 5, -(2**63)], np.int64)
    u = [h % (1 << 64) for h in hashes.tolist()]
    assert fingerprint(hashes) == [sum(x & 0xFFFFFFFF for x in u), sum(x >> 32 for x in u)]
    assert fingerprint(np.array([-1, -1], np.int64)) == [2 * 0xFFFFFFFF, 2 * 0xFFFFFFFF]


def test_manifest_identity_record():
    cols = [list(c) for c in zip(*ROWS)]
    cols[0][1] = cols[0][0]  # one duplicated task_id ("" twice)
    rec = manifest_identity(*cols)
    expected = _expected(list(zip(*cols)))
    assert rec["fingerprint"] == fingerprint(expected)
    assert rec["rows"] == len(ROWS)
    assert rec["columns"] == ["task_id", "lrg_id", "region_split", "is_control"]
    assert rec["hash"] == "spark xxhash64(task_id, lrg_id, region_split, is_control), seed 42"
    assert (rec["dup_rows"], rec["dup_examples"]) == (2, [""])
    assert (rec["multi_split"], rec["shared"]) == (0, 0)


@pytest.mark.parametrize("n_examples", [1, 2])
def test_manifest_identity_passes_n_examples_on(n_examples):
    ids = ["a", "a", "b", "b", "c", "c"]
    lrg = [1, 1, 2, 2, 3, 3]
    split = ["train", "val", "train", "val", "train", "val"]
    rec = manifest_identity(ids, lrg, split, [True, False] * 3, n_examples=n_examples)
    assert rec["dup_examples"] == ["a", "b", "c"][:n_examples]
    assert rec["multi_ex"] == [1, 2, 3][:n_examples] and rec["shared_ex"] == [1, 2, 3][:n_examples]
    assert (rec["dup_rows"], rec["multi_split"], rec["shared"]) == (6, 3, 3)


def test_nan_in_a_pandas_column_is_null_and_a_non_string_task_id_is_refused():
    # pandas writes a missing string or id as NaN: it is a NULL (skipped), as Spark reads it
    rows = [("t", 5, None, True), ("u", None, "val", False)]
    got = spark_xxhash64(["t", "u"], [5.0, np.nan], [np.nan, "val"], [True, False])
    np.testing.assert_array_equal(got, _expected(rows))
    # an integer task_id would hash as a long in Spark, not as its digits: refused, not stringified
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        spark_xxhash64([1, 2], [5, 6], ["val", "val"], [True, False])


def test_leakage_ignores_nulls_per_column_and_lists_ids_ascending():
    from pipeline.task_identity import lrg_leakage

    # 30 and 10 both in two splits, listed ascending whatever the row order; 20's second row has
    # no split but its role still counts (control and injection host); 40 has only NULL roles
    lrg = [30, 30, 10, 10, 20, 20, 40, 40]
    split = ["train", "val", "val", "test", "train", None, "test", "test"]
    ctl = [False, False, False, False, True, False, None, None]
    assert lrg_leakage(lrg, split, ctl) == {"multi_split": 2, "multi_ex": [10, 30], "shared": 1, "shared_ex": [20]}
    assert lrg_leakage(lrg, split, ctl, n_examples=1)["multi_ex"] == [10]


def test_examples_listed_as_many_as_the_gates_exact_check_lists():
    """When the rows are the manifest's tasks the gate reports the manifest's record instead of its
    exact shuffle (pipeline.gate.profile._uniqueness_and_leakage): both must list the same number
    of example ids."""
    import inspect

    from pipeline.gate.identity import uniqueness_and_leakage as _uniqueness_and_leakage
    from pipeline.task_identity import duplicate_task_ids, lrg_leakage

    n = inspect.signature(_uniqueness_and_leakage).parameters["n_examples"].default
    k = n + 2
    ids = [f"t{i}" for i in range(k) for _ in range(2)]
    lrg = [i for i in range(k) for _ in range(2)]
    split = ["train", "val"] * k
    ctl = [True, False] * k
    rec = manifest_identity(ids, lrg, split, ctl)
    assert rec["dup_examples"] == [f"t{i}" for i in range(n)]
    assert rec["multi_ex"] == rec["shared_ex"] == list(range(n))
    assert duplicate_task_ids(ids)[1] == [f"t{i}" for i in range(n)]
    assert lrg_leakage(lrg, split, ctl)["multi_ex"] == list(range(n))
