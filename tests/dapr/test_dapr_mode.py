"""Dapr mode with the real runtime: placement, scheduler, daprd and the app, on loopback.

The API contract itself runs against Dapr mode through the ``dapr`` parameter of the
``server`` fixture (``tests/integration/test_api.py``). This file covers what only Dapr mode has:
the tokens between app and sidecar, the state-store choice of the launcher, the
lossless state path, a sidecar that dies under load, data shared with the embedded
runtime, a PostgreSQL outage behind daprd, and an orderly shutdown.

Nothing is mocked; the binaries are built by ``scripts/build_dapr.sh`` if missing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from http_helpers import drain, ok
from server_helpers import dapr_host, pg_database

from supervise.dapr_host import resiliency_resources
from supervise.dapr_processes import (
    COMPONENTS_DIR,
    Sidecar,
    ensure_dapr_built,
    free_port,
)
from supervise.pgserver import PostgresServer
from supervise.server import ServerProcess, wait_ready

pytestmark = pytest.mark.dapr

BOUND = 12.0  # seconds any one request may take while the sidecar or the store is down


# ---------------------------------------------------------------------- helpers
def runinfo(server: ServerProcess) -> dict[str, Any]:
    return json.loads(Path(server.env["PUSHPOP_DAPR_RUNINFO"]).read_text())


def log_when(path: str | Path, marker: str, timeout: float) -> str:
    """The log's text once ``marker`` is in it (or as it is after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        text = Path(path).read_text()
        if marker in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------------- security
def test_actor_routes_answer_only_the_sidecar(dapr_server: ServerProcess) -> None:
    info = runinfo(dapr_server)
    url = f"{dapr_server.url}/actors/QueueActor/x/method/Stats"
    for headers in ({}, {"dapr-api-token": "wrong"}, {"dapr-api-token": ""}):
        r = httpx.put(url, content=b"{}", headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "UNAUTHENTICATED"
        assert set(r.json()["error"]) == {"code", "message"}
    for path in ("/dapr/config", "/healthz"):
        assert httpx.get(dapr_server.url + path).status_code == 401, path
    r = httpx.delete(f"{dapr_server.url}/actors/QueueActor/x")
    assert r.status_code == 401
    good = {"dapr-api-token": info["app_api_token"]}
    r = httpx.put(url, content=b"{}", headers=good)
    assert r.status_code == 200 and r.json()["ok"]["queue_id"] == "x", r.text
    config = httpx.get(dapr_server.url + "/dapr/config", headers=good).json()
    assert config["entities"] == ["QueueActor"]
    # Go duration strings ("0h1m0s0ms0μs"): PUSHPOP_IDLE_TIMEOUT's default of 60 s
    assert "1m0s" in config["actorIdleTimeout"] and config["drainRebalancedActors"] is True
    # sidecar plumbing stays out of the public API document
    paths = httpx.get(dapr_server.url + "/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/actors", "/dapr", "/healthz"))]


def test_sidecar_api_needs_the_dapr_token(dapr_server: ServerProcess) -> None:
    info = runinfo(dapr_server)
    base = f"http://127.0.0.1:{info['dapr_http_port']}/v1.0"
    assert httpx.get(f"{base}/metadata").status_code == 401
    r = httpx.post(f"{base}/actors/QueueActor/x/method/Stats", content=b"{}")
    assert r.status_code == 401
    r = httpx.get(f"{base}/metadata", headers={"dapr-api-token": info["dapr_api_token"]})
    assert r.status_code == 200 and r.json()["id"] == "pushpop"
    # and the database URL is not readable through the sidecar's secrets API
    h = {"dapr-api-token": info["dapr_api_token"]}
    r = httpx.get(f"{base}/secrets/pushpop-env/DATABASE_URL", headers=h)
    assert r.status_code == 403, r.text
    r = httpx.get(f"{base}/secrets/pushpop-env/bulk", headers=h)
    assert "postgres" not in r.text, r.text


