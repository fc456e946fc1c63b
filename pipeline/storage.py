"""One way to address files: local paths, `s3://` and `s3a://` URIs alike.

Spark wants `s3a://` on a plain Hadoop install and `s3://` on EMR; boto3 wants bucket + key.
Everything in the pipeline passes URIs through these helpers so both spellings work
(seed section 5.2: "s3:// vs s3a:// URIs: local Spark failed").

boto3 is imported inside functions on purpose: executors unpickle this module before their
environment is complete (seed section 5.2: "module-level boto3 import: boto3=None on executors").
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from pipeline.errors import InputError

S3_SCHEMES = ("s3://", "s3a://", "s3n://")


def is_s3(uri: str) -> bool:
    return str(uri).startswith(S3_SCHEMES)


def to_s3(uri: str) -> str:
    """`s3a://b/k` -> `s3://b/k` (boto3 and EMR spelling). Local paths pass through."""
    uri = str(uri)
    for scheme in S3_SCHEMES:
        if uri.startswith(scheme):
            return "s3://" + uri[len(scheme):]
    return uri


def to_spark(uri: str) -> str:
    """The spelling Spark's Hadoop filesystem needs: `s3a://` for S3 off EMR, absolute local paths."""
    uri = str(uri)
    if is_s3(uri):
        scheme = os.environ.get("DHS_SPARK_S3_SCHEME", "s3a")
        return f"{scheme}://" + to_s3(uri)[len("s3://"):]
    return str(Path(uri).resolve())


def split_s3(uri: str) -> tuple[str, str]:
    rest = to_s3(uri)[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise InputError(uri, "an S3 URI needs a bucket: s3://bucket/key")
    return bucket, key


def join(base: str, *parts: str) -> str:
    base = str(base)
    if is_s3(base):
        return posixpath.join(base.rstrip("/"), *parts)
    return str(Path(base, *parts))


def _s3_client():
    import boto3  # noqa: PLC0415 - see module docstring

    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None)


def exists(uri: str) -> bool:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        client = _s3_client()
        try:
            client.head_object(Bucket=bucket, Key=key)
            return True
        except client.exceptions.ClientError:
            resp = client.list_objects_v2(Bucket=bucket, Prefix=key.rstrip("/") + "/", MaxKeys=1)
            return resp.get("KeyCount", 0) > 0
    return Path(uri).exists()


def read_bytes(uri: str) -> bytes:
    """Read a whole object; a missing one raises InputError naming it."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        client = _s3_client()
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            raise InputError(uri, "no such S3 object") from None
        except client.exceptions.ClientError as exc:
            raise InputError(uri, f"cannot read S3 object: {exc}") from None
    path = Path(uri)
    if not path.is_file():
        raise InputError(uri, "no such file")
    return path.read_bytes()


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole object. Local writes go through a temporary file and an atomic rename;
    an S3 PUT is atomic by itself."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        _s3_client().put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def put_tree(local_dir: str | Path, uri: str) -> list[str]:
    """Copy every file under a local folder to `uri` (S3 prefix or local folder), keeping relative
    paths; S3 objects get a Content-Type so a browser renders the HTML pages. Returns the URIs.
    Used for GX Data Docs and the report: GX builds them on local disk only."""
    import mimetypes  # noqa: PLC0415

    src = Path(local_dir)
    if not src.is_dir():
        raise InputError(str(src), "no such folder")
    written = []
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src).as_posix()
        dest = join(uri, rel)
        if is_s3(dest):
            bucket, key = split_s3(dest)
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            _s3_client().put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=ctype)
        else:
            write_bytes(dest, path.read_bytes())
        written.append(dest)
    return written


def list_files(uri: str, suffix: str = "") -> list[str]:
    """All files under a prefix (recursive), sorted, as URIs in the input's spelling."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        prefix = key.rstrip("/") + "/" if key else ""
        client = _s3_client()
        out = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", []) if o["Key"].endswith(suffix)]
        return sorted(out)
    root = Path(uri)
    if not root.exists():
        return []
    return sorted(str(p) for p in root.rglob(f"*{suffix}") if p.is_file())


def local_copy(uri: str, cache_dir: str | None = None) -> str:
    """A local path for `uri` (downloaded once into `cache_dir` for S3) for libraries like h5py
    that need a real file."""
    if not is_s3(uri):
        if not Path(uri).is_file():
            raise InputError(uri, "no such file")
        return str(uri)
    bucket, key = split_s3(uri)
    cache = Path(cache_dir or os.environ.get("DHS_CACHE_DIR", "/tmp/dhs_cache"))
    dest = cache / bucket / key
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + f".part-{os.getpid()}")
        tmp.write_bytes(read_bytes(uri))
        os.replace(tmp, dest)
    return str(dest)
