"""A small FastAPI app, mounted by our plugin on the Airflow API server at /dhs-docs, serving the
Data Docs and reports of local-backend runs from DHS_DOCS_ROOT.

Airflow mounts plugin apps without its own authentication, so this app checks it itself, the
way the API server does: the caller's JWT (the UI's `_token` cookie or an `Authorization: Bearer`
header) goes through Airflow's `get_user` (the auth manager's `get_user_from_token`), and the user
must be allowed to read the pipeline DAG's task instances (whose XComs hold these very links).

What it serves: only files of validation outputs, `<...>/validation/<run>/{data_docs,report}/...`
under DHS_DOCS_ROOT, after resolving symlinks (a link pointing anywhere else is refused). Every
answer carries `X-Content-Type-Options: nosniff` and a Content-Security-Policy that allows scripts,
styles, images and fonts from this origin only (no inline script, no third-party origin, no
forms, no framing), so even a page with injected markup cannot run script on the Airflow origin.

Without an explicit DHS_DOCS_ROOT (an existing folder) the app serves nothing (503 on every
request, and an error in the API server's log): defaulting to the working directory served
AIRFLOW_HOME's airflow.cfg and passwords file in the README's set-up.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse

from dhs_airflow.links import docs_root

log = logging.getLogger(__name__)

PIPELINE_DAG_ID = "dhs_phase4_pipeline"
#: the served tree: any dataset folder, then validation/<run>/data_docs|report/<file>
SERVED_PATH = re.compile(r"(?:[^/]+/)*validation/[^/]+/(?:data_docs|report)/(?:[^/]+/)*[^/]+")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # 'self' only; inline scripts of GX's pages are moved into files when the docs are built
    # (pipeline.gate.suites.harden_data_docs). Inline *styles* stay allowed: GX's markup is full
    # of style attributes, and CSS cannot run script. connect-src 'none': the pages need no
    # requests of their own, and a script must not be able to call the Airflow API with the
    # user's cookie.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; connect-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'; sandbox allow-scripts allow-same-origin allow-popups allow-popups-to-escape-sandbox"
    ),
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "private, no-store",
}
#: what the browser is told each file is (nosniff: a wrong type would not render)
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml",
               ".woff2": "font/woff2", ".otf": "font/otf", ".ttf": "font/ttf"}


def _refuse(status: int, detail: str):
    raise HTTPException(status_code=status, detail=detail, headers=SECURITY_HEADERS)


async def authorized_user(request: Request):
    """The logged-in user, exactly as the API server checks it, allowed to read the pipeline's
    task instances; 401/403 otherwise."""
    from airflow.api_fastapi.app import get_auth_manager  # noqa: PLC0415 - only inside the API server
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails  # noqa: PLC0415
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user  # noqa: PLC0415

    try:
        user = await get_user(request, None, await bearer_scheme(request))
    except HTTPException as exc:
        _refuse(exc.status_code, exc.detail)
    if not get_auth_manager().is_authorized_dag(method="GET", access_entity=DagAccessEntity.TASK_INSTANCE,
                                                details=DagDetails(id=PIPELINE_DAG_ID), user=user):
        _refuse(403, f"not allowed to read {PIPELINE_DAG_ID}'s task instances")
    return user


def resolve_served_file(root: Path, path: str) -> Path:
    """The file under `root` that request path `path` names, or HTTPException 404. Checked before
    and after resolving symlinks: the request must name a validation output, and so must the
    file it resolves to."""
    parts = path.split("/")
    if path.endswith("/") or not path:
        parts = [p for p in parts if p] + ["index.html"]
    if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
        _refuse(404, "not a served path")
    rel = "/".join(parts)
    if (root / rel).is_dir():
        rel += "/index.html"
    if not SERVED_PATH.fullmatch(rel):
        _refuse(404, "only validation outputs (<dataset>/validation/<run>/data_docs|report/...) are served")
    try:
        target = (root / rel).resolve(strict=True)
        real_rel = target.relative_to(root).as_posix()
    except (OSError, ValueError):
        _refuse(404, "no such file")
    if not SERVED_PATH.fullmatch(real_rel) or not target.is_file():
        _refuse(404, "no such file")
    return target


def create_app() -> FastAPI:
    app = FastAPI(title="Dark Halo Scope Data Docs", docs_url=None, redoc_url=None, openapi_url=None)
    try:
        root = docs_root()
    except ValueError as exc:
        log.error("/dhs-docs serves nothing: %s", exc)
        reason = str(exc)

        @app.get("/{path:path}")
        def not_configured(path: str):
            return JSONResponse({"detail": f"/dhs-docs is not configured: {reason}"}, status_code=503,
                                headers=SECURITY_HEADERS)

        return app

    @app.get("/{path:path}")
    async def serve(path: str, request: Request):
        await authorized_user(request)
        target = resolve_served_file(root, path)
        media_type = MEDIA_TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0] \
            or "application/octet-stream"
        return FileResponse(target, media_type=media_type, headers=SECURITY_HEADERS)

    return app