# ---------------------------------------------------------------------- state
@pytest.mark.parametrize("state", ["component", "direct"])
def test_state_is_lossless_and_jsonb_where_possible(
    state: str, request: pytest.FixtureRequest, pg: PostgresServer, qid: str
) -> None:
    """Plain items are stored as jsonb like the embedded store does; items daprd's HTTP API
    would alter (U+0000, big integers, 1.0) take the gRPC path and come back exact. With
    PUSHPOP_DAPR_STATE=direct the host's own store writes the very same rows."""
    fixture = "dapr_server" if state == "component" else "dapr_direct_server"
    server = request.getfixturevalue(fixture)
    c = httpx.Client(base_url=server.url, timeout=30)
    plain, odd = f"{qid}-plain", f"{qid}-odd"
    ok(c.post(f"/queue/{plain}/push", json={"item": {"n": 1, "f": 0.5, "s": "x"}}))
    tricky = {"nul": "a\u0000b", "big": 2**63 + 1, "one": 1.0, "exp": 1e16, "neg": -(2**70)}
    ok(c.post(f"/queue/{odd}/push", json={"item": tricky}))
    url = pg_database(pg, f"pushpop_dapr_{state}")
    with psycopg.connect(url) as conn:
        rows = dict(
            conn.execute(
                "SELECT key, isbinary FROM state WHERE key LIKE %s OR key LIKE %s",
                (f"pushpop||QueueActor||{plain}||s:%", f"pushpop||QueueActor||{odd}||s:%"),
            ).fetchall()
        )
    assert rows == {
        f"pushpop||QueueActor||{plain}||s:1:0": False,
        f"pushpop||QueueActor||{odd}||s:1:0": True,
    }
    got = ok(c.post(f"/queue/{odd}/pop"))["items"][0]["item"]
    assert got == tricky
    assert type(got["one"]) is float and type(got["exp"]) is float


@pytest.mark.parametrize(
    ("value", "lossy"),
    [
        ({"a": 2**63 + 1}, True), ({"a": -(2**60)}, True), ({"a": 10**15}, True),
        ({"a": 1.0}, True), ({"a": [-10.0]}, True), ({"a": 6.02e23}, True),
        ({"a": 1e-7}, True), ({"a": 1.5e300}, True), ({"a": "x\u0000"}, True),
        ({"a": 999_999_999_999_999}, False), ({"a": 1795438197.1675963}, False),
        ({"a": [0.5, -3.25, 10.05]}, False), ({"id": "0000000000000001", "e": "1e5"}, False),
    ],
)  # fmt: skip
def test_http_lossy_scan(value: Any, lossy: bool) -> None:
    """What makes a state transaction take the gRPC path (see api.dapr.invoker)."""
    from actor_service.runtime.dapr.actor_client import HTTP_LOSSY
    from actor_service.serializer import dumps

    assert bool(HTTP_LOSSY.search(b'[{"request":{"value":' + dumps(value) + b"}}]")) is lossy


