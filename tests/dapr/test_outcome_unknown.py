"""daprd SIGKILLed under a ledger of keyed pushes and keyed pops (issue 27's adversary):
answers whose outcome is unknown say so (502 OUTCOME_UNKNOWN), and retrying them with
the same Idempotency-Key applies each call once: no key's items stored twice, no item
lost by a pop whose answer was an error."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from http_helpers import drain
from server_helpers import dapr_host, pg_database

from supervise.pgserver import PostgresServer
from supervise.server import wait_ready

FAILED: Counter[str] = Counter()  # what the retries went through, by status or error


def _retry(c: httpx.Client, url: str, stop_at: float, **kw: object) -> httpx.Response:
    """Send until an answer other than 502/503 (a retry with the same key is safe)."""
    while True:
        try:
            r = c.post(url, **kw)  # type: ignore[arg-type]
            if r.status_code not in (502, 503):
                return r
            assert r.headers.get("retry-after"), r.text
            FAILED[f"{r.status_code} {r.json()['error']['code']}"] += 1
        except httpx.TransportError as exc:
            FAILED[type(exc).__name__] += 1
        assert time.monotonic() < stop_at, f"{url} kept failing"
        time.sleep(0.05)


def test_keyed_pushes_and_pops_through_a_daprd_sigkill_apply_once(
    pg: PostgresServer, control_plane: tuple[str, str], tmp_path: Path
) -> None:
    host = dapr_host(tmp_path, "unknown", control_plane,
                     database_url=pg_database(pg, "pushpop_unknown"))  # fmt: skip
    host.start(60)
    try:
        wait_ready(host.url, 60)
        queues = [f"u-{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]
        pushed: dict[str, list[int]] = {q: [] for q in queues}
        popped: dict[str, list[int]] = {q: [] for q in queues}
        stop = threading.Event()

        def producer_and_consumer(q: str) -> None:
            with httpx.Client(base_url=host.url, timeout=30) as c:
                n = 0
                while not stop.is_set():
                    stop_at = time.monotonic() + 60
                    key = {"Idempotency-Key": f"push-{q}-{n}"}
                    r = _retry(c, f"/queue/{q}/push", stop_at, json={"item": {"n": n}},
                               headers=key)  # fmt: skip
                    assert r.status_code == 200, r.text
                    pushed[q].append(n)
                    if n % 2:  # every other turn, a keyed plain pop of up to 2
                        key = {"Idempotency-Key": f"pop-{q}-{n}"}
                        r = _retry(c, f"/queue/{q}/pop", stop_at, params={"depth": 2},
                                   headers=key)  # fmt: skip
                        assert r.status_code == 200, r.text
                        popped[q] += [i["item"]["n"] for i in r.json()["items"]]
                    n += 1

        threads = [threading.Thread(target=producer_and_consumer, args=(q,)) for q in queues]
        for t in threads:
            t.start()
        time.sleep(1.5)
        info = json.loads(Path(host.env["PUSHPOP_DAPR_RUNINFO"]).read_text())
        os.kill(info["daprd_pid"], signal.SIGKILL)
        time.sleep(1.0)
        wait_ready(host.url, 30)
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(90)
        assert FAILED, "no call saw daprd down: the crash was missed"
        assert set(FAILED) <= {"502 OUTCOME_UNKNOWN", "503 RUNTIME_UNAVAILABLE",
                               "503 STORE_UNAVAILABLE"}, FAILED  # fmt: skip
        with httpx.Client(base_url=host.url, timeout=30) as c:
            for q in queues:
                rest = [i["item"]["n"] for i in drain(c, q)]
                taken = Counter(popped[q] + rest)
                twice = sorted(n for n, k in taken.items() if k > 1)
                assert not twice, f"{q}: items stored or handed out twice: {twice[:10]}"
                lost = sorted(set(pushed[q]) - set(taken))
                assert not lost, f"{q}: items lost: {lost[:10]}"
                assert len(pushed[q]) > 20, "too few calls to have seen the crash"
    finally:
        host.stop()
