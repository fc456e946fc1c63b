"""Issue 15 case 5: stored XSS through a split name, and third-party script in the Data Docs.

Before: a bare folder `region_split=<img src=x onerror=alert(1)>/` passed `dhs validate` and the
name appeared unescaped in the GX pages served on the Airflow origin; the GX pages loaded jQuery,
Bootstrap, bootstrap-table and Vega from public CDNs (and offline the index was an empty frame)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

from pipeline.errors import InputError

REPO = Path(__file__).resolve().parents[1]
XSS = "<img src=x onerror=alert(1)>"


def _bare_dataset(root: Path, split: str) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / f"region_split={split}"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"task_id": [1, 2]}), folder / "part-0.parquet")
    return root


def test_split_name_outside_train_val_test_is_refused_before_gx(tmp_path):
    from pipeline.dataset import open_dataset

    good = _bare_dataset(tmp_path / "good", "train")
    assert open_dataset(str(good)).files_per_split() == {"train": 1}
    bad = _bare_dataset(tmp_path / "bad", XSS)
    with pytest.raises(InputError) as exc:
        open_dataset(str(bad))
    assert "region_split must be one of train, val, test" in exc.value.problem
    with pytest.raises(InputError):
        open_dataset(str(_bare_dataset(tmp_path / "enc", "%3Cimg%20src%3Dx%3E")))


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    """A GX site built by the gate's own suites code; the hostile split name is handed to GX
    directly here (as if the split check were bypassed), to check the second line of defence."""
    import pandas as pd

    from pipeline.gate.suites import run_suites
    from pipeline.gate.thresholds import Check, Thresholds

    docs = tmp_path_factory.mktemp("site") / "data_docs"
    thresholds = Thresholds(variant="probe", description="probe", checks=(
        Check("rate", "cutout_ok_rate", "split", 0.9, None, "why"), Check("rows", "rows", "dataset", 1, None, "why")))
    split = pd.DataFrame([{"region_split": "train", "cutout_ok_rate": 1.0}, {"region_split": XSS, "cutout_ok_rate": 0.5}])
    dataset = pd.DataFrame([{"region_split": "all", "rows": 10}])
    run_suites(split, dataset, thresholds, with_drift=False, data_docs_dir=str(docs))
    return docs


def _tags(text: str, name: str) -> list[str]:
    return re.findall(rf"<{name}\b[^>]*>", text, re.I)


def _attr(tag: str, attr: str) -> str | None:
    m = re.search(rf"""\b{attr}\s*=\s*(["'])(.*?)\1""", tag, re.I | re.S)
    return m.group(2) if m else None


def test_pages_load_only_their_own_files(built_site):
    pages = sorted(built_site.rglob("*.html"))
    assert len(pages) >= 3 and (built_site / "index.html") in pages
    for page in pages:
        text = page.read_text()
        loads = [(t, _attr(t, "src")) for t in _tags(text, "script") + _tags(text, "img")]
        loads += [(t, _attr(t, "href")) for t in _tags(text, "link")]
        for tag, url in loads:
            if tag.lower().startswith("<script"):
                assert url, f"{page.name}: inline script left: {tag}"  # CSP script-src 'self' would block it
            if not url or url.startswith("data:"):
                continue
            assert not urlparse(url).scheme and not url.startswith("//"), f"{page.name}: third-party load {url}"
            target = (page.parent / url.split("?")[0]).resolve()
            assert target.is_file() and built_site.resolve() in target.parents, f"{page.name}: {url} missing"
        for tag in re.findall(r"<[A-Za-z][^<>]*>", text):
            assert not re.search(r"\son[a-z]+\s*=", tag, re.I), f"{page.name}: event handler attribute {tag}"
    index = (built_site / "index.html").read_text()
    assert "static/vendor/jquery-3.7.1/jquery.min.js" in index and "bootstrap-table.min.js" in index


def test_licences_and_readme_ship_with_the_assets(built_site):
    vendor = built_site / "static" / "vendor"
    for folder in (p for p in vendor.iterdir() if p.is_dir()):
        assert list(folder.glob("LICENSE*")), f"{folder.name} has no licence"
    readme = (REPO / "pipeline/data/datadocs_vendor/README.md").read_text()
    for folder in (p for p in vendor.iterdir() if p.is_dir()):
        assert f"`{folder.name}/`" in readme, folder.name


def test_wheel_carries_the_assets(tmp_path):
    """The EMR nodes and the Docker image install the wheel: the assets must be in it."""
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("dark_halo_scope-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(REPO).as_posix() for p in (REPO / "pipeline/data/datadocs_vendor").rglob("*") if p.is_file()}
    assert "pipeline/data/datadocs_vendor/jquery-3.7.1/jquery.min.js" in shipped
    assert shipped <= names, sorted(shipped - names)[:5]
    assert "pipeline/gate/data_docs.py" in names