def test_sqlite_store_and_orderly_shutdown(tmp_path: Path) -> None:
    """The launcher's own control plane, ``--store sqlite`` at ``--sqlite-path`` (a file the
    embedded runtime wrote first), and SIGTERM stopping every process it started."""
    db = tmp_path / "state.sqlite3"
    with ServerProcess(store="sqlite", sqlite_path=db, log_path=tmp_path / "emb.log") as emb:
        c = httpx.Client(base_url=emb.url, timeout=30)
        ok(c.post("/queue/shared/push", json={"items": [{"item": {"n": n}} for n in range(3)]}))
    host = dapr_host(tmp_path, "sqlite", None, store="sqlite", sqlite_path=db)
    host.start(60)
    try:
        wait_ready(host.url, 60)
        info = runinfo(host)
        c = httpx.Client(base_url=host.url, timeout=30)
        assert [i["item"]["n"] for i in drain(c, "shared")] == [0, 1, 2]
        ok(c.post("/queue/dapr-wrote/push", json={"item": {"k": "v"}}))
        # the launcher logs its start line once its own readiness check is through,
        # which may be after /ready first answered 200 to us
        assert f"state in sqlite {db}" in log_when(host.log_path, "pushpop ready", 30)
    finally:
        host.stop()
    pids = [info["pid"], info["daprd_pid"], info["placement_pid"], info["scheduler_pid"]]
    assert not [p for p in pids if pid_alive(p)], "processes left behind after SIGTERM"
    assert not Path(host.env["PUSHPOP_DAPR_RUNINFO"]).exists()
    with ServerProcess(store="sqlite", sqlite_path=db, log_path=tmp_path / "emb2.log") as emb:
        got = ok(httpx.post(f"{emb.url}/queue/dapr-wrote/pop"))["items"]
        assert [i["item"] for i in got] == [{"k": "v"}]


def test_queue_moves_between_embedded_and_dapr_mode(
    pg: PostgresServer, control_plane: tuple[str, str], tmp_path: Path
) -> None:
    """Same database, same app id: a queue (items over several segments, an open lock)
    written by the embedded runtime is served by Dapr mode, and back again."""
    url = pg_database(pg, "pushpop_compat")
    q = f"compat-{uuid.uuid4().hex[:8]}"
    items = [{"item": {"n": n, "big": 2**64 + n, "s": "é\u0000" if n % 50 == 0 else "x"},
              "priority": n % 3} for n in range(250)]  # fmt: skip
    embedded = ServerProcess(
        store="postgres", database_url=url, log_path=tmp_path / "embedded.log",
        env={"PUSHPOP_APP_ID": "pushpop"},
    )  # fmt: skip
    with embedded:
        c = httpx.Client(base_url=embedded.url, timeout=30)
        for i in range(0, 250, 50):
            ok(c.post(f"/queue/{q}/push", json={"items": items[i : i + 50]}))
        lock = ok(c.post(f"/queue/{q}/pop", params={"depth": 5, "require_ack": "true",
                                                    "ttl_seconds": 600}))  # fmt: skip
        before = ok(c.get(f"/queue/{q}"))
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "SELECT value FROM dapr_metadata WHERE key = 'migrations'"
        ).fetchone() == ("3",)
        keys = {k for (k,) in conn.execute("SELECT key FROM state WHERE key LIKE %s",
                                           (f"pushpop||QueueActor||{q}||%",))}  # fmt: skip
        assert f"pushpop||QueueActor||{q}||meta" in keys
        assert f"pushpop||QueueActor||{q}||l:{lock['lock_id']}" in keys

    host = dapr_host(tmp_path, "compat", control_plane, database_url=url)
    host.start(60)
    try:
        wait_ready(host.url, 60)
        c = httpx.Client(base_url=host.url, timeout=30)
        assert ok(c.get(f"/queue/{q}")) == before
        ack = c.post(f"/queue/{q}/acknowledge", json={"lock_id": lock["lock_id"]})
        assert ok(ack) == {"acknowledged": 5}
        locked = {i["item"]["n"] for i in lock["items"]}
        want = sorted((e for e in items if e["item"]["n"] not in locked),
                      key=lambda e: (e["priority"], e["item"]["n"]))  # fmt: skip
        got = ok(c.post(f"/queue/{q}/pop", params={"depth": 100}))["items"]
        assert [i["item"] for i in got] == [e["item"] for e in want[:100]]
        back = want[100:]
    finally:
        host.stop()

    with ServerProcess(store="postgres", database_url=url, log_path=tmp_path / "e2.log") as emb:
        rest = drain(httpx.Client(base_url=emb.url, timeout=30), q)
        assert [i["item"] for i in rest] == [e["item"] for e in back]


