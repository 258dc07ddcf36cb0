"""Builds and wires the gateway app: settings -> store -> runtime -> invoker -> routes.

The request path itself lives below (:mod:`api.asgi` -> :mod:`api.routes` -> the
invokers); this module only assembles it, and registers the handlers that make every
error ``{"error": {"code", "message"}}`` (a 500 carries no stack trace; the log has it).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from actor_service.actor import QueueActor
from actor_service.errors import InvalidRequest, PushpopError
from actor_service.queue_layout import Limits
from actor_service.stores.claim import Claim
from actor_service.stores.factory import build_store
from api.actor_calls import ActorInvoker
from api.asgi import ObserveMiddleware, PushpopApp
from api.auth import KeyRing
from api.body_budget import BodyBudget, pin_malloc_thresholds
from api.coalescer import CoalescingInvoker
from api.dashboard_routes import router as dashboard_router
from api.docs_pages import install as install_docs
from api.http_server import DROPPED
from api.invoker import EmbeddedInvoker
from api.log_limits import client_trouble
from api.metrics import Metrics
from api.queue_list import QueueGaugeRefresher, lister_for
from api.queues_routes import router as queues_router
from api.routes import Json, router
from api.schemas import document_queue_ids
from api.settings import Settings
from api.waiters import WaiterRegistry, start_notifier

log = logging.getLogger("pushpop")


def configure_actor(settings: Settings) -> None:
    """Class-wide actor settings: the SDK constructs actors, so they cannot be passed in."""
    QueueActor.limits = Limits(
        segment_size=settings.segment_size,
        legacy_segment_size=settings.legacy_segment_size,
        max_depth=settings.max_depth,
        max_locks=settings.max_locks,
        max_lock_lifetime=settings.max_lock_lifetime,
        idempotency_ttl=settings.idempotency_ttl,
    )


def runtime_invoker(settings: Settings, claim: Claim | None = None) -> ActorInvoker:
    """The invoker of the runtime ``settings`` name, on its store."""
    configure_actor(settings)
    if settings.runtime == "dapr":
        from api.dapr.invoker import DaprInvoker

        return DaprInvoker(settings, claim=claim)
    from actor_service.runtime.embedded import EmbeddedRuntime

    runtime = EmbeddedRuntime(
        build_store(settings, claim),
        app_id=settings.app_id,
        idle_timeout=settings.idle_timeout,
        turn_timeout=settings.request_timeout,
    )
    return EmbeddedInvoker(runtime)


def build_invoker(
    settings: Settings, claim: Claim | None = None, inner: ActorInvoker | None = None
) -> ActorInvoker:
    """The gateway's client of the actors: ``inner`` (default: the runtime's invoker),
    behind the coalescer unless ``PUSHPOP_COALESCE=false``."""
    inner = inner or runtime_invoker(settings, claim)
    if settings.coalesce and not isinstance(inner, CoalescingInvoker):
        return CoalescingInvoker(inner)
    return inner


# 429s say when to try again too (their errors cross the actor boundary as plain data,
# which carries no Retry-After): a lock or some depth frees up within seconds
RETRY_AFTER_429 = 1


def error_response(err: PushpopError) -> Json:
    retry_after = err.retry_after or (RETRY_AFTER_429 if err.status == 429 else None)
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return Json(
        {"error": {"code": err.code, "message": err.message}},
        status_code=err.status,
        headers=headers,
    )


def create_app(
    settings: Settings | None = None,
    invoker: ActorInvoker | None = None,
    claim: Claim | None = None,
) -> PushpopApp:
    settings = settings or Settings.from_env()
    invoker = build_invoker(settings, claim, invoker)
    invoker.claim = claim

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await invoker.start()
        notifier = await start_notifier(waiters, settings)  # Dapr on PostgreSQL only
        gauges.start()  # per-queue gauges: one background listing every few seconds
        # Everything built so far (FastAPI, pydantic models, the SDK, psycopg) lives as
        # long as the process: out of the collector's reach, so that a full collection
        # walks only what requests created (docs/how-it-works.md)
        gc.collect()
        gc.freeze()
        log.info(
            "pushpop serving on http://%s:%s with %s; %s",
            settings.host,
            settings.port,
            invoker.describe(),
            f"{len(keys.grants)} API key(s) required"
            if keys.enabled
            else "no API keys: open to anyone who can reach this address",
        )
        try:
            yield
        finally:
            waiters.close()  # long-polls answer [] now (the server's shutdown hook did already)
            if notifier is not None:
                await notifier.stop()
            await gauges.stop()
            await app.state.queues.close()
            await invoker.stop()

    app = PushpopApp(
        title="pushpop",
        version="0.1.0",
        summary="A durable priority queue on Dapr virtual actors",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load from a CDN: api/docs_pages.py serves its own
        redoc_url=None,
    )
    # "/queue/x%2F" must not be redirected to "/queue/x": that is another queue
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.invoker = invoker
    app.state.keys = keys = KeyRing.from_settings(settings)
    protect_metrics = settings.protect_metrics
    metrics = app.state.metrics = Metrics(invoker.active_actors)
    if isinstance(invoker, CoalescingInvoker):
        metrics.watch_coalescer(invoker.coalescer.stats)
    metrics.watch_turns(QueueActor.turn_stats)
    waiters = app.state.waiters = WaiterRegistry()
    waiters.export(metrics.registry)
    app.state.queues = lister_for(settings, invoker)
    gauges = app.state.queue_gauges = QueueGaugeRefresher(
        app.state.queues, settings.metrics_max_queues
    )
    metrics.watch_queues(lambda: gauges.snapshot)
    app.include_router(router)
    install_docs(app)  # /, /docs, /redoc, without the internet
    app.include_router(queues_router)
    app.include_router(dashboard_router)

    @app.exception_handler(PushpopError)
    async def pushpop_error(request: Request, err: PushpopError) -> Json:
        metrics.errors.labels(err.code).inc()
        return error_response(err)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Json:
        raw = request.scope.get("raw_path", b"").lower()
        if exc.status_code in (404, 405) and raw.startswith(b"/queue/") and b"%2f" in raw:
            # "/" inside a queue id (sent as %2F) splits the path before routing
            return error_response(
                InvalidRequest(
                    "INVALID_QUEUE_ID", "queue_id must be 1-128 characters of A-Z a-z 0-9 . _ : -"
                )
            )
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # Starlette's Allow names the first route of the path only
            said = {k.lower(): v for k, v in (headers or {}).items()}
            headers = {**said, "allow": allowed_methods(request, said.get("allow", ""))}
        return Json(
            {"error": {"code": code, "message": message}},
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Json:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return Json(
            {
                "error": {
                    "code": "INVALID_REQUEST",
                    "message": f"{where}: {first.get('msg', 'invalid')}",
                }
            },
            status_code=400,
        )

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # nobody to answer: one rate-limited line instead of two tracebacks
        if DROPPED not in request.scope:  # the read deadline logged it already
            client_trouble.info(
                "disconnect", "client disconnected before sending its whole request (%s %s)",
                request.method, request.url.path,
            )  # fmt: skip
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Json:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        metrics.errors.labels("INTERNAL").inc()
        return Json(
            {"error": {"code": "INTERNAL", "message": "internal error; see server log"}},
            status_code=500,
        )

    app.add_middleware(ObserveMiddleware, metrics=metrics)
    if settings.hot_path:
        app.enable_hot_path(metrics)
    if settings.max_body_bytes_in_flight:

        async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
            await error_response(scope["pushpop.refusal"])(scope, receive, send)

        budget = BodyBudget(settings.max_body_bytes_in_flight, settle=settings.idle_timeout + 1)
        app.limit_bodies(budget, refuse)
    pin_malloc_thresholds()  # big pushes' buffers go back to the system once freed

    @app.get(
        "/metrics",
        include_in_schema=True,
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
    )
    async def prometheus(request: Request) -> Response:
        if protect_metrics:
            keys.check_headers(request.headers, None, "admin")
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]
    return app


def allowed_methods(request: Request, allow: str = "") -> str:
    """``Allow`` of a 405: the methods the OpenAPI document serves at this path (``GET``
    and ``DELETE /queue/x`` are two routes, and the router names the first one's only),
    ``HEAD`` with ``GET``, plus what the router said (``allow``)."""
    import re

    methods = {m.strip() for m in allow.split(",") if m.strip()}
    for template, ops in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), request.url.path):
            methods |= {m.upper() for m in ops}
    return ", ".join(sorted(methods | ({"HEAD"} if "GET" in methods else set())))


def _openapi_without_422(app: FastAPI) -> dict:
    """FastAPI documents a 422 on every route with parameters; this service never sends one
    (bad input is a 400 with the contract's error code), so the document must not say so."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        for path in schema.get("paths", {}).values():
            for op in path.values():
                op.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = document_queue_ids(schema)
    return app.openapi_schema
