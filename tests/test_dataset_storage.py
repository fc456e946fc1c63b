"""pipeline.dataset over pipeline.storage's public API: the same answers on local disk and on S3
(moto), the two metadata readers' contracts, and the file checksum's format (issue 18)."""

from __future__ import annotations

import hashlib
import json

import pytest

from pipeline import conditional_io, dataset, storage
from pipeline.errors import InputError

FILES = {"region_split=train/part-0.parquet": b"PAR1 train rows", "region_split=val/part-0.parquet": b"PAR1 val",
         "_temporary/0/part-9.parquet": b"half written", "_SUCCESS": b""}


def _write_both(s3, tmp_path):
    local = tmp_path / "data"
    for rel, body in FILES.items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(body)
        s3.put_object(Bucket="dhs", Key=f"ds/data/{rel}", Body=body)
    return str(local), "s3://dhs/ds/data"


def test_files_checksum_format_is_unchanged():
    """content_checksum in receipts, validation.json and promotion records: sha256 over the sorted
    'relpath\\tsize\\tdigest\\n' lines (value computed with the code before the refactor)."""
    files = [dataset.DataFile("region_split=val/b.parquet", 5, "def"), dataset.DataFile("region_split=train/a.parquet", 3, "abc")]
    assert dataset.files_checksum(files) == "483fa78160bbd3dd35e3e2e5db0c6641873ae4988798ecb31c22be036ea755d3"


def test_listing_sizes_and_digests_agree_on_local_disk_and_s3(s3, tmp_path):
    local, remote = _write_both(s3, tmp_path)
    objs = storage.list_objects(remote, ".parquet")
    assert [o.uri for o in objs] == sorted(f"{remote}/{r}" for r in FILES if r.endswith(".parquet"))
    for o in objs:
        head = s3.head_object(Bucket="dhs", Key=storage.split_s3(o.uri)[1])
        assert (o.size_bytes, o.etag) == (head["ContentLength"], head["ETag"].strip('"'))
    assert all(o.etag is None for o in storage.list_objects(local))

    on_disk, on_s3 = dataset.list_data_files(local), dataset.list_data_files(remote)
    assert [(f.relpath, f.size_bytes) for f in on_disk] == [(f.relpath, f.size_bytes) for f in on_s3]
    assert [f.digest for f in on_disk] == [hashlib.sha256(FILES[f.relpath]).hexdigest() for f in on_disk]
    assert [f.digest for f in on_s3] == [hashlib.md5(FILES[f.relpath]).hexdigest() for f in on_s3]  # noqa: S324 - the ETag
    # the steps' view leaves the interrupted job's _temporary/ out; both stores agree
    assert dataset.dir_stats(local) == dataset.dir_stats(remote) == (2, len(b"PAR1 train rows") + len(b"PAR1 val"))


def test_one_sha256_for_files_and_objects(s3, tmp_path):
    local, remote = _write_both(s3, tmp_path)
    want = hashlib.sha256(FILES["region_split=val/part-0.parquet"]).hexdigest()
    assert storage.sha256(f"{local}/region_split=val/part-0.parquet") == want
    assert storage.sha256(f"{remote}/region_split=val/part-0.parquet") == want
    for missing in (f"{local}/nope.parquet", f"{remote}/nope.parquet"):
        with pytest.raises(InputError, match="nope.parquet"):
            storage.sha256(missing)


def test_delete_and_remove_metadata_on_both_stores(s3, tmp_path):
    local, remote = _write_both(s3, tmp_path)
    for root in (local, remote):
        dataset.write_metadata(root, {"format": dataset.FORMAT, "rows": 2})
        assert dataset.read_metadata(root)["rows"] == 2
        dataset.remove_metadata(root)
        assert dataset.read_metadata(root) is None and dataset.read_any_metadata(root) == {}
        storage.delete(storage.join(root, dataset.METADATA_FILE))  # absent: nothing happens
    _, version = conditional_io.read_versioned(f"{remote}/_SUCCESS")
    assert conditional_io.delete_if_version(f"{remote}/_SUCCESS", version)
    assert not storage.exists(f"{remote}/_SUCCESS")


def test_the_two_metadata_readers(tmp_path):
    """read_metadata: this pipeline's format or None; read_any_metadata: whatever JSON is there
    (a foreign producer's, the benchmark table's) or {}; both name a file that is not JSON."""
    d = tmp_path / "d"
    d.mkdir()
    assert dataset.read_metadata(str(d)) is None and dataset.read_any_metadata(str(d)) == {}
    (d / dataset.METADATA_FILE).write_text(json.dumps({"run_config": {"variant": "demo"}}))
    assert dataset.read_any_metadata(str(d)) == {"run_config": {"variant": "demo"}}
    with pytest.raises(InputError, match="not a dhs-dataset/1 metadata document"):
        dataset.read_metadata(str(d))
    (d / dataset.METADATA_FILE).write_text("{not json")
    for read in (dataset.read_metadata, dataset.read_any_metadata):
        with pytest.raises(InputError, match=dataset.METADATA_FILE):
            read(str(d))


def test_uri_comparison_spelling():
    assert storage.normalize("s3a://b/k/") == storage.normalize("s3://b/k") == "s3://b/k"
    assert storage.normalize("/x/y/") == "/x/y"
