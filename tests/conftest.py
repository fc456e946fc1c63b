"""Shared fixtures. Spark is started once per test session (it costs ~10 s)."""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_HST = REPO / "data" / "hst_galaxies"

# Spark workers must run this venv's Python, whatever `python` is on PATH.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/dhs_numba_cache")


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("dhs-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.columnarReaderBatchSize", "128")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def hst_dir():
    """The 7 real HST galaxies shipped in the repo (copied from shared/data/hst_galaxies)."""
    return SHARED_HST


@pytest.fixture()
def s3(monkeypatch):
    """moto's in-process S3 with fake credentials and one bucket, `dhs` (us-east-2): the boto3 client."""
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-2")
        client.create_bucket(Bucket="dhs", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
        yield client
