"""A small FastAPI app, mounted by our plugin on the Airflow API server at /dhs-docs, serving the
Data Docs and reports of local-backend runs from DHS_DOCS_ROOT (read-only, nothing outside it)."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

from dhs_airflow.links import docs_root


def create_app() -> FastAPI:
    app = FastAPI(title="Dark Halo Scope Data Docs")

    @app.get("/{path:path}")
    def serve(path: str):
        root = docs_root()
        target = (root / path).resolve()
        if target.is_dir():
            target = target / "index.html"
        if root not in target.parents and target != root:
            raise HTTPException(status_code=404, detail="outside the docs root")
        if not target.is_file():
            raise HTTPException(status_code=404, detail=f"no such file: {path}")
        return FileResponse(target)

    return app
