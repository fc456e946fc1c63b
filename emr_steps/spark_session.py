"""The Spark steps' session and schema: one factory for the steps and the gate, kept in
`pipeline.spark_session` (emr_steps may import pipeline; pipeline never imports emr_steps)."""

from pipeline.spark_session import (  # noqa: F401 - re-exported for the entry points
    DEFAULT_LOCAL_MASTER,
    PIXEL_READER_BATCH_ROWS,
    get_spark,
    spark_schema,
    spark_type,
)
