"""``pushpop serve``: run the gateway (and, in Dapr mode, the sidecar set-up)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Annotated

import typer

from api.settings import Settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")

app = typer.Typer(add_completion=False, help="pushpop: a durable priority queue on Dapr actors")


@app.callback()
def main() -> None:
    """pushpop command line."""


@app.command()
def serve(
    store: Annotated[
        str, typer.Option(envvar="PUSHPOP_STORE", help="sqlite | postgres")
    ] = "sqlite",
    database_url: Annotated[
        str | None,
        typer.Option(envvar="PUSHPOP_DATABASE_URL", help="PostgreSQL URL for --store postgres"),
    ] = None,
    sqlite_path: Annotated[
        str, typer.Option(envvar="PUSHPOP_SQLITE_PATH", help="SQLite file for --store sqlite")
    ] = "pushpop.sqlite3",
    host: Annotated[str, typer.Option(envvar="PUSHPOP_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PUSHPOP_PORT")] = 8000,
    runtime: Annotated[
        str,
        typer.Option(
            envvar="PUSHPOP_RUNTIME", help="embedded (in-process actors) | dapr (daprd sidecar)"
        ),
    ] = "embedded",
    log_level: Annotated[str, typer.Option(envvar="PUSHPOP_LOG_LEVEL")] = "info",
) -> None:
    """Serve the queue API."""
    import uvicorn

    from actor_service.stores.factory import check_store

    try:
        check_store(store, database_url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if runtime not in ("embedded", "dapr"):
        raise typer.BadParameter("--runtime must be embedded or dapr")
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from api.auth import KeyRing

    settings = Settings.from_env(
        store=store,
        database_url=database_url,
        sqlite_path=sqlite_path,
        host=host,
        port=port,
        runtime=runtime,
    )
    if not KeyRing.from_settings(settings).enabled and host not in LOOPBACK:
        if not settings.allow_open:
            logging.getLogger("pushpop").warning(
                "no API keys configured (PUSHPOP_API_KEYS): binding to 127.0.0.1 instead of %s; "
                "configure keys, or set PUSHPOP_ALLOW_OPEN=1 behind a trusted proxy",
                host,
            )
            settings = dataclasses.replace(settings, host="127.0.0.1")
    if runtime == "dapr":
        from api.dapr.serve import serve_with_sidecar

        serve_with_sidecar(settings, log_level)
        return
    from actor_service.stores.claim import claim_for, holding
    from api.app import create_app
    from api.http_server import uvicorn_config

    # one embedded host per database: refuse to start (one line, exit 3) if it is held
    claim = claim_for(
        store, "exclusive", database_url=settings.database_url, sqlite_path=settings.sqlite_path
    )
    with holding(claim):
        app_ = create_app(settings, claim=claim)
        uvicorn.Server(uvicorn_config(app_, settings, log_level)).run()


if __name__ == "__main__":
    app()
