"""Pydantic models that *describe* requests and responses in the OpenAPI document.

Parsing is done by :mod:`api.validation` (exact error codes); these models exist so
that ``/docs`` and ``/openapi.json`` tell clients and fuzzers the real contract.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.validation import MAX_DEPTH, MAX_PRIORITY, MAX_PUSH, MAX_TTL, QUEUE_ID
from api.waiters import MAX_WAIT_SECONDS


class PushEntry(BaseModel):
    # other fields are refused (api/validation.BODY_FIELDS): the document says so too
    model_config = ConfigDict(extra="forbid")
    item: dict[str, Any] = Field(description="any JSON object, at most 64 KiB serialized")
    priority: int = Field(1, ge=0, le=MAX_PRIORITY, description="0 is the most urgent")
    delay_seconds: int = Field(0, ge=0, le=86_400, description="invisible to pops until then")


class PushBulk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[PushEntry] = Field(min_length=1, max_length=MAX_PUSH)


class PushResponse(BaseModel):
    pushed: int
    ids: list[str]
    depth: int


class Origin(BaseModel):
    queue_id: str
    id: str


class PoppedItem(BaseModel):
    id: str
    item: dict[str, Any]
    priority: int
    enqueued_at: float
    deliveries: int = Field(description="times handed out, this time included")
    origin: Origin | None = Field(
        None, description="where a dead-lettered or redriven item came from"
    )


class PopResponse(BaseModel):
    items: list[PoppedItem]
    lock_id: str | None = Field(None, description="only with require_ack=true and items")
    lock_expires_at: float | None = None


class LockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lock_id: str = Field(min_length=1, max_length=128)


class ExtendRequest(LockRequest):
    additional_ttl_seconds: int = Field(30, ge=1, le=MAX_TTL)


class ReleaseRequest(LockRequest):
    delay_seconds: int = Field(0, ge=0, le=86_400, description="back after this delay")


class SettingsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_deliveries: int | None = Field(None, ge=1, le=1000)
    dead_letter_queue: str | None = Field(None, min_length=1, max_length=128)


class SettingsResponse(BaseModel):
    queue_id: str
    max_deliveries: int | None
    dead_letter_queue: str


class RedriveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str | None = Field(None, min_length=1, max_length=128)
    limit: int = Field(10_000, ge=1, le=10_000)


class RedriveResponse(BaseModel):
    moved: int
    to: str
    remaining: int


class PeekResponse(BaseModel):
    items: list[PoppedItem]


class AckResponse(BaseModel):
    acknowledged: int


class ExtendResponse(BaseModel):
    lock_id: str
    lock_expires_at: float


class ReleaseResponse(BaseModel):
    released: int


class DeadLetterResponse(BaseModel):
    dead_lettered: int
    dead_letter_queue: str


class StatsResponse(BaseModel):
    queue_id: str
    depth: int
    by_priority: dict[str, int]
    in_flight: int
    locks: int
    delayed: int
    oldest_enqueued_at: float | None


class PurgeResponse(BaseModel):
    purged: int


class QueueSummary(BaseModel):
    queue_id: str
    depth: int = Field(description="items waiting")
    in_flight: int = Field(description="items under a lock")
    delayed: int = Field(description="items not yet due")
    locks: int
    oldest_enqueued_at: float | None = Field(description="of the oldest waiting item")


class QueuesResponse(BaseModel):
    queues: list[QueueSummary]
    next: str | None = Field(description="the cursor for the next page (`after`); null: done")


class RepairResponse(BaseModel):
    queue_id: str
    repaired: bool
    items_kept: int
    items_lost: int
    locks_dropped: list[str]
    transfers_dropped: list[int]
    notes: list[str]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


def request_body(*models: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a JSON request body that may take any of ``models``; the models
    they nest (PushBulk's PushEntry) are inlined: ``openapi_extra`` cannot add components,
    and a ``$ref`` to one FastAPI did not collect resolved to nothing."""
    schemas = [_inlined(m.model_json_schema()) for m in models]
    schema = schemas[0] if len(schemas) == 1 else {"oneOf": schemas}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each ``#/$defs/...`` reference replaced by its definition."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        own = {k: walk(v) for k, v in node.items() if k != "$ref"}
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return {**walk(defs[ref.removeprefix("#/$defs/")]), **own}
        return {**own, "$ref": ref} if ref is not None else own

    return walk(schema)


QUEUE_ID_SCHEMA = {
    "type": "string", "minLength": 1, "maxLength": 128, "pattern": f"^{QUEUE_ID.pattern}$",
}  # fmt: skip


def document_queue_ids(openapi: dict[str, Any]) -> dict[str, Any]:
    """Every ``queue_id`` path parameter gets the contract's pattern and length. Declared on
    the routes, FastAPI would check them itself and answer its own error before the API
    key is checked; so they are only documented, and api.validation.queue_id checks."""
    for ops in openapi.get("paths", {}).values():
        for op in ops.values():
            for param in op.get("parameters", []):
                if param.get("in") == "path" and param.get("name") == "queue_id":
                    param["schema"] = {**param.get("schema", {}), **QUEUE_ID_SCHEMA}
    return openapi


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody} for s in statuses}


DEPTH_DOC = f"items to pop, 1 to {MAX_DEPTH}"
TTL_DOC = f"lock time to live in seconds, 1 to {MAX_TTL}"
WAIT_DOC = (
    f"long poll: with no item ready, wait up to this many seconds (0 to {MAX_WAIT_SECONDS}, "
    "default 0) for one; the client's timeout must be longer"
)