def test_external_sidecar_mode(
    pg: PostgresServer, control_plane: tuple[str, str], tmp_path: Path
) -> None:
    """The container set-up (Compose, Kubernetes): ``PUSHPOP_DAPR_SIDECAR=external`` serves
    only the app; daprd is someone else's, found through the SDK's variables."""
    url = pg_database(pg, "pushpop_external")
    port = free_port()
    sidecar = Sidecar(
        "pushpop", port, COMPONENTS_DIR / "postgres", COMPONENTS_DIR / "config.yaml",
        {"PUSHPOP_DATABASE_URL": url, "DAPR_HOST_IP": "127.0.0.1"}, *control_plane,
        app_api_token=f"app-{uuid.uuid4().hex}", dapr_api_token=f"dapr-{uuid.uuid4().hex}",
        log_dir=tmp_path, bin_dir=ensure_dapr_built(),
        extra_args=["--resources-path", str(resiliency_resources(tmp_path))],
    )  # fmt: skip
    app = ServerProcess(store="postgres", database_url=url, runtime="dapr", port=port,
                        log_path=tmp_path / "app.log",
                        env={"PUSHPOP_DAPR_SIDECAR": "external", **sidecar.sdk_env()})  # fmt: skip
    try:
        app.start(30)
        sidecar.start()
        wait_ready(app.url, 60)
        c = httpx.Client(base_url=app.url, timeout=30)
        ok(c.post("/queue/ext/push", json={"item": {"k": 1}}))
        assert [i["item"] for i in drain(c, "ext")] == [{"k": 1}]
        r = httpx.put(f"{app.url}/actors/QueueActor/ext/method/Stats", content=b"{}")
        assert r.status_code == 401
        assert "external sidecar" in Path(app.log_path).read_text()
    finally:
        sidecar.stop()
        app.stop()


# ---------------------------------------------------------------------- faults
def test_sidecar_restart_under_load(
    pg: PostgresServer, control_plane: tuple[str, str], tmp_path: Path
) -> None:
    """SIGKILL daprd while clients push: they get 503 with Retry-After when nothing was done,
    502 OUTCOME_UNKNOWN when the call had been sent (never a 500, never a hang), the
    launcher brings daprd back without restarting the app, no ack is lost and no push
    answered 503 is stored."""
    host = dapr_host(tmp_path, "restart", control_plane,
                     database_url=pg_database(pg, "pushpop_restart"))  # fmt: skip
    host.start(60)
    try:
        wait_ready(host.url, 60)
        before = runinfo(host)
        queues = [f"r-{uuid.uuid4().hex[:8]}-{i}" for i in range(6)]
        acked: dict[str, list[int]] = {q: [] for q in queues}
        refused: dict[str, list[int]] = {q: [] for q in queues}  # answered 503
        seen: list[tuple[int, float, str | None, str]] = []
        stop = threading.Event()

        def push_loop(q: str) -> None:
            with httpx.Client(base_url=host.url, timeout=BOUND + 10) as c:
                n = 0
                while not stop.is_set():
                    t = time.monotonic()
                    r = c.post(f"/queue/{q}/push", json={"item": {"n": n}, "priority": n % 2})
                    seen.append((r.status_code, time.monotonic() - t,
                                 r.headers.get("retry-after"), r.text[:2000]))  # fmt: skip
                    if r.status_code == 200:
                        acked[q].append(n)
                    else:
                        if r.status_code == 503:
                            refused[q].append(n)
                        time.sleep(0.05)
                    n += 1

        with ThreadPoolExecutor(len(queues)) as pool:
            try:
                for q in queues:
                    pool.submit(push_loop, q)
                time.sleep(1.5)
                os.kill(before["daprd_pid"], signal.SIGKILL)
                killed_at = len(seen)
                # someone takes daprd's metrics port while it is down (the CI failure
                # this names: daprd restarted five times into "address already in use")
                squatter = take_port(before["dapr_metrics_port"], within=0.4)
                deadline = time.monotonic() + 30
                while runinfo(host)["daprd_pid"] == before["daprd_pid"]:
                    assert time.monotonic() < deadline, "daprd was not restarted"
                    time.sleep(0.1)
                wait_ready(host.url, 30)
                time.sleep(1.5)
            finally:  # a failed step must not leave the pushers running forever
                stop.set()

        statuses = {s for s, *_ in seen}
        assert statuses <= {200, 502, 503}, [x for x in seen if x[0] not in (200, 502, 503)][:5]
        errors = [x for x in seen if x[0] in (502, 503)]
        assert errors, "no request saw the sidecar down"
        assert all(ra for _, _, ra, _ in errors), "an error without Retry-After"
        codes = {502: ("OUTCOME_UNKNOWN",), 503: ("RUNTIME_UNAVAILABLE", "STORE_UNAVAILABLE")}
        assert all(json.loads(t)["error"]["code"] in codes[s] for s, *_, t in errors)
        assert max(d for _, d, _, _ in seen) < BOUND
        assert {s for s, *_ in seen[killed_at:][-20:]} == {200}, "did not recover"
        after = runinfo(host)
        assert after["pid"] == before["pid"] and host.proc and host.proc.poll() is None
        assert after["dapr_metrics_port"] != before["dapr_metrics_port"]
        assert after["dapr_http_port"] == before["dapr_http_port"]  # the app still calls it
        squatter.close()
        c = httpx.Client(base_url=host.url, timeout=30)
        for q in queues:
            got = [i["item"]["n"] for i in drain(c, q)]
            assert len(got) == len(set(got)), f"{q}: duplicates"
            assert set(acked[q]) <= set(got), f"{q}: lost {sorted(set(acked[q]) - set(got))}"
            stored = sorted(set(refused[q]) & set(got))
            assert not stored, f"{q}: pushes answered 503 (nothing done) were stored: {stored}"
            for p in (0, 1):
                mine = [n for n in got if n % 2 == p]
                assert mine == sorted(mine), f"{q}: priority {p} out of order"
    finally:
        host.stop()


