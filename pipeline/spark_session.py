"""The one SparkSession factory (Spark steps, `dhs validate`, benchmarks) and the contract schema
in Spark's types.

pyspark is imported inside the functions: `import pipeline` must stay free of Spark.
Under spark-submit (EMR: yarn, local backend: local[N]) the master, driver memory and shuffle
partitions come from spark-submit; the settings below that only make sense for a JVM we start
ourselves (a direct `dhs validate` or `python -m emr_steps.<step>`) are applied only then.
"""

from __future__ import annotations

import os
import re
import sys

import pyarrow as pa

DEFAULT_LOCAL_MASTER = "local[2]"
#: Rows per vectorized Parquet batch when reading pixel rows (see get_spark).
PIXEL_READER_BATCH_ROWS = "128"
#: Driver heap for a JVM we start ourselves: in local mode the driver runs every task, and a
#: 128-row batch of pixel rows is ~20 MB per column per task. Spark's default 1g is not enough
#: to profile the 6,000-row demo dataset (java.lang.OutOfMemoryError: Java heap space).
DEFAULT_DRIVER_MEMORY = "3g"


def _local_cores(master: str) -> int | None:
    """local[N] -> N, local[*] / local -> the machine's cores, anything else -> None."""
    m = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if not m:
        return None
    return os.cpu_count() or 1 if m.group(1) in (None, "*") else int(m.group(1))


def _submitted_master() -> str | None:
    """The master spark-submit gave this process, or None when no JVM is up yet.

    A bare SparkConf() cannot tell: before the JVM gateway is joined it is an empty Python dict,
    so an earlier check of it always missed spark-submit's master and forced local[2] onto
    `spark-submit --master yarn`. spark-submit starts the JVM first and hands its gateway over in
    PYSPARK_GATEWAY_PORT; joining it costs nothing and shows spark-submit's settings."""
    from pyspark import SparkConf, SparkContext  # noqa: PLC0415

    if SparkContext._jvm is None and "PYSPARK_GATEWAY_PORT" not in os.environ:
        return None  # the builder will start the JVM: our settings apply
    SparkContext._ensure_initialized()
    return SparkConf().get("spark.master", None)


def get_spark(app_name: str, master: str | None = None, *, conf: dict | None = None):
    """The SparkSession for a step, the gate or a benchmark.

    Under spark-submit the master comes from spark-submit (EMR: yarn); otherwise `master`, else
    $DHS_SPARK_MASTER, else local[2]; a JVM started here gets $DHS_SPARK_DRIVER_MEMORY (default
    3g) and shuffle partitions sized to the local cores (2 per core: the gate's shuffles are
    small partial aggregates, and Spark's default 200 tasks cost more than they move).
    `conf` adds or overrides settings (e.g. a benchmark's)."""
    from pyspark.sql import SparkSession  # noqa: PLC0415

    # Python workers must run this interpreter (the venv's), whatever `python` is on PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if _submitted_master() is None:
        master = master or os.environ.get("DHS_SPARK_MASTER", DEFAULT_LOCAL_MASTER)
        builder = builder.master(master).config(
            "spark.driver.memory", os.environ.get("DHS_SPARK_DRIVER_MEMORY", DEFAULT_DRIVER_MEMORY))
        cores = _local_cores(master)
        if cores:
            builder = builder.config("spark.sql.shuffle.partitions", str(2 * cores))
    elif master:
        builder = builder.master(master)
    builder = (
        builder
        # rows carry no timestamps, but metadata and logs should not depend on the host zone
        .config("spark.sql.session.timeZone", "UTC")
        # step logs are files (EMR, Airflow): no carriage-return progress bars in them
        .config("spark.ui.showConsoleProgress", os.environ.get("DHS_SPARK_PROGRESS", "false"))
        # a row holds ~160 KB of pixel arrays: the vectorized Parquet reader's default batch of
        # 4096 rows is ~650 MB per column and runs a 2 GB heap out of memory
        .config("spark.sql.parquet.columnarReaderBatchSize", PIXEL_READER_BATCH_ROWS)
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("DHS_SPARK_LOG_LEVEL", "WARN"))
    return spark


def spark_type(t: pa.DataType):
    """Arrow type -> Spark type, for the types the data contract uses. Lists become
    array<element> with containsNull=true, as Parquet lists always read back."""
    from pyspark.sql import types as T  # noqa: PLC0415

    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return T.StringType()
    if pa.types.is_int64(t):
        return T.LongType()
    if pa.types.is_int32(t):
        return T.IntegerType()
    if pa.types.is_float64(t):
        return T.DoubleType()
    if pa.types.is_float32(t):
        return T.FloatType()
    if pa.types.is_boolean(t):
        return T.BooleanType()
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t):
        return T.ArrayType(spark_type(t.value_type), containsNull=True)
    raise TypeError(f"no Spark type for Arrow type {t}")


def spark_schema(schema: pa.Schema | None = None):
    """The contract (pipeline.contract.arrow_schema) as a Spark StructType; pixel arrays become
    array<float> / array<int>, every field nullable like the Arrow schema."""
    from pyspark.sql import types as T  # noqa: PLC0415

    from pipeline.contract import arrow_schema  # noqa: PLC0415

    schema = schema or arrow_schema()
    return T.StructType([T.StructField(f.name, spark_type(f.type), nullable=True) for f in schema])
