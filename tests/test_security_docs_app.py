"""Issue 15 case 1: /dhs-docs, mounted by our plugin on Airflow's real API server (in process).

Before: any file under DHS_DOCS_ROOT (default: the working directory) was served to anyone
without login, including AIRFLOW_HOME's airflow.cfg when it lay inside the root, and a symlinked
index.html escaped the root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest_plugins = ["tests.airflow_fixtures"]
pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[1]
PAGE = "ds/validation/manual__1/data_docs/index.html"
REPORT = "ds/validation/manual__1/report/index.html"
SECRET = "fernet_key = SECRET-FERNET-KEY"


@pytest.fixture(scope="module")
def docs_tree(tmp_path_factory):
    """A docs root laid out like `make demo`'s (AIRFLOW_HOME inside it), plus symlink probes."""
    root = tmp_path_factory.mktemp("docs_root").resolve()
    outside = tmp_path_factory.mktemp("outside").resolve()
    (outside / "secret.txt").write_text(SECRET)
    for rel, text in ((PAGE, "<html>data docs</html>"), (REPORT, "<html>report</html>"),
                      ("ds/validation/manual__1/data_docs/static/app.js", "console.log(1)"),
                      ("airflow/airflow.cfg", SECRET),
                      ("airflow/simple_auth_manager_passwords.json.generated", '{"admin": "pw"}'),
                      ("ds/phase4c/_dhs_dataset.json", "{}")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    # a folder whose index.html is a symlink leaving the root, another to the Airflow home
    escape = root / "ds/validation/manual__1/report/escape"
    escape.mkdir()
    (escape / "index.html").symlink_to(outside / "secret.txt")
    inside = root / "ds/validation/manual__1/report/cfg"
    inside.mkdir()
    (inside / "index.html").symlink_to(root / "airflow" / "airflow.cfg")
    # a whole data_docs folder that is a symlink to the Airflow home
    (root / "ds/validation/manual__2").mkdir(parents=True)
    (root / "ds/validation/manual__2/data_docs").symlink_to(root / "airflow")
    return root


@pytest.fixture(scope="module")
def api(airflow_home, docs_tree):
    """Airflow's API server app (core: UI, REST, auth manager, plugins) with our docs app mounted,
    and a test client."""
    from fastapi.testclient import TestClient

    os.environ["DHS_DOCS_ROOT"] = str(docs_tree)
    if str(REPO / "plugins") not in sys.path:
        sys.path.append(str(REPO / "plugins"))
    from airflow import plugins_manager, settings
    from airflow.api_fastapi.app import create_app

    from dhs_airflow import docs_app

    # plugins load once per process, from the folder configured when Airflow was first imported
    settings.PLUGINS_FOLDER = str(REPO / "plugins")
    plugins_manager._get_plugins.cache_clear()
    plugins_manager.get_fastapi_plugins.cache_clear()
    app = create_app(apps="core")
    (mount,) = [r for r in app.routes if getattr(r, "path", None) == "/dhs-docs"]
    assert mount.app.title == "Dark Halo Scope Data Docs", "the plugin mounts the docs app"
    # plugins load once per process: mount one built with this test's DHS_DOCS_ROOT
    mount.app = docs_app.create_app()
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client
    os.environ.pop("DHS_DOCS_ROOT", None)


def _token(role: str | None = "admin", username: str = "admin") -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role))


def test_anonymous_request_is_refused(api):
    for path in (PAGE, "airflow/airflow.cfg", "airflow/simple_auth_manager_passwords.json.generated"):
        r = api.get(f"/dhs-docs/{path}")
        assert r.status_code == 401, (path, r.status_code)
        assert SECRET not in r.text


def test_forged_or_unauthorised_tokens_are_refused(api):
    import jwt

    forged = jwt.encode({"sub": "admin", "role": "ADMIN", "aud": "apache-airflow"}, "change-me-in-production",
                        algorithm="HS512")
    assert api.get(f"/dhs-docs/{PAGE}", headers={"Authorization": f"Bearer {forged}"}).status_code in (401, 403)
    no_role = _token(role=None, username="nobody")
    assert api.get(f"/dhs-docs/{PAGE}", cookies={"_token": no_role}).status_code == 403


def test_logged_in_user_reads_validation_outputs_with_security_headers(api):
    cookies = {"_token": _token()}  # what the UI's login sets
    r = api.get(f"/dhs-docs/{PAGE}", cookies=cookies)
    assert r.status_code == 200 and r.text == "<html>data docs</html>"
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "sandbox" in csp and "https:" not in csp and "*" not in csp
    r = api.get("/dhs-docs/ds/validation/manual__1/report/", headers={"Authorization": f"Bearer {_token()}"})
    assert r.status_code == 200 and r.text == "<html>report</html>"
    js = api.get("/dhs-docs/ds/validation/manual__1/data_docs/static/app.js", cookies=cookies)
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("path", [
    "airflow/airflow.cfg",
    "airflow/simple_auth_manager_passwords.json.generated",
    "ds/phase4c/_dhs_dataset.json",
    "ds/validation/manual__1/report/escape/",      # index.html -> a file outside the root
    "ds/validation/manual__1/report/escape/index.html",
    "ds/validation/manual__1/report/cfg/",         # index.html -> airflow.cfg inside the root
    "ds/validation/manual__2/data_docs/airflow.cfg",  # data_docs -> the Airflow home
    "ds/validation/manual__1/data_docs/.hidden",
    "ds/validation/manual__1/data_docs/../../../../airflow/airflow.cfg",
    "ds/validation/manual__1/data_docs/%2e%2e/%2e%2e/%2e%2e/%2e%2e/airflow/airflow.cfg",
    "",
])
def test_only_validation_outputs_are_served(api, path):
    r = api.get(f"/dhs-docs/{path}", cookies={"_token": _token()})
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert SECRET not in r.text and '"admin"' not in r.text


def test_no_docs_root_serves_nothing(monkeypatch, tmp_path):
    from fastapi.testclient import TestClient

    if str(REPO / "plugins") not in sys.path:
        sys.path.append(str(REPO / "plugins"))
    from dhs_airflow import docs_app

    monkeypatch.delenv("DHS_DOCS_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "airflow.cfg").write_text(SECRET)
    r = TestClient(docs_app.create_app()).get("/airflow.cfg")
    assert r.status_code == 503 and "DHS_DOCS_ROOT" in r.text and SECRET not in r.text
    monkeypatch.setenv("DHS_DOCS_ROOT", "/")
    assert TestClient(docs_app.create_app()).get("/etc/hostname").status_code == 503
