"""``GET /dashboard``: one page, its script and its style sheet, served from the package.

No build step and nothing from the internet: plain HTML, CSS and JavaScript using the
public API, under a Content-Security-Policy that allows this origin only. The admin key,
when keys are configured, is asked for by the page, kept in ``sessionStorage`` and sent
as ``Authorization: Bearer``, never in a URL.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.responses import Response

router = APIRouter()

ASSETS = Path(__file__).with_name("dashboard")
CONTENT_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> Response:
    if name not in CONTENT_TYPES:
        raise HTTPException(404)  # answered as {"error": {"code": "NOT_FOUND", ...}}
    return Response((ASSETS / name).read_bytes(), media_type=CONTENT_TYPES[name], headers=HEADERS)


@router.get(
    "/dashboard",
    summary="The web dashboard: queues, a queue's items, settings and dead letters",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}},
)
async def dashboard() -> Response:
    return _asset("index.html")


@router.get("/dashboard/{name}", include_in_schema=False)
async def dashboard_asset(name: str) -> Response:
    return _asset(name)
