"""Data Docs and the report are built on local disk (GX 1.x cannot write to S3) and copied beside
validation.json with `storage.put_tree`: every file arrives, byte for byte, and S3 objects carry a
Content-Type so that a browser renders the HTML instead of downloading it."""

from __future__ import annotations

import pytest

from pipeline import storage
from pipeline.errors import InputError


def _site(root):
    (root / "validations" / "s").mkdir(parents=True)
    (root / "index.html").write_text("<html>index</html>")
    (root / "validations" / "s" / "r.html").write_text("<html>result</html>")
    (root / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    return {"index.html", "validations/s/r.html", "plot.png"}




def test_put_tree_to_s3_keeps_paths_bytes_and_content_types(tmp_path, s3):
    rels = _site(tmp_path / "site")
    written = storage.put_tree(tmp_path / "site", "s3a://dhs/runs/D/validation/run1/data_docs")
    assert sorted(written) == sorted(f"s3a://dhs/runs/D/validation/run1/data_docs/{r}" for r in rels)
    for rel in rels:
        obj = s3.get_object(Bucket="dhs", Key=f"runs/D/validation/run1/data_docs/{rel}")
        assert obj["Body"].read() == (tmp_path / "site" / rel).read_bytes()
    assert s3.head_object(Bucket="dhs", Key="runs/D/validation/run1/data_docs/index.html")["ContentType"] == "text/html"
    assert s3.head_object(Bucket="dhs", Key="runs/D/validation/run1/data_docs/plot.png")["ContentType"] == "image/png"


def test_put_tree_local_and_missing_source(tmp_path):
    rels = _site(tmp_path / "site")
    storage.put_tree(tmp_path / "site", str(tmp_path / "copy"))
    assert {p.relative_to(tmp_path / "copy").as_posix() for p in (tmp_path / "copy").rglob("*") if p.is_file()} == rels
    with pytest.raises(InputError, match="no such folder"):
        storage.put_tree(tmp_path / "nope", str(tmp_path / "copy2"))
