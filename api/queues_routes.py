"""``GET /queues``: the queues that hold something, paged by cursor (docs/api.md).

Read from the state store by :class:`api.queue_list.QueueLister`, never by activating an
actor per queue. An admin key lists only under its own prefixes: a key for ``orders-``
may list ``?prefix=orders-``, not everything.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Query, Request

from actor_service.errors import InvalidRequest
from api import schemas as s
from api import validation as v
from api.routes import Json

router = APIRouter()

PARAMETERS = frozenset({"prefix", "limit", "after"})
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# queue-id characters; longer than 128 for dead-letter queues of dead-letter queues
ID_TEXT = re.compile(r"[A-Za-z0-9._:-]{0,1024}")


def _text(raw: str | None, name: str, empty_ok: bool) -> str | None:
    if raw is None:
        return None
    if not ID_TEXT.fullmatch(raw) or not (raw or empty_ok):
        raise InvalidRequest(
            "INVALID_PARAMETER",
            f"{name} must be {'0' if empty_ok else '1'}-1024 characters of A-Z a-z 0-9 . _ : -",
        )
    return raw


@router.get(
    "/queues",
    response_model=s.QueuesResponse,
    responses=s.errors(400, 401, 403, 503),
    summary="Admin: the queues holding items, delayed items or locks, by queue_id",
    description=(
        "Sorted by `queue_id`, filtered by `prefix`, paged by the cursor `after` (the "
        "`next` of the previous page; `null` when nothing is left). Read from the state "
        "store, not from the queues' actors; a queue pushed to is listed at once. Empty "
        "queues are skipped: a page scans a bounded number of them, so it may hold fewer "
        "than `limit` queues (even none) and still have a `next`."
    ),
)
async def list_queues(
    request: Request,
    prefix: str | None = Query(None, description="only queue ids starting with this"),
    limit: str | None = Query(None, description=f"1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}"),
    after: str | None = Query(None, description="the cursor: queue ids after this one"),
) -> Json:
    request.app.state.keys.check_headers(request.headers, prefix or "", "admin")
    params = request.query_params
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise InvalidRequest("INVALID_PARAMETER", f"unknown query parameter {unknown[0]!r:.60}")
    repeated = [name for name in PARAMETERS if len(params.getlist(name)) > 1]
    if repeated:
        raise InvalidRequest("INVALID_PARAMETER", f"{repeated[0]} is given more than once")
    n = v.int_param(limit, "limit", "INVALID_PARAMETER", 1, MAX_LIMIT, DEFAULT_LIMIT)
    page = await request.app.state.queues.page(
        _text(prefix, "prefix", True) or "", _text(after, "after", False), n
    )
    return Json({"queues": page.queues, "next": page.next})
