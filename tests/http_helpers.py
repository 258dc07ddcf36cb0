"""HTTP helpers the API-level tests share: the contract's success and error shapes."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from supervise.server import ServerProcess


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith("application/json"), r.headers
    return r.json()


def err(r: httpx.Response, status: int, code: str, *mentions: str) -> str:
    """Assert the contract's error shape; ``mentions`` must appear in the message."""
    where = f"{r.request.method} {r.request.url}"
    # FastAPI's bare 422 never; the contract's one 422 (IDEMPOTENCY_KEY_REUSED) when asked for
    assert r.status_code != 422 or status == 422, f"{where}: bare 422: {r.text}"
    assert r.status_code == status, f"{where}: want {status} {code}, got {r.status_code} {r.text}"
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert isinstance(body["error"], dict) and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message.strip(), body
    for m in mentions:
        assert m in message, f"{where}: message {message!r} should mention {m!r}"
    return message


def push(c: httpx.Client, q: str, *entries: tuple[dict, int | None]) -> dict:
    """Bulk push of ``(item, priority)`` pairs (``None`` priority: left out)."""
    items = [{"item": i} if p is None else {"item": i, "priority": p} for i, p in entries]
    return ok(c.post(f"/queue/{q}/push", json={"items": items}))


def push_one(c: httpx.Client, q: str, item: dict, priority: int | None = None) -> dict:
    body: dict[str, Any] = {"item": item}
    if priority is not None:
        body["priority"] = priority
    return ok(c.post(f"/queue/{q}/push", json=body))


def pop(c: httpx.Client, q: str, depth: int | None = None, **params: Any) -> dict:
    if depth is not None:
        params["depth"] = depth
    return ok(c.post(f"/queue/{q}/pop", params=params))


def pop_ack(c: httpx.Client, q: str, depth: int = 1, ttl: int | None = None) -> dict:
    params: dict[str, Any] = {"depth": depth, "require_ack": "true"}
    if ttl is not None:
        params["ttl_seconds"] = ttl
    return ok(c.post(f"/queue/{q}/pop", params=params))


def stats(c: httpx.Client, q: str) -> dict:
    return ok(c.get(f"/queue/{q}"))


def lock_op(c: httpx.Client, q: str, op: str, lock_id: str, **extra: Any) -> httpx.Response:
    return c.post(f"/queue/{q}/{op}", json={"lock_id": lock_id, **extra})


def drain(c: httpx.Client, q: str) -> list[dict]:
    out: list[dict] = []
    while True:
        got = pop(c, q, depth=100)["items"]
        if not got:
            return out
        out.extend(got)


def raw_request(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send bytes as they are; return (status, body) of the first response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return read_response(s, timeout)


def read_response(s: socket.socket, timeout: float) -> tuple[int, bytes]:
    s.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (TimeoutError, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = [
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ]
            if length and len(body) >= length[0]:
                break
    assert data.startswith(b"HTTP/1.1 "), f"no HTTP response, got {data[:200]!r}"
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@contextmanager
def hot_and_full(
    tmp: Path, env: dict[str, str], **server: Any
) -> Iterator[dict[str, ServerProcess]]:
    """Two real SQLite-backed servers, identical but for ``PUSHPOP_HOT_PATH``: keyed
    ``"true"`` and ``"false"``, to compare the hot path's answers with the full stack's."""
    started: list[ServerProcess] = []
    try:
        for hot in ("true", "false"):
            started.append(
                ServerProcess(
                    store="sqlite", sqlite_path=tmp / f"{hot}.sqlite3", log_path=tmp / f"{hot}.log",
                    env={**env, "PUSHPOP_HOT_PATH": hot}, **server,
                ).start()
            )  # fmt: skip
        yield dict(zip(("true", "false"), started, strict=True))
    finally:
        for s in started:
            s.stop()


def answers(
    server: ServerProcess, calls: list[tuple[str, str, dict[str, str], Any]],
    volatile: re.Pattern[str], keep: tuple[str, ...] = ("content-type",),
) -> list[tuple]:  # fmt: skip
    """Send ``calls`` (method, path, headers, body: bytes or JSON-able) in order; for each,
    ``(status, kept headers, body with the volatile fields masked, raw body)``."""
    seen = []
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for method, path, headers, body in calls:
            content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
            if content is not None:
                headers = {"Content-Type": "application/json", **headers}
            r = c.request(method, path, headers=headers, content=content)
            kept = {k: r.headers.get(k) for k in keep}
            seen.append((r.status_code, kept, volatile.sub(r'"\1":_', r.text), r.text))
    return seen


def assert_alike(calls: list[tuple], pair: dict[str, ServerProcess], volatile: re.Pattern[str],
                 keep: tuple[str, ...] = ("content-type",)) -> list[tuple]:  # fmt: skip
    """Both servers of :func:`hot_and_full` answer ``calls`` alike; the hot one's answers."""
    fast, full = (answers(pair[hot], calls, volatile, keep) for hot in ("true", "false"))
    for call, a, b in zip(calls, fast, full, strict=True):
        assert a[:3] == b[:3], f"{call[0]} {call[1]}: hot path {a} vs full stack {b}"
    return fast
