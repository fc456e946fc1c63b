"""One way to address files: local paths, `s3://` and `s3a://` URIs alike.

Spark wants `s3a://` on a plain Hadoop install and `s3://` on EMR; boto3 wants bucket + key.
Everything in the pipeline passes URIs through these helpers so both spellings work
(seed section 5.2: "s3:// vs s3a:// URIs: local Spark failed").

boto3 is imported inside functions on purpose: executors unpickle this module before their
environment is complete (seed section 5.2: "module-level boto3 import: boto3=None on executors").

Nothing outside this module talks to boto3 for plain reads, writes, listings, deletes and hashes:
`exists`, `read_bytes`, `write_bytes`, `delete`, `list_files`, `list_objects` (sizes, ETags),
`sha256`, `put_tree`, `local_copy`. `s3_client()` is public for the S3 conditional requests
(If-None-Match / If-Match) of pipeline.conditional_io only.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
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


def normalize(uri: str) -> str:
    """One spelling per location, for comparing two URIs: `s3://` for S3, no trailing `/`."""
    return to_s3(uri).rstrip("/") if is_s3(str(uri)) else str(uri).rstrip("/")


def s3_client():
    """A boto3 S3 client (endpoint from AWS_ENDPOINT_URL_S3). For the conditional requests of
    pipeline.conditional_io; everything else uses the functions of this module."""
    import boto3  # noqa: PLC0415 - see module docstring

    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None)


def exists(uri: str) -> bool:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        client = s3_client()
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
        client = s3_client()
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
        s3_client().put_object(Bucket=bucket, Key=key, Body=data)
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
            s3_client().put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=ctype)
        else:
            write_bytes(dest, path.read_bytes())
        written.append(dest)
    return written


def list_files(uri: str, suffix: str = "") -> list[str]:
    """All files under a prefix (recursive), sorted, as URIs in the input's spelling."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        prefix = key.rstrip("/") + "/" if key else ""
        client = s3_client()
        out = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", []) if o["Key"].endswith(suffix)]
        return sorted(out)
    root = Path(uri)
    if not root.exists():
        return []
    return sorted(str(p) for p in root.rglob(f"*{suffix}") if p.is_file())


def delete(uri: str) -> None:
    """Delete one object or file; nothing happens when it is absent."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().delete_object(Bucket=bucket, Key=key)
        return
    Path(uri).unlink(missing_ok=True)


@dataclass(frozen=True)
class StoredObject:
    uri: str
    size_bytes: int
    #: the S3 ETag (quotes stripped); None for a local file
    etag: str | None


def list_objects(uri: str, suffix: str = "") -> list[StoredObject]:
    """`list_files` with each file's size (and ETag on S3), from the listing itself: S3 objects are
    not downloaded. Sorted by URI."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        prefix = key.rstrip("/") + "/" if key else ""
        out = []
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out += [StoredObject(f"s3://{bucket}/{o['Key']}", int(o["Size"]), o["ETag"].strip('"'))
                    for o in page.get("Contents", []) if o["Key"].endswith(suffix)]
        return sorted(out, key=lambda o: o.uri)
    return [StoredObject(f, os.path.getsize(f), None) for f in list_files(uri, suffix)]


def check_s3_uri(uri: str, source: str = "S3 URI") -> str:
    """`uri` in s3:// spelling, refusing keys that name one object under several spellings:
    `..` and `.` segments, empty segments (`//`), percent-encoded bytes and backslashes. S3 keeps
    such keys literally while tools that normalise paths (the local cache, Hadoop, a prefix check
    on the string) read them differently, so an allowed-root check on the string could be fooled.
    A trailing `/` is dropped."""
    normal = to_s3(uri)
    rest = normal[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket or ""):
        raise InputError(source, "needs s3://<bucket>/<key> with a valid bucket name")
    key = key[:-1] if key.endswith("/") else key
    if not key:
        return f"s3://{bucket}"
    if "%" in key or "\\" in key or any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InputError(source, "S3 keys with '%', backslashes or control characters are refused")
    bad = [seg for seg in key.split("/") if seg in ("", ".", "..")]
    if bad:
        raise InputError(source, "S3 keys with empty, '.' or '..' path segments are refused")
    return f"s3://{bucket}/{key}"


