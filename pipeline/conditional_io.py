"""Conditional writes on local disk and S3 alike: create-if-absent and replace-if-unchanged.

Why: two Airflow runs (or a run and a person with `dhs promote`) may touch the same dataset prefix.
A plain "read, decide, write" loses one of two concurrent updates; these primitives make the
write itself fail when somebody else got there first.

- S3: `PutObject` with `If-None-Match: *` (create only if absent) and `If-Match: <ETag>` (replace
  only the version that was read); both are atomic on S3 (and honoured by moto).
- Local disk: `O_CREAT | O_EXCL` for create-if-absent; replace-if-unchanged takes a short-lived
  `<file>.cas` guard (itself O_EXCL), compares the content's sha256 with the expected version,
  then replaces the file by an atomic rename.

A "version" is an opaque string: the S3 ETag, or the sha256 of the local file's bytes.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from pipeline import storage


class ConflictError(Exception):
    """The object exists already (create) or changed since it was read (replace)."""

    def __init__(self, uri: str, problem: str):
        self.uri = str(uri)
        self.problem = problem
        super().__init__(f"{self.uri}: {problem}")


def _is_precondition_failure(exc) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("PreconditionFailed", "412", "ConditionalRequestConflict")


def create_exclusive(uri: str, data: bytes) -> str:
    """Write `uri` only if nothing is there; returns the new version. ConflictError otherwise."""
    if storage.is_s3(uri):
        bucket, key = storage.split_s3(uri)
        client = storage.s3_client()
        try:
            resp = client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except client.exceptions.ClientError as exc:
            if _is_precondition_failure(exc):
                raise ConflictError(uri, "already exists") from None
            raise
        return resp["ETag"].strip('"')
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise ConflictError(uri, "already exists") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return hashlib.sha256(data).hexdigest()


def read_versioned(uri: str) -> tuple[bytes | None, str | None]:
    """(bytes, version) of `uri`, or (None, None) when it does not exist."""
    if storage.is_s3(uri):
        bucket, key = storage.split_s3(uri)
        client = storage.s3_client()
        try:
            resp = client.get_object(Bucket=bucket, Key=key)
        except client.exceptions.NoSuchKey:
            return None, None
        return resp["Body"].read(), resp["ETag"].strip('"')
    path = Path(uri)
    if not path.is_file():
        return None, None
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def replace_if_version(uri: str, data: bytes, expected_version: str | None) -> str:
    """Replace `uri` only if its current version is `expected_version` (None: only if absent).
    Returns the new version; ConflictError when somebody changed it in between."""
    if expected_version is None:
        return create_exclusive(uri, data)
    if storage.is_s3(uri):
        bucket, key = storage.split_s3(uri)
        client = storage.s3_client()
        try:
            resp = client.put_object(Bucket=bucket, Key=key, Body=data, IfMatch=f'"{expected_version}"')
        except client.exceptions.ClientError as exc:
            if _is_precondition_failure(exc) or "NoSuchKey" in str(exc):
                raise ConflictError(uri, "changed since it was read (another writer)") from None
            raise
        return resp["ETag"].strip('"')
    path = Path(uri)
    guard = path.with_name(f".{path.name}.cas")
    deadline = time.monotonic() + 10
    while True:
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise ConflictError(uri, f"another writer holds {guard} (remove it if no writer is running)") from None
            time.sleep(0.05)
    try:
        _, current = read_versioned(uri)
        if current != expected_version:
            raise ConflictError(uri, "changed since it was read (another writer)")
        storage.write_bytes(uri, data)
        return hashlib.sha256(data).hexdigest()
    finally:
        guard.unlink(missing_ok=True)


def delete_if_version(uri: str, expected_version: str) -> bool:
    """Delete `uri` if it still has `expected_version`; False when it changed or is gone.
    (S3 has no conditional DELETE for general buckets: the check and the delete are two calls,
    which is enough for a lock whose holder is the only one that deletes it.)"""
    _, current = read_versioned(uri)
    if current != expected_version:
        return False
    storage.delete(uri)
    return True
