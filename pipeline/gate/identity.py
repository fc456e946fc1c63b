"""Are the rows the manifest's tasks, each once, with no LRG leaking between splits or roles?

Two ways to the same answer (pipeline.gate.profile chooses):
- `identity_sums` (two aggregates in the profile's job 1) fingerprints the rows' task identities
  with the hash and sums of pipeline.task_identity; `identity_from_manifest` then takes the
  (exactly computed) duplicates and leakage of manifest.json's identity record when the
  fingerprint and row count equal the manifest's;
- otherwise `uniqueness_and_leakage` (job 3: one scan, one shuffle) finds duplicate task_ids and
  leaking LRGs on the rows themselves, naming them.
"""

from __future__ import annotations

from pyspark.sql import functions as F

#: Bits of the per-LRG mask in job 3: one per known split (any other non-null split name
#: shares bit 8; the row rule region_split_known fails such rows anyway), one per role.
_SPLIT_BITS = {"train": 1, "val": 2, "test": 4}
_OTHER_SPLIT_BIT, _CONTROL_BIT, _INJECTION_BIT = 8, 16, 32
#: The keys of a uniqueness-and-leakage answer (job 3's, or the manifest identity record's).
LEAKAGE_KEYS = ("dup_rows", "dup_examples", "multi_split", "multi_ex", "shared", "shared_ex")


def uniqueness_and_leakage(df, *, leakage: bool = True, n_examples: int = 3) -> dict:
    """Job 3: duplicate task_id rows (exact) and, with `leakage`, LRGs in several splits and
    LRGs that are both a control and an injection host, in ONE shuffle.

    Each row enters twice: keyed (0, xxhash64(task_id)) and (1, lrg_id) with a small bit mask of
    its split and role. One hash aggregate counts the rows per key and ORs the masks: a task key
    counted twice is a duplicate candidate, an LRG whose mask has two split bits is in two splits,
    one with both role bits is both a control and a host. The shuffled row is (kind, key, count,
    mask): 4 fixed-width fields, where min/max pairs of split hashes and roles took 6 (and a
    min/max over the split *string* had made it a sort aggregate, ~100 s on 12M rows). A hash
    seen twice is re-checked exactly on task_id, so a 64-bit collision can neither fail the gate
    nor hide a duplicate."""
    col = F.col
    h = F.xxhash64(col("task_id"))
    if leakage:
        split_bit = F.coalesce(
            F.when(col("region_split").isNull(), F.lit(0)),
            *[F.when(col("region_split") == F.lit(s), F.lit(b)) for s, b in _SPLIT_BITS.items()],
            F.lit(_OTHER_SPLIT_BIT))
        role_bit = F.coalesce(F.when(col("is_control"), F.lit(_CONTROL_BIT)).otherwise(
            F.when(~col("is_control"), F.lit(_INJECTION_BIT))), F.lit(0))
        entries = F.array(
            F.struct(F.lit(0).alias("kind"), h.alias("key"), F.lit(0).alias("m")),
            F.struct(F.lit(1).alias("kind"), col("lrg_id").cast("long").alias("key"),
                     (split_bit.bitwiseOR(role_bit)).alias("m")))
        per_key = (df.select(F.inline(entries)).groupBy("kind", "key")
                   .agg(F.count(F.lit(1)).alias("n"), F.expr("bit_or(m)").alias("m")))
        splits_in = F.bit_count(col("m").bitwiseAND(F.lit(15)))
        multi = (col("kind") == 1) & (splits_in > 1)
        both_roles = _CONTROL_BIT | _INJECTION_BIT
        shared = (col("kind") == 1) & (col("m").bitwiseAND(F.lit(both_roles)) == F.lit(both_roles))
        row = per_key.agg(
            F.sum(F.when((col("kind") == 0) & (col("n") > 1), col("n"))).alias("dup_hash_rows"),
            F.sum(multi.cast("int")).alias("multi_split"),
            F.sum(shared.cast("int")).alias("shared"),
            F.slice(F.collect_list(F.when(multi, col("key"))), 1, n_examples).alias("multi_ex"),
            F.slice(F.collect_list(F.when(shared, col("key"))), 1, n_examples).alias("shared_ex"),
        ).first().asDict()
    else:
        row = {"dup_hash_rows": df.groupBy(h.alias("key")).count().where(col("count") > 1)
               .agg(F.sum("count")).first()[0]}
    out = {"dup_rows": 0, "dup_examples": []}
    if row["dup_hash_rows"]:  # rare: confirm on the task_id itself (exact, and gives examples)
        dupes = df.groupBy("task_id").count().where(col("count") > 1)
        out["dup_rows"] = int(dupes.agg(F.sum("count")).first()[0] or 0)
        out["dup_examples"] = [r[0] for r in dupes.limit(n_examples).collect()] if out["dup_rows"] else []
    if leakage:
        out.update({"multi_split": int(row["multi_split"] or 0), "multi_ex": list(row["multi_ex"] or []),
                    "shared": int(row["shared"] or 0), "shared_ex": list(row["shared_ex"] or [])})
    return out


def identity_sums() -> list:
    """Job 1's extra aggregates when the manifest's identity is known: the exact sums of the low
    and high 32 bits of xxhash64(task_id, lrg_id, region_split, is_control) per row, the same hash
    and sums as pipeline.task_identity.fingerprint computes over the manifest."""
    col = F.col
    h = F.xxhash64(col("task_id").cast("string"), col("lrg_id").cast("long"),
                   col("region_split").cast("string"), col("is_control").cast("boolean"))
    return [F.sum(h.bitwiseAND(F.lit(0xFFFFFFFF))).alias("__id_lo"),
            F.sum(F.shiftrightunsigned(h, 32)).alias("__id_hi")]


def identity_from_manifest(summary: dict, rows: int, identity: dict | None) -> dict | None:
    """Job 3's answer taken from the manifest, when the rows are exactly its tasks; else None.
    `summary` is job 1's {split: aggregates} with the `identity_sums` columns."""
    if not identity:
        return None
    sums = [sum(int(s["__id_lo"] or 0) for s in summary.values()), sum(int(s["__id_hi"] or 0) for s in summary.values())]
    if sums != [int(x) for x in identity["fingerprint"]] or rows != int(identity["rows"]):
        return None
    return {k: identity[k] for k in LEAKAGE_KEYS}
