"""Pydantic models that *describe* requests and responses in the OpenAPI document.

Parsing is done by :mod:`api.validation` (exact error codes); these models exist so
that ``/docs`` and ``/openapi.json`` tell clients and fuzzers the real contract.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.validation import MAX_DEPTH, MAX_PRIORITY, MAX_PUSH, MAX_TTL


class PushEntry(BaseModel):
    # other fields are refused (api/validation.BODY_FIELDS): the document says so too
    model_config = ConfigDict(extra="forbid")
    item: dict[str, Any] = Field(description="any JSON object, at most 64 KiB serialized")
    priority: int = Field(1, ge=0, le=MAX_PRIORITY, description="0 is the most urgent")


class PushBulk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[PushEntry] = Field(min_length=1, max_length=MAX_PUSH)


class PushResponse(BaseModel):
    pushed: int
    ids: list[str]
    depth: int


class PoppedItem(BaseModel):
    id: str
    item: dict[str, Any]
    priority: int
    enqueued_at: float


class PopResponse(BaseModel):
    items: list[PoppedItem]
    lock_id: str | None = Field(None, description="only with require_ack=true and items")
    lock_expires_at: float | None = None


class LockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lock_id: str = Field(min_length=1, max_length=128)


class ExtendRequest(LockRequest):
    additional_ttl_seconds: int = Field(30, ge=1, le=MAX_TTL)


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
    oldest_enqueued_at: float | None


class PurgeResponse(BaseModel):
    purged: int


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
    """``openapi_extra`` for a JSON request body that may take any of ``models``."""
    schemas = [m.model_json_schema(ref_template="#/components/schemas/{model}") for m in models]
    for s in schemas:
        s.pop("$defs", None)
    schema = schemas[0] if len(schemas) == 1 else {"oneOf": schemas}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody} for s in statuses}


DEPTH_DOC = f"items to pop, 1 to {MAX_DEPTH}"
TTL_DOC = f"lock time to live in seconds, 1 to {MAX_TTL}"
