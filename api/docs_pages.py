"""The browsable docs and the index at ``/``, with nothing fetched from the internet.

FastAPI's ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from a CDN, blank in a closed
network; here they load the ``fastapi-offline`` package's assets from :data:`ASSETS_URL`,
with the validator badge, Google Fonts and the Redocly logo's URL switched off, under a
Content-Security-Policy that allows this origin only. ``GET /`` says where everything is.
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

from actor_service.serializer import dumps

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
REDOCLY_LOGO = b'"https://cdn.redoc.ly/redoc/logo-mini.svg"'
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)

# where things are: what GET / answers
INDEX: dict[str, tuple[str, str]] = {
    "docs": ("/docs", "the API, browsable and callable (Swagger UI)"),
    "redoc": ("/redoc", "the API as a reference page (ReDoc)"),
    "openapi": ("/openapi.json", "the OpenAPI document"),
    "dashboard": ("/dashboard", "the queues, live"),
    "health": ("/health", "liveness"),
    "ready": ("/ready", "readiness: the state store answers"),
    "metrics": ("/metrics", "Prometheus metrics"),
}


@cache
def redoc_bundle() -> bytes:
    """ReDoc's bundle less the Redocly logo's URL (read on first use: ~1 MB)."""
    return (ASSETS / "redoc.standalone.js").read_bytes().replace(REDOCLY_LOGO, b'""')


def install(app: FastAPI) -> None:
    """Add ``/``, ``/docs``, ``/redoc`` and the assets to ``app`` (built with
    ``docs_url=None, redoc_url=None``, so that FastAPI's CDN pages are not there)."""

    @app.get(ASSETS_URL + "/redoc.standalone.js", include_in_schema=False)
    async def redoc_js() -> Response:  # before the mount, which would serve the file as is
        return Response(
            redoc_bundle(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="docs-assets")

    def assets(request: Request) -> str:
        return request.scope.get("root_path", "") + ASSETS_URL

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - API docs",
            oauth2_redirect_url=root + OAUTH2_REDIRECT,
            swagger_js_url=assets(request) + "/swagger-ui-bundle.js",
            swagger_css_url=assets(request) + "/swagger-ui.css",
            swagger_favicon_url=assets(request) + "/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = CSP
        return page

    @app.get(OAUTH2_REDIRECT, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=request.scope.get("root_path", "") + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - API reference",
            redoc_js_url=assets(request) + "/redoc.standalone.js",
            redoc_favicon_url=assets(request) + "/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = CSP
        return page

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        """JSON for programs; a page of links for a browser (it asks for text/html)."""
        root = request.scope.get("root_path", "")
        if "text/html" in request.headers.get("accept", ""):
            rows = "".join(
                f'<li><a href="{html.escape(root + path)}">{html.escape(path)}</a>: '
                f"{html.escape(what)}</li>"
                for path, what in INDEX.values()
            )
            page = (
                f"<!doctype html><html><head><meta charset='utf-8'><title>{app.title}</title>"
                f"</head><body><h1>{app.title} {app.version}</h1><ul>{rows}</ul></body></html>"
            )
            return HTMLResponse(page, headers={"Content-Security-Policy": CSP})
        body = {
            "service": app.title,
            "version": app.version,
            **{name: root + path for name, (path, _) in INDEX.items()},
        }
        return Response(dumps(body), media_type="application/json")
