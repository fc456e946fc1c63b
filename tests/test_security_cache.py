"""Issue 15 case 3: the S3 download cache (pipeline.storage.local_copy) under moto.

Before: the local path was cache/<bucket>/<key>, so a key with `..` wrote outside the cache, and
a file already in the cache was used forever (a changed bank never fetched again; a planted one
trusted)."""

from __future__ import annotations

import os
import stat

import pytest

from pipeline import storage
from pipeline.errors import InputError


def test_key_with_dot_dot_never_writes_outside_the_cache(s3, tmp_path):
    cache = tmp_path / "a" / "b" / "cache"
    target = tmp_path / "evil_dag.py"
    s3.put_object(Bucket="dhs", Key="../../../../evil_dag.py", Body=b"import os  # planted")
    path = storage.local_copy("s3://dhs/../../../../evil_dag.py", cache_dir=str(cache))
    assert not target.exists(), "the object was written outside the cache"
    assert os.path.dirname(path) == str(cache) and open(path, "rb").read() == b"import os  # planted"
    assert all(p.parent == cache for p in cache.rglob("*")), "cache entries are flat, named by hash"


def test_changed_object_is_fetched_again(s3, tmp_path):
    cache = tmp_path / "cache"
    s3.put_object(Bucket="dhs", Key="banks/bank.h5", Body=b"version 1")
    first = storage.local_copy("s3://dhs/banks/bank.h5", cache_dir=str(cache))
    assert open(first, "rb").read() == b"version 1"
    s3.put_object(Bucket="dhs", Key="banks/bank.h5", Body=b"version 2, rebuilt")
    second = storage.local_copy("s3a://dhs/banks/bank.h5", cache_dir=str(cache))
    assert open(second, "rb").read() == b"version 2, rebuilt"


def test_planted_or_altered_cache_file_is_replaced(s3, tmp_path):
    cache = tmp_path / "cache"
    s3.put_object(Bucket="dhs", Key="banks/bank.h5", Body=b"the real bank")
    path = storage.local_copy("s3://dhs/banks/bank.h5", cache_dir=str(cache))
    with open(path, "wb") as fh:
        fh.write(b"planted")
    again = storage.local_copy("s3://dhs/banks/bank.h5", cache_dir=str(cache))
    assert open(again, "rb").read() == b"the real bank"


def test_cache_folder_is_private(s3, tmp_path, monkeypatch):
    monkeypatch.delenv("DHS_CACHE_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    s3.put_object(Bucket="dhs", Key="x.h5", Body=b"x")
    path = storage.local_copy("s3://dhs/x.h5")
    folder = os.path.dirname(path)
    assert folder == str(tmp_path / f"dhs_cache-{os.getuid()}"), "the default cache is per user"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(InputError) as exc:
        storage.local_copy("s3://dhs/x.h5", cache_dir=str(shared))
    assert exc.value.source == "DHS_CACHE_DIR" and "writable by other users" in exc.value.problem
