"""The real app, in this process: HTTP semantics tested through ``httpx.ASGITransport``.

No socket and no child process, but everything else is the service's own: the app that
``pushpop serve`` builds, its lifespan (the embedded runtime starts and stops), and a
real SQLite file for its state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from api.app import create_app
from api.settings import Settings


@asynccontextmanager
async def in_process(sqlite_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app built from ``Settings(store="sqlite", ...)``, lifespan running."""
    app = create_app(Settings(store="sqlite", sqlite_path=str(sqlite_path), **settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pushpop.test") as c:
            yield c