def private_dir(path: str | Path, source: str) -> Path:
    """`path` as a folder only this user can write: created with mode 0700 when missing; an
    existing one must be ours and not group/world-writable (another local user could plant files
    there that we would then trust: pickled numba code, cached downloads)."""
    import stat  # noqa: PLC0415

    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise InputError(source, f"{path} is not a plain folder")
    if info.st_uid != os.getuid():
        raise InputError(source, f"{path} belongs to another user (uid {info.st_uid})")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InputError(source, f"{path} is writable by other users (mode {stat.S_IMODE(info.st_mode):o})")
    return path


def default_cache_dir() -> Path:
    """$DHS_CACHE_DIR, else a per-user folder in the temp dir (never one shared between users)."""
    import tempfile  # noqa: PLC0415

    return Path(os.environ.get("DHS_CACHE_DIR") or Path(tempfile.gettempdir()) / f"dhs_cache-{os.getuid()}")


def sha256(uri: str | Path) -> str:
    """sha256 of one file or S3 object, streamed (manifests, data files and banks can be large).
    A missing or unreadable one raises InputError naming it."""
    import hashlib  # noqa: PLC0415

    h = hashlib.sha256()
    if is_s3(str(uri)):
        bucket, key = split_s3(str(uri))
        client = s3_client()
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
        except client.exceptions.ClientError as exc:
            raise InputError(str(uri), f"cannot read S3 object: {exc}") from None
        for chunk in body.iter_chunks(1 << 20):
            h.update(chunk)
        return h.hexdigest()
    if not Path(uri).is_file():
        raise InputError(str(uri), "no such file")
    with open(uri, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _md5_path(path: Path) -> str:
    import hashlib  # noqa: PLC0415

    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_plain_md5_etag(etag: str) -> bool:
    """Single-part uploads without SSE-KMS have the content's MD5 as ETag; multipart ones end in -N."""
    return bool(re.fullmatch(r"[0-9a-f]{32}", etag))


def local_copy(uri: str, cache_dir: str | None = None) -> str:
    """A local path for `uri` (downloaded into a private cache for S3) for libraries like h5py
    that need a real file.

    The cached file's name is a hash of the URI (bucket and key never become a path, so no key
    can name a file outside the cache). A cached copy is used only while the object's current
    ETag equals the one recorded at download and the file still has the sha256 recorded then;
    a changed object is fetched again, a changed or planted file is replaced."""
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415

    if not is_s3(uri):
        if not Path(uri).is_file():
            raise InputError(uri, "no such file")
        return str(uri)
    normal = to_s3(uri)
    bucket, key = split_s3(normal)
    cache = private_dir(cache_dir or default_cache_dir(), "DHS_CACHE_DIR")
    suffix = re.sub(r"[^A-Za-z0-9._-]", "_", posixpath.basename(key))[-60:].lstrip(".")
    dest = cache / f"{hashlib.sha256(normal.encode()).hexdigest()[:40]}-{suffix or 'object'}"
    record_path = dest.with_name(dest.name + ".record.json")
    client = s3_client()
    try:
        etag = client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    except client.exceptions.ClientError as exc:
        raise InputError(uri, f"cannot read S3 object: {exc}") from None
    try:
        record = json.loads(record_path.read_text())
        if (record.get("uri") == normal and record.get("etag") == etag and dest.is_file()
                and sha256(dest) == record.get("sha256")):
            return str(dest)
    except (OSError, ValueError, AttributeError):
        pass
    tmp = dest.with_name(dest.name + f".part-{os.getpid()}")
    try:
        obj = client.get_object(Bucket=bucket, Key=key)
        etag = obj["ETag"].strip('"')
        with open(tmp, "wb") as fh:
            for block in iter(lambda: obj["Body"].read(1 << 20), b""):
                fh.write(block)
    except client.exceptions.NoSuchKey:
        raise InputError(uri, "no such S3 object") from None
    except client.exceptions.ClientError as exc:
        raise InputError(uri, f"cannot read S3 object: {exc}") from None
    if _is_plain_md5_etag(etag) and _md5_path(tmp) != etag:
        tmp.unlink(missing_ok=True)
        raise InputError(uri, "downloaded bytes do not match the object's ETag (MD5)")
    digest = sha256(tmp)
    os.replace(tmp, dest)
    write_bytes(str(record_path), json.dumps({"uri": normal, "etag": etag, "sha256": digest}).encode())
    return str(dest)
