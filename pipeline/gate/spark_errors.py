"""Unreadable data is unusable input (exit 2 naming the file), whichever library notices it.

Spark reports a corrupt Parquet file, a Hadoop `.crc` sidecar that no longer matches its file or
a file that vanished mid-read as a Java exception (Py4JJavaError, or pyspark's captured
SparkException) deep inside an action. Left alone it is a traceback and exit 1, which means "the
gate ran and failed" to every caller. `unreadable_data_as_input_error` turns those into InputError
naming the file (the path Spark's message names, else the dataset), and lets every other error
through unchanged.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

from pipeline.errors import InputError

#: Substrings of Java/Spark messages that mean "this file cannot be read as the data it claims to be".
UNREADABLE_MARKERS = (
    "ChecksumException", "ParquetDecodingException", "is not a Parquet file", "CorruptedFileException",
    "expected magic number", "Could not read footer", "FileNotFoundException", "can not read class org.apache.parquet",
    "EOFException", "Can not read value at", "Malformed Parquet", "Failed to read", "BlockMissingException",
    "SchemaColumnConvertNotSupportedException", "FAILED_READ_FILE",
)
_PATH = re.compile(r"((?:file:|s3a?://|hdfs://)[^\s,;'\"\]\)]+|/[^\s,;'\"\]\)]+\.parquet)")


def _is_spark_error(exc: BaseException) -> bool:
    mod = type(exc).__module__ or ""
    return mod.startswith(("py4j", "pyspark"))


def unreadable_file(exc: BaseException) -> tuple[str, str] | None:
    """(file, reason) when `exc` is Spark saying a data file is unreadable; else None."""
    if not _is_spark_error(exc):
        return None
    text = str(exc)
    marker = next((m for m in UNREADABLE_MARKERS if m in text), None)
    if marker is None:
        return None
    paths = [p for p in _PATH.findall(text) if ".parquet" in p or "crc" in p]
    path = paths[0] if paths else ""
    path = re.sub(r"^file:(//)?", "", path)
    line = next((ln.strip() for ln in text.splitlines() if marker in ln), marker)
    return path, line[:300]


@contextmanager
def unreadable_data_as_input_error(dataset_uri: str):
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is an unreadable file
        found = unreadable_file(exc)
        if found is None:
            raise
        path, reason = found
        raise InputError(path or str(dataset_uri), f"unreadable data file ({reason}); the dataset cannot be gated "
                                                   f"until the file is restored or the data re-written") from None
