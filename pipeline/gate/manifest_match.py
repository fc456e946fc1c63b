"""The rows are exactly the manifest's tasks: a failing check, not just a note.

The gate's fused scan fingerprints the rows' task identities (task_id, lrg_id, region_split,
is_control) and compares the fingerprint with the manifest's (pipeline.task_identity). A
difference is a failure whether or not it also creates duplicates or leakage: a task swapped for a
foreign one with every count unchanged is still not the manifest's dataset. When they differ, an
exact comparison (one join on task_id) names what differs: rows the manifest does not have,
manifest tasks with no row, and rows whose LRG, split or role differ from their task's.
"""

from __future__ import annotations

from pipeline import storage
from pipeline.task_identity import IDENTITY_COLUMNS, manifest_identity


def identity_from_table(manifest_uri: str) -> dict | None:
    """The manifest's identity record computed from manifest.parquet (for a manifest.json written
    before the record existed); None when there is no table to read."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    from pipeline.errors import InputError  # noqa: PLC0415
    from pipeline.manifest import manifest_parquet_uri  # noqa: PLC0415

    uri = manifest_parquet_uri(str(manifest_uri).rstrip("/").removesuffix("/manifest.json"))
    if not storage.exists(uri):
        return None
    try:
        table = pq.read_table(pa.BufferReader(storage.read_bytes(uri)), columns=list(IDENTITY_COLUMNS))
    except (pa.ArrowInvalid, OSError, KeyError) as exc:
        raise InputError(uri, f"cannot read the manifest's task identities ({exc})") from None
    df = table.to_pandas()
    return manifest_identity(df["task_id"], df["lrg_id"], df["region_split"], df["is_control"])


def differences(spark, rows_df, manifest_uri: str, n_examples: int = 3) -> dict:
    """{"failed_rows", "examples", "problem"}: how the rows' identities differ from the manifest's."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    from pipeline.manifest import manifest_parquet_uri  # noqa: PLC0415

    uri = manifest_parquet_uri(str(manifest_uri).rstrip("/").removesuffix("/manifest.json"))
    if not storage.exists(uri):
        return {"failed_rows": 0, "examples": [], "problem": (
            f"the rows' identity fingerprint differs from the manifest's, and there is no {uri} to say which rows "
            "differ: the rows are not the manifest's tasks")}
    cols = list(IDENTITY_COLUMNS)
    rows = rows_df.select(*[F.col(c).alias(f"r_{c}") if c != "task_id" else F.col(c) for c in cols])
    tasks = spark.read.parquet(storage.to_spark(uri)).select(
        *[F.col(c).alias(f"m_{c}") if c != "task_id" else F.col(c) for c in cols])
    joined = rows.join(tasks, on="task_id", how="full_outer")
    r_present = F.col("r_is_control").isNotNull() | F.col("r_region_split").isNotNull() | F.col("r_lrg_id").isNotNull()
    m_present = F.col("m_is_control").isNotNull() | F.col("m_region_split").isNotNull() | F.col("m_lrg_id").isNotNull()
    kind = (F.when(~m_present, F.lit("not_in_manifest"))
            .when(~r_present, F.lit("missing_row"))
            .when(~(F.col("r_lrg_id").cast("long").eqNullSafe(F.col("m_lrg_id").cast("long"))
                    & F.col("r_region_split").eqNullSafe(F.col("m_region_split"))
                    & F.col("r_is_control").eqNullSafe(F.col("m_is_control"))), F.lit("identity_differs")))
    found = (joined.select("task_id", kind.alias("kind")).where(F.col("kind").isNotNull())
             .groupBy("kind").agg(F.count(F.lit(1)).alias("n"),
                                  F.slice(F.collect_list("task_id"), 1, n_examples).alias("ex"))
             .collect())
    by_kind = {r["kind"]: (int(r["n"]), list(r["ex"])) for r in found}
    if not by_kind:
        # same rows, same identities: the fingerprint can differ only through a NULL identity
        # field (ignored by the join's equality above? no: eqNullSafe counts it) or a hash
        # collision in the manifest's record: report it as a mismatch of the record itself
        return {"failed_rows": 0, "examples": [], "problem": (
            "the rows' identity fingerprint differs from manifest.json's identity record, but every row matches "
            "manifest.parquet task for task: manifest.json does not describe manifest.parquet (rewrite it with `dhs manifest`)")}
    labels = {"not_in_manifest": "rows whose task_id is not in the manifest",
              "missing_row": "manifest tasks with no row",
              "identity_differs": "rows whose lrg_id, region_split or is_control differ from their task's"}
    parts = [f"{n} {labels[k]} (e.g. {', '.join(map(str, ex))})" for k, (n, ex) in sorted(by_kind.items())]
    return {"failed_rows": sum(n for n, _ in by_kind.values()),
            "examples": [e for _, ex in by_kind.values() for e in ex][:n_examples],
            "problem": "the rows are not the manifest's tasks: " + "; ".join(parts),
            "by_kind": {k: n for k, (n, _) in by_kind.items()}}