def take_port(port: int, within: float) -> socket.socket:
    """Listen on ``port`` as soon as its owner (just killed) lets go of it."""
    deadline = time.monotonic() + within
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
            return s
        except OSError:
            s.close()
            assert time.monotonic() < deadline, f"port {port} still held after {within}s"
            time.sleep(0.01)


def test_store_outage_behind_daprd(control_plane: tuple[str, str], tmp_path: Path) -> None:
    """PostgreSQL stops: queue calls and /ready answer 503 STORE_UNAVAILABLE quickly, /health
    stays 200; PostgreSQL returns: the same processes serve again, nothing acked is lost."""
    pg = PostgresServer().start()
    host = dapr_host(tmp_path, "outage", control_plane, database_url=pg.url,
                     env={"PUSHPOP_REQUEST_TIMEOUT": "5"})  # fmt: skip
    try:
        host.start(60)
        wait_ready(host.url, 60)
        c = httpx.Client(base_url=host.url, timeout=BOUND + 10)
        q = f"o-{uuid.uuid4().hex[:8]}"
        ids = ok(c.post(f"/queue/{q}/push", json={"items": [{"item": {"n": n}} for n in range(5)]}))
        pg.stop()
        for method, path, body in [("POST", f"/queue/{q}/push", {"item": {"n": 9}}),
                                   ("POST", f"/queue/{q}-new/pop", None),
                                   ("GET", "/ready", None)]:  # fmt: skip
            t = time.monotonic()
            r = c.request(method, path, json=body)
            assert time.monotonic() - t < BOUND
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "STORE_UNAVAILABLE" and r.headers["retry-after"]
        assert c.get("/health").status_code == 200
        pg.start()
        deadline = time.monotonic() + 20
        while c.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, "did not recover"
            time.sleep(0.2)
        assert [i["id"] for i in drain(c, q)] == ids["ids"]
    finally:
        host.stop()
        pg.cleanup()
