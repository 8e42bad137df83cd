"""The API's docs page (`/api/docs`), served whole from this machine.

FastAPI's default page loads Swagger UI's script and stylesheet from a CDN, which hospital
networks block: the page stayed blank. The same page is built with FastAPI's own helper,
pointed at the Swagger UI files the `fastapi-offline` package ships.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/api/docs-assets"


def install_docs(api: FastAPI, docs_url: str = "/api/docs") -> None:
    """Serve the Swagger UI page and its assets; the schema stays at `api.openapi_url`."""
    api.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")
    title = f"{api.title} · API docs"
    openapi_url = api.openapi_url or "/api/openapi.json"

    @api.get(docs_url, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        )
