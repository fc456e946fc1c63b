"""The manifest's task identity record (pipeline.task_identity) and the gate's shortcut through it.

Independent truths: Spark's own xxhash64 (the numba hash must equal it bit for bit), hand-counted
duplicates and leakage, and the gate's exact shuffle (the shortcut must give the same answer when
the rows are the manifest's tasks, and must not be taken when they are not)."""

import numpy as np
import pandas as pd
import pytest

from pipeline.config import load_run_config
from pipeline.dataset import open_dataset, read_rows
from pipeline.gate.inputs import hlr_filter_for, manifest_identity_for
from pipeline.gate.identity import identity_sums
from pipeline.gate.profile import profile_and_contract
from pipeline.task_identity import duplicate_task_ids, fingerprint, lrg_leakage, manifest_identity, spark_xxhash64
from tests.gate_factories import _cached_clean, gate_cases, identity_of  # noqa: F401 - fixture

SCHEMA = "task_id string, lrg_id long, region_split string, is_control boolean"


def _random_tasks(n=2000, seed=1):
    """Every case the hash meets: empty, short and >= 32-byte UTF-8 strings (the 4- and 8-byte
    tails and the 32-byte stripes), negative and extreme LRG ids, and NULL in every column."""
    rng = np.random.default_rng(seed)
    alphabet = list("abcXYZ019-_") + ["é", "漢", "🙂"]
    tids = ["".join(rng.choice(alphabet, rng.integers(0, 80))) for _ in range(n)]
    tids[5] = None
    lrg = pd.array(rng.integers(-2**63, 2**63 - 1, n), dtype="Int64")
    lrg[7] = pd.NA
    lrg[8], lrg[9] = -1, 0
    return pd.DataFrame({"task_id": tids, "lrg_id": lrg,
                         "region_split": rng.choice(["train", "val", "test", "", None], n),
                         "is_control": pd.array(rng.choice([True, False, None], n), dtype="boolean")})


def _to_spark(spark, pdf):
    return spark.createDataFrame(pdf.astype(object).where(pdf.notna(), None), SCHEMA)


def test_hash_equals_sparks_xxhash64_bit_for_bit(spark):
    from pyspark.sql import functions as F

    pdf = _random_tasks()
    got = (_to_spark(spark, pdf).select(F.xxhash64("task_id", "lrg_id", "region_split", "is_control").alias("h"))
           .toPandas()["h"].to_numpy())
    assert np.array_equal(spark_xxhash64(pdf.task_id, pdf.lrg_id, pdf.region_split, pdf.is_control), got)


def test_fingerprint_equals_the_gates_spark_sums(spark):
    pdf = _random_tasks(seed=2)
    row = _to_spark(spark, pdf).agg(*identity_sums()).first()
    hashes = spark_xxhash64(pdf.task_id, pdf.lrg_id, pdf.region_split, pdf.is_control)
    assert fingerprint(hashes) == [row["__id_lo"], row["__id_hi"]]


def test_fingerprint_changes_with_any_identity_field():
    base = pd.DataFrame({"task_id": ["a", "b", "c"], "lrg_id": [1, 2, 3], "region_split": ["train", "val", "test"],
                         "is_control": [True, False, True]})
    fp = fingerprint(spark_xxhash64(*[base[c] for c in base]))
    for column, value in (("task_id", "a2"), ("lrg_id", 9), ("region_split", "test"), ("is_control", False)):
        changed = base.copy()
        changed.loc[0, column] = value
        assert fingerprint(spark_xxhash64(*[changed[c] for c in changed])) != fp, column
    # a duplicated task in place of another: same count, different fingerprint
    dup = base.copy()
    dup.loc[2] = dup.loc[1]
    assert fingerprint(spark_xxhash64(*[dup[c] for c in dup])) != fp
    # order does not matter (a multiset hash)
    assert fingerprint(spark_xxhash64(*[base[c][::-1] for c in base])) == fp


