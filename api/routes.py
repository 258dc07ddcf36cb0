"""The HTTP endpoints of docs/api.md (the contract): parse, call the queue's actor, answer."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from actor_service.actor_ids import actor_id_for
from actor_service.errors import (
    BodyTooLarge,
    PushpopError,
    StorageFull,
    StoreUnavailable,
    UnsupportedMediaType,
)
from actor_service.serializer import dumps
from api import schemas as s
from api import validation as v
from api.auth import METHOD_OPERATION
from api.request_body import read_body
from api.waiters import MAX_WAIT_SECONDS, strip
from api.wording import quoted

router = APIRouter()


class Json(JSONResponse):
    """JSONResponse with our serializer (compact, UTF-8, no NaN)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        """Starlette's headers for a JSON body and no others given, built directly."""
        plain = self.status_code >= 200 and self.status_code not in (204, 304)
        if headers is None and plain and self.media_type == "application/json":
            length = b"%d" % len(self.body)
            self.raw_headers = [(b"content-length", length), (b"content-type", b"application/json")]
        else:
            super().init_headers(headers)


async def request_body(request: Request) -> bytes:
    """A route's body: refused on its headers (compressed, declared past the limit) before
    a byte is read, then by :func:`~api.request_body.read_body` once past the limit."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(
            f"Content-Encoding {quoted(encoding)} is not supported; send the body uncompressed"
        )
    limit = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    return await read_body(request.receive, limit)


def guard(request: Request, queue_id: str, method: str) -> None:
    """Authorize first (401/403 before any 400), then check the queue id and that the query
    names only parameters this endpoint takes (v.QUERY_PARAMS[method]), each once."""
    request.app.state.keys.check_headers(request.headers, queue_id, METHOD_OPERATION[method])
    v.queue_id(queue_id)
    if request.scope["query_string"]:
        v.query_params(request.query_params.multi_items(), method)


async def call(request: Request, queue_id: str, method: str, payload: dict) -> dict[str, Any]:
    state = request.app.state
    started = time.perf_counter()
    try:
        return await state.invoker.call(actor_id_for(queue_id), method, payload)
    finally:
        state.metrics.observe_actor_call(method, time.perf_counter() - started)


@router.post(
    "/queue/{queue_id}/push",
    response_model=s.PushResponse,
    responses=s.errors(400, 401, 403, 413, 415, 422, 429, 502, 503, 507),
    openapi_extra=s.request_body(s.PushBulk, s.PushEntry),
    summary="Push one item or up to 1000 items (atomic, durable)",
)
async def push(queue_id: str, request: Request) -> Json:
    guard(request, queue_id, "Push")
    key = v.idempotency_key(v.header(request.scope, b"idempotency-key"))
    state = request.app.state
    entries = v.push_body(await request_body(request), state.settings.max_item_bytes)
    payload: dict[str, Any] = {"items": entries}
    if key is not None:  # the body as parsed, so that a retry's formatting does not matter
        payload["idempotency_key"] = key
        payload["fingerprint"] = v.fingerprint(entries)
    result = await call(request, queue_id, "Push", payload)
    if result.pop("replayed", False):
        return Json(result, headers={"Idempotent-Replayed": "true"})
    state.metrics.observe_pushed(result["pushed"])
    state.waiters.pushed(queue_id, result["pushed"])  # wake long-polls
    return Json(result)


@router.post(
    "/queue/{queue_id}/pop",
    response_model=s.PopResponse,
    responses=s.errors(400, 401, 403, 422, 429, 502, 503, 507),
    summary="Pop up to depth items: strict priority, FIFO within a priority",
)
async def pop(
    queue_id: str,
    request: Request,
    depth: str | None = Query(None, description=s.DEPTH_DOC),
    require_ack: str | None = Query(None, description="lock the items until acknowledged"),
    ttl_seconds: str | None = Query(None, description=s.TTL_DOC),
    wait_seconds: str | None = Query(None, description=s.WAIT_DOC),
) -> Json:
    guard(request, queue_id, "Pop")
    want_ack = v.bool_param(require_ack, "require_ack")
    n = v.int_param(depth, "depth", "INVALID_DEPTH", 1, v.MAX_DEPTH, 1)
    wait = v.int_param(wait_seconds, "wait_seconds", "INVALID_PARAMETER", 0, MAX_WAIT_SECONDS, 0)
    method, payload = "Pop", {"depth": n}
    if want_ack:
        ttl = v.int_param(ttl_seconds, "ttl_seconds", "INVALID_TTL", 1, v.MAX_TTL, v.DEFAULT_TTL)
        method, payload = "PopWithAck", {"depth": n, "ttl_seconds": ttl}
    key = v.idempotency_key(v.header(request.scope, b"idempotency-key"))
    if key is not None:  # a retry gets the same items (and lock): same parameters only
        payload["idempotency_key"] = key
        payload["fingerprint"] = f"{n}:{payload.get('ttl_seconds')}"
    if wait:  # long-poll (api/waiters.py): wait in the gateway, not in the actor
        result = await request.app.state.waiters.pop(
            queue_id, wait, lambda: call(request, queue_id, method, payload),
            request.receive, request.scope,
        )  # fmt: skip
    else:
        result = strip(await call(request, queue_id, method, payload))
    if result.pop("replayed", False):
        return Json(result, headers={"Idempotent-Replayed": "true"})
    request.app.state.metrics.observe_popped(result["items"], time.time())
    return Json(result)


async def _lock_op(request: Request, queue_id: str, method: str, extra: bool = False) -> Json:
    guard(request, queue_id, method)
    body = v.lock_body(await request_body(request), method)
    payload: dict[str, Any] = {"lock_id": body["lock_id"]}
    if method == "Release":
        delay = v.delay_value(body, "delay_seconds")
        if delay:
            payload["delay_seconds"] = delay
    if extra:
        payload["additional_ttl_seconds"] = v.ttl_value(
            body.get("additional_ttl_seconds", v.DEFAULT_TTL), "additional_ttl_seconds"
        )
    result = await call(request, queue_id, method, payload)
    wake_for_moved(request, queue_id, method, payload, result)
    return Json(result)


def wake_for_moved(
    request: Request, queue_id: str, method: str, payload: dict[str, Any], result: dict[str, Any]
) -> None:
    """Items a lock op made ready wake long-polls like a push: a release without delay
    (back in this queue now), a dead-letter (into the dead-letter queue)."""
    waiters = request.app.state.waiters
    if method == "Release" and "delay_seconds" not in payload:
        waiters.pushed(queue_id, result["released"])
    elif method == "DeadLetter":
        waiters.pushed(result["dead_letter_queue"], result["dead_lettered"])


@router.post(
    "/queue/{queue_id}/acknowledge",
    response_model=s.AckResponse,
    responses=s.errors(400, 401, 403, 404, 410, 415, 503, 507),
    openapi_extra=s.request_body(s.LockRequest),
    summary="Acknowledge a lock: its items are done",
)
async def acknowledge(queue_id: str, request: Request) -> Json:
    return await _lock_op(request, queue_id, "Acknowledge")


@router.post(
    "/queue/{queue_id}/extend-lock",
    response_model=s.ExtendResponse,
    responses=s.errors(400, 401, 403, 404, 410, 415, 503, 507),
    openapi_extra=s.request_body(s.ExtendRequest),
    summary="Push a lock's expiry later",
)
async def extend_lock(queue_id: str, request: Request) -> Json:
    return await _lock_op(request, queue_id, "ExtendLock", extra=True)


@router.post(
    "/queue/{queue_id}/release",
    response_model=s.ReleaseResponse,
    responses=s.errors(400, 401, 403, 404, 410, 415, 503, 507),
    openapi_extra=s.request_body(s.ReleaseRequest),
    summary="Give a lock's items back to the front of their priorities (now or later)",
)
async def release(queue_id: str, request: Request) -> Json:
    return await _lock_op(request, queue_id, "Release")


@router.post(
    "/queue/{queue_id}/dead-letter",
    response_model=s.DeadLetterResponse,
    responses=s.errors(400, 401, 403, 404, 410, 415, 503, 507),
    openapi_extra=s.request_body(s.LockRequest),
    summary="Move a lock's items to the queue {queue_id}-deadletter",
)
async def dead_letter(queue_id: str, request: Request) -> Json:
    # a dead-letter queue whose name would pass 128 characters is refused by the actor
    # (it knows the queue's dead_letter_queue setting), before anything moves
    return await _lock_op(request, queue_id, "DeadLetter")


@router.get(
    "/queue/{queue_id}",
    response_model=s.StatsResponse,
    responses=s.errors(400, 401, 403, 503),
    summary="Queue statistics",
)
async def stats(queue_id: str, request: Request) -> Json:
    guard(request, queue_id, "Stats")
    return Json(await call(request, queue_id, "Stats", {}))


@router.delete(
    "/queue/{queue_id}",
    response_model=s.PurgeResponse,
    responses=s.errors(400, 401, 403, 503, 507),
    summary="Purge a queue (items and locks)",
)
async def purge(queue_id: str, request: Request) -> Json:
    guard(request, queue_id, "Purge")
    return Json(await call(request, queue_id, "Purge", {}))


@router.post(
    "/queue/{queue_id}/repair",
    response_model=s.RepairResponse,
    responses=s.errors(400, 401, 403, 500, 503),
    summary="Admin: repair a queue that answers STATE_CORRUPT (keeps what can be read)",
)
async def repair(queue_id: str, request: Request) -> Json:
    guard(request, queue_id, "Repair")
    return Json(await call(request, queue_id, "Repair", {}))


@router.get(
    "/queue/{queue_id}/settings",
    response_model=s.SettingsResponse,
    responses=s.errors(400, 401, 403, 500, 503),
    summary="Admin: the queue's settings (max_deliveries, dead_letter_queue)",
)
async def get_settings(queue_id: str, request: Request) -> Json:
    guard(request, queue_id, "GetSettings")
    return Json(await call(request, queue_id, "GetSettings", {}))


@router.put(
    "/queue/{queue_id}/settings",
    response_model=s.SettingsResponse,
    responses=s.errors(400, 401, 403, 415, 500, 503, 507),
    openapi_extra=s.request_body(s.SettingsRequest),
    summary="Admin: change the queue's settings (fields not given keep their value)",
)
async def put_settings(queue_id: str, request: Request) -> Json:
    guard(request, queue_id, "PutSettings")
    body = v.settings_body(await request_body(request))
    return Json(await call(request, queue_id, "PutSettings", body))


@router.post(
    "/queue/{queue_id}/redrive",
    response_model=s.RedriveResponse,
    responses=s.errors(400, 401, 403, 415, 500, 503, 507),
    openapi_extra=s.request_body(s.RedriveRequest),
    summary="Admin: move waiting items to another queue, in order (crash-safe)",
)
async def redrive(queue_id: str, request: Request) -> Json:
    guard(request, queue_id, "Redrive")
    to, limit = v.redrive_body(await request_body(request), queue_id)
    result = await call(request, queue_id, "Redrive", {"to": to, "limit": limit})
    if result["moved"]:
        request.app.state.waiters.pushed(to, result["moved"])
    return Json(result)


@router.get(
    "/queue/{queue_id}/items",
    response_model=s.PeekResponse,
    responses=s.errors(400, 401, 403, 500, 503),
    summary="Admin: the next items in pop order, without taking them",
)
async def peek(
    queue_id: str,
    request: Request,
    limit: str | None = Query(None, description="how many, 1-100, default 10"),
) -> Json:
    guard(request, queue_id, "Peek")
    n = v.int_param(limit, "limit", "INVALID_PARAMETER", 1, v.MAX_DEPTH, 10)
    return Json(await call(request, queue_id, "Peek", {"limit": n}))


@router.get("/health", summary="Liveness: 200 while the process serves")
async def health(request: Request) -> Json:
    v.query_params(request.query_params.multi_items(), "Health")
    return Json({"status": "ok"})


@router.get(
    "/ready", summary="Readiness: 200 when the state store answers", responses=s.errors(503)
)
async def ready(request: Request) -> Json:
    v.query_params(request.query_params.multi_items(), "Ready")
    try:
        await request.app.state.invoker.ready()
    except StorageFull as exc:  # not ready, and why: 503 is what readiness probes expect
        raise StoreUnavailable(f"not ready: {exc.message}", retry_after=30) from exc
    except StoreUnavailable:
        raise
    except PushpopError as exc:  # our own words (e.g. the sidecar is down): say which
        raise StoreUnavailable(f"not ready: {exc.message}") from exc
    except Exception as exc:
        raise StoreUnavailable(f"state store not reachable: {exc.__class__.__name__}") from exc
    cfg = request.app.state.settings  # what pushpop-bench --host reports it measured
    return Json({"status": "ready", "store": cfg.store, "runtime": cfg.runtime})
