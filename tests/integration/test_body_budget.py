"""Large request bodies: a process-wide budget of body bytes in flight (503 SERVER_BUSY
with Retry-After past it), and memory given back once a burst of large pushes is over.

Real servers on real sockets: what is under test is several uploads at once and the
server process's own resident memory.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess


@pytest.fixture
def small_budget(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"PUSHPOP_MAX_BODY_BYTES_IN_FLIGHT": str(1_000_000)}
    with ServerProcess(sqlite_path=tmp_path / "b.sqlite3", env=env,
                       log_path=tmp_path / "s.log") as s:  # fmt: skip
        yield s


def _body(n_bytes: int) -> bytes:
    """A push of items of 50 KB (under the item limit) adding up to ``n_bytes``."""
    return json.dumps({"items": [{"item": {"pad": "x" * 50_000}}] * (n_bytes // 50_000)}).encode()


def test_bodies_past_the_budget_wait_their_turn(small_budget: ServerProcess) -> None:
    body = _body(600_000)
    # a first upload is under way (its head sent, its body only half)
    slow = socket.create_connection(("127.0.0.1", small_budget.port))
    head = (f"POST /queue/budget/push HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    slow.sendall(head + body[:1000])
    time.sleep(0.3)
    with httpx.Client(base_url=small_budget.url, timeout=10) as c:
        second = c.post("/queue/budget/push", content=body,
                        headers={"content-type": "application/json"})  # fmt: skip
        assert second.status_code == 503, second.text
        assert second.json()["error"]["code"] == "SERVER_BUSY"
        assert second.headers["retry-after"] == "1"
        assert "PUSHPOP_MAX_BODY_BYTES_IN_FLIGHT" in second.json()["error"]["message"]
        assert c.get("/health").status_code == 200, "requests without a body are not held"
        slow.sendall(body[1000:])
        answer = slow.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 200"), answer[:200]
        slow.close()
        # the first one's bytes are given back: the next one passes
        third = c.post("/queue/budget/push", content=body,
                       headers={"content-type": "application/json"})  # fmt: skip
        assert third.status_code == 200, third.text
        assert c.get("/queue/budget").json()["depth"] == 24


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_memory_goes_back_after_a_burst_of_large_pushes(
    store: str, pg: PostgresServer, tmp_path: Path
) -> None:
    env = {"PUSHPOP_IDLE_TIMEOUT": "1"}
    if store == "postgres":
        server = ServerProcess(store="postgres", env=env, log_path=tmp_path / "s.log",
                               database_url=pg.database("pushpop_rss", fresh=True))  # fmt: skip
    else:
        server = ServerProcess(sqlite_path=tmp_path / "r.sqlite3", env=env,
                               log_path=tmp_path / "s.log")  # fmt: skip
    with server, httpx.Client(base_url=server.url, timeout=120) as c:
        proc = psutil.Process(server.proc.pid if server.proc else 0)
        for i in range(20):  # warm: imports, pools, caches
            c.post(f"/queue/warm{i}/push", json={"item": {"i": i}})
            c.post(f"/queue/warm{i}/pop")
        time.sleep(1.5)
        baseline = proc.memory_info().rss
        body = json.dumps({"items": [{"item": {"b": "x" * 60_000}}] * 500}).encode()

        def push(i: int) -> int:
            with httpx.Client(base_url=server.url, timeout=120) as own:
                r = own.post(f"/queue/big{i}/push", content=body,
                             headers={"content-type": "application/json"})  # fmt: skip
                return r.status_code

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(push, range(4))) == [200] * 4
        peak = proc.memory_info().rss
        for i in range(4):
            assert c.delete(f"/queue/big{i}").json()["purged"] == 500
        time.sleep(4)  # past the idle timeout: the queues' actors are gone
        idle = proc.memory_info().rss
    mib = 1024 * 1024
    assert peak > baseline + 50 * mib, "the burst did not use memory: nothing was tested"
    assert idle <= 1.5 * baseline, (
        f"RSS {baseline // mib} MiB before, {peak // mib} at the burst, {idle // mib} idle"
    )