def test_duplicates_and_leakage_counted_by_hand():
    tasks = ["t1", "t2", "t2", "t3", "t3", "t3", None]
    assert duplicate_task_ids(tasks) == (5, ["t2", "t3"])
    lrg = [10, 10, 11, 11, 12, 13, 13, None]
    split = ["train", "val", "test", "test", "val", "train", "train", "val"]
    ctl = [True, True, True, False, False, False, None, True]
    # 10: train+val (leak); 11: control and injection (shared); 12: clean; 13: injection and NULL role
    assert lrg_leakage(lrg, split, ctl) == {"multi_split": 1, "multi_ex": [10], "shared": 1, "shared_ex": [11]}


def _identity_run(spark, case, identity):
    ds = open_dataset(str(case[0]))
    return profile_and_contract(read_rows(spark, ds), run_config=load_run_config("demo"),
                                hlr_filter_arcsec=hlr_filter_for(ds.metadata, {}),
                                files_per_split=ds.files_per_split(), include_pixels=False,
                                manifest_identity=identity)


def _identity_answer(contract, prof):
    a = prof["all"]
    return (contract.checks["unique_task_id"]["failed_rows"], a["lrg_in_multiple_splits"],
            a["lrg_control_and_injection"])


@pytest.mark.parametrize("case", ["clean", "faint_arcs"])
def test_rows_matching_the_manifest_take_its_answer_without_the_shuffle(spark, gate_cases, case):
    clean_identity = identity_of(_cached_clean(_split_rows(case)))
    contract, prof = _identity_run(spark, gate_cases(case), clean_identity)
    assert prof["all"]["task_identity"] == {"checked_by": "manifest fingerprint", "matches_manifest": True}
    exact = _identity_run(spark, gate_cases(case), None)
    assert exact[1]["all"]["task_identity"] == {"checked_by": "exact shuffle", "matches_manifest": None}
    assert _identity_answer(contract, prof) == _identity_answer(*exact) == (0, 0, 0)


@pytest.mark.parametrize("case, answer", [("duplicate_task_ids", (4, 0, 0)), ("lrg_in_two_splits", (0, 1, 0)),
                                          ("controls_share_lrgs", (0, 0, 5)), ("rows_lost", (0, 0, 0))])
def test_rows_differing_from_the_manifest_are_checked_exactly(spark, gate_cases, case, answer):
    contract, prof = _identity_run(spark, gate_cases(case), identity_of(_cached_clean(_split_rows(case))))
    assert prof["all"]["task_identity"] == {"checked_by": "exact shuffle", "matches_manifest": False}
    assert _identity_answer(contract, prof) == answer


def test_a_leaky_manifest_leaks_into_the_gate_through_the_shortcut(spark, gate_cases):
    """Rows equal to a manifest that itself puts an LRG in two splits: the gate reports the leak."""
    from tests.gate_factories import DEFECTS

    c = {k: v.copy() for k, v in _cached_clean(_split_rows("lrg_in_two_splits")).items()}
    DEFECTS["lrg_in_two_splits"](c)
    leaky = identity_of(c)
    assert leaky["multi_split"] == 1
    contract, prof = _identity_run(spark, gate_cases("lrg_in_two_splits"), leaky)
    assert prof["all"]["task_identity"]["checked_by"] == "manifest fingerprint"
    assert _identity_answer(contract, prof) == (0, 1, 0)


def test_manifest_json_identity_is_used_only_when_complete():
    ident = manifest_identity(["a", "b"], [1, 2], ["train", "val"], [True, False])
    assert manifest_identity_for({"identity": ident}) == ident
    assert manifest_identity_for({}) is None
    assert manifest_identity_for({"identity": {**ident, "fingerprint": "abc"}}) is None
    assert manifest_identity_for({"identity": {**ident, "rows": "many"}}) is None
    assert manifest_identity_for({"identity": [1, 2]}) is None
    assert manifest_identity_for({"identity": {k: v for k, v in ident.items() if k != "shared"}}) is None


def _split_rows(case):
    from tests.gate_factories import DEFECT_SPLIT_ROWS, SPLIT_ROWS

    return SPLIT_ROWS if case == "clean" else DEFECT_SPLIT_ROWS
