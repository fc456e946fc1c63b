"""The gate task's "Data Docs" button.

The gate operator stores the Data Docs URL in XCom under this link's key while it runs; Airflow 3's
API server reads it from there, so the link works without the DAG's code on the server.
Local Data Docs are served by the `/dhs-docs` app of our plugin (see docs_app.py); S3 Data Docs
link to the S3 object.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

DOCS_URL_PREFIX = "/dhs-docs"


def docs_root() -> Path:
    """Local folder under which the `/dhs-docs` app serves validation outputs: $DHS_DOCS_ROOT,
    which must be set to an existing folder other than `/` (ValueError otherwise). There is no
    default: the working directory of `airflow standalone` held AIRFLOW_HOME and its secrets."""
    raw = os.environ.get("DHS_DOCS_ROOT", "").strip()
    if not raw:
        raise ValueError("DHS_DOCS_ROOT is not set (set it to the folder holding the local datasets)")
    root = Path(raw).resolve()
    if not root.is_dir():
        raise ValueError(f"DHS_DOCS_ROOT={raw} is not a folder")
    if root == Path(root.anchor):
        raise ValueError("DHS_DOCS_ROOT must not be the file system root")
    return root


def data_docs_url(index_uri: str) -> str:
    """Browser URL of a Data Docs index file (local path or s3:// URI)."""
    if index_uri.startswith(("s3://", "s3a://")):
        bucket, _, key = index_uri.split("://", 1)[1].partition("/")
        return f"https://{bucket}.s3.amazonaws.com/{quote(key)}"
    path = Path(index_uri).resolve()
    try:
        rel = path.relative_to(docs_root())
    except ValueError:  # no docs root, or the file is outside it: /dhs-docs cannot serve it
        return path.as_uri()
    return f"{DOCS_URL_PREFIX}/{quote(str(rel))}"


class DataDocsLink(BaseOperatorLink):
    name = "Data Docs"

    def get_link(self, operator, *, ti_key):
        from airflow.sdk.execution_time.xcom import XCom  # noqa: PLC0415

        return XCom.get_value(key=self.xcom_key, ti_key=ti_key) or ""


class ReportLink(DataDocsLink):
    name = "Gate report"
