"""The queue API's answers as the load tests see them, and the side-channel client.

Why ``error_kind`` lives here: Locust groups failures by their text, so every place
that reports one must name it the same way for ``*_failures.csv`` to be the
errors-by-kind table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from geventhttpclient import HTTPClient


@dataclass
class Answer:
    status: int
    body: Any
    problem: str | None  # None = counted as a success

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass
class Popped:
    items: list[dict[str, Any]]
    lock_id: str | None = None

    @property
    def ids(self) -> list[str]:
        return [i["id"] for i in self.items]


def error_kind(status: int, body: Any, headers: Any, error: BaseException | None = None) -> str:
    """How a failed request is reported: ``"503 STORE_UNAVAILABLE"``, ``"connection: ..."``."""
    if status == 0:
        return f"connection: {type(error).__name__ if error else 'no response'}"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("code"), str):
        return f"{status} UNSTRUCTURED_ERROR_BODY"
    kind = f"{status} {err['code']}"
    if status == 503 and not (headers and headers.get("retry-after")):
        kind += " (no Retry-After)"
    return kind


def _json(resp: Any) -> Any:
    try:
        return resp.json()
    except Exception:
        return None


class ApiClient:
    """Requests that are measurement, not load (depth samples, the final drain).

    geventhttpclient rather than httpx: httpx pulls in trio when it is installed, which
    needs ``select.epoll`` -- gone once gevent has monkey-patched the process. And not
    a user's ``self.client``: these requests must not appear in Locust's statistics.
    """

    def __init__(self, host: str, timeout: float = 60.0) -> None:
        self._http = HTTPClient.from_url(host, network_timeout=timeout, connection_timeout=5.0)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request; ``body`` (when given) is sent as JSON."""
        headers = {"Accept": "application/json"}
        raw = b""
        if body is not None:
            raw = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        resp = self._http.request(method, path, body=raw, headers=headers)
        raw = resp.read()
        try:
            return resp.status_code, json.loads(raw) if raw else None
        finally:
            resp.release()

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, body = self.call(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path}: {status} {body}")
        return body

    def close(self) -> None:
        self._http.close()


__all__ = ["Answer", "ApiClient", "Popped", "error_kind"]
