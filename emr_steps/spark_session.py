"""SparkSession for the entry points, and the contract schema in Spark's types."""

from __future__ import annotations

import os

import pyarrow as pa

DEFAULT_LOCAL_MASTER = "local[2]"
#: Rows per vectorized Parquet batch when reading pixel rows (see get_spark).
PIXEL_READER_BATCH_ROWS = "128"


def get_spark(app_name: str, master: str | None = None):
    """The step's SparkSession. Under spark-submit the master comes from spark-submit (EMR:
    yarn); `master` (or $DHS_SPARK_MASTER, else local[2]) is only used for direct
    `python -m emr_steps.<step>` runs, where nothing else sets one."""
    from pyspark import SparkConf  # noqa: PLC0415 - keep `import emr_steps` light
    from pyspark.sql import SparkSession  # noqa: PLC0415

    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    elif "spark.master" not in dict(SparkConf().getAll()):
        builder = builder.master(os.environ.get("DHS_SPARK_MASTER", DEFAULT_LOCAL_MASTER))
    spark = (
        builder
        # rows carry no timestamps, but metadata and logs should not depend on the host zone
        .config("spark.sql.session.timeZone", "UTC")
        # step logs are files (EMR, Airflow): no carriage-return progress bars in them
        .config("spark.ui.showConsoleProgress", os.environ.get("DHS_SPARK_PROGRESS", "false"))
        # a row holds ~160 KB of pixel arrays: the vectorized Parquet reader's default batch of
        # 4096 rows is ~650 MB per column and runs a 2 GB heap out of memory
        .config("spark.sql.parquet.columnarReaderBatchSize", PIXEL_READER_BATCH_ROWS)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel(os.environ.get("DHS_SPARK_LOG_LEVEL", "WARN"))
    return spark


def spark_type(t: pa.DataType):
    """Arrow type -> Spark type, for the types the data contract uses."""
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
