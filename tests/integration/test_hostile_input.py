"""Hostile and malformed input against every runtime of the ``client`` fixture.

Every input gets a clear 4xx with the contract's error body, or is given back *exactly*
through every path an item takes (pop, lock, release, dead-letter): never a 5xx, a dropped
connection, a broken queue or a queue id reaching another queue's state. Some inputs go
over a raw socket because ``httpx`` would refuse or normalise them: those, and the body
limits the server's protocol enforces, run against ``real_server`` (a child process).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
import pytest
from http_helpers import ok, raw_request, read_response
from server_helpers import Served

from api.settings import Settings
from api.validation import MAX_NESTING
from supervise.server import ServerProcess

# What the session's servers were started with: they inherit this process's environment.
BODY_LIMIT = Settings.from_env().max_body_bytes
JSON = {"content-type": "application/json"}


# ---------------------------------------------------------------------- helpers
def error_code(r: httpx.Response) -> str:
    """Assert the contract's error shape on a 4xx and return its code."""
    where = f"{r.request.method} {r.request.url}"
    assert 400 <= r.status_code < 500, f"{where}: want a 4xx, got {r.status_code} {r.text[:300]}"
    assert r.headers.get("content-type", "").startswith("application/json"), (where, r.headers)
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, (where, body)
    assert body["error"]["message"].strip(), (where, body)
    return str(body["error"]["code"])


def expect(r: httpx.Response, status: int, code: str) -> None:
    got = error_code(r)
    assert (r.status_code, got) == (status, code), (
        f"{r.request.method} {r.request.url}: want {status} {code}, got {r.status_code} {r.text}"
    )


def canonical(value: Any) -> str:
    """JSON text that tells 1 from 1.0, -0.0 from 0.0 and 1e300 from 10**300."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


def peek(c: httpx.Client, q: str) -> list[tuple[str, str, int]]:
    """A queue's whole content in pop order, without taking it (lock everything, release)."""
    out: list[tuple[str, str, int]] = []
    locks = []
    for _ in range(50):  # bounded: tests keep their queues small
        r = ok(c.post(f"/queue/{q}/pop", params={"depth": 100, "require_ack": "true"}))
        if not r["items"]:
            break
        locks.append(r["lock_id"])
        out += [(i["id"], canonical(i["item"]), i["priority"]) for i in r["items"]]
    for lock_id in locks:
        ok(c.post(f"/queue/{q}/release", json={"lock_id": lock_id}))
    return out


def snapshot(c: httpx.Client, q: str) -> tuple[dict, list]:
    s = ok(c.get(f"/queue/{q}"))
    return {k: s[k] for k in ("depth", "by_priority", "in_flight", "locks")}, peek(c, q)


class PeakRss:
    """The server's peak RSS growth while the block runs.

    Resets the kernel's high-water mark (``/proc/PID/clear_refs`` = 5) and reads
    ``VmHWM`` afterwards; where that is not allowed, samples RSS every 5 ms instead.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.proc = psutil.Process(pid)
        self.growth = 0
        self._stop = threading.Event()
        self._peak = 0

    def _hwm(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM")

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, self.proc.memory_info().rss)

    @contextmanager
    def measure(self) -> Iterator[PeakRss]:
        base = self.proc.memory_info().rss
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            use_hwm = True
        except OSError:
            use_hwm = False
            self._peak = base
            sampler = threading.Thread(target=self._sample, daemon=True)
            sampler.start()
        try:
            yield self
        finally:
            if use_hwm:
                self.growth = self._hwm() - base
            else:
                self._stop.set()
                sampler.join()
                self.growth = self._peak - base


@contextmanager
def one_shot(server: Served) -> Iterator[httpx.Client]:
    """A client that opens a connection per request (over a network): uvicorn drops the
    connection after a 500, and the next request must not fail for that reason rather
    than on its own."""
    with server.client(limits=httpx.Limits(max_keepalive_connections=0)) as c:
        yield c


@pytest.fixture
def real_client(real_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=real_server.url, timeout=30) as c:
        yield c


def assert_alive(c: httpx.Client, q: str) -> None:
    """The server still serves, and this queue still works end to end."""
    assert ok(c.get("/health")) == {"status": "ok"}
    ids = ok(c.post(f"/queue/{q}/push", json={"item": {"alive": True}}))["ids"]
    items = ok(c.post(f"/queue/{q}/pop", params={"depth": 100}))["items"]
    assert ids[0] in [i["id"] for i in items]


# ---------------------------------------------------------------------- body size
def test_declared_body_over_the_limit_is_refused_before_it_is_sent(
    real_server: ServerProcess, real_client: httpx.Client, qid: str
) -> None:
    """Content-Length above the limit: 413 at once, without the server waiting for the body."""
    assert real_server.pid is not None
    rss = PeakRss(real_server.pid)
    with rss.measure():
        for path, declared in [
            (f"/queue/{qid}/push", BODY_LIMIT + 1),
            (f"/queue/{qid}/push", 2**40),
            (f"/queue/{qid}/acknowledge", BODY_LIMIT + 1),
            (f"/queue/{qid}/extend-lock", 2**40),
        ]:
            head = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {declared}\r\n\r\n"
            ).encode()
            start = time.monotonic()
            # 64 KiB of the body, then nothing: a server that waits for the rest never answers
            status, body = raw_request(real_server.port, head + b'{"items": [' + b" " * 65536, 5.0)
            took = time.monotonic() - start
            assert status == 413, (path, declared, status, body[:200])
            assert json.loads(body)["error"]["code"] == "BODY_TOO_LARGE", body
            assert took < 3, f"413 for a declared {declared} bytes took {took:.1f}s"
    assert rss.growth < 16 * 2**20, f"server RSS grew by {rss.growth >> 20} MiB"
    assert_alive(real_client, qid)


def test_chunked_body_growing_past_the_limit_is_cut_off(
    real_server: ServerProcess, real_client: httpx.Client, qid: str
) -> None:
    """No Content-Length, a chunked body that never ends: 413 once the limit is passed.

    The client offers three times the limit; the server must answer before it has been
    sent much more than the limit, and its peak RSS must not grow by the body's size.
    """
    assert real_server.pid is not None
    offered = 3 * BODY_LIMIT
    chunk = b"[" * (1 << 20)  # what it is does not matter: it is never parsed
    sent = 0
    response = b""
    rss = PeakRss(real_server.pid)
    with rss.measure(), socket.create_connection(("127.0.0.1", real_server.port), timeout=5) as s:
        s.sendall(
            f"POST /queue/{qid}/push HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        deadline = time.monotonic() + 60
        while sent < offered and time.monotonic() < deadline:
            if select.select([s], [], [], 0)[0]:
                break  # the server has answered (or closed): stop sending
            try:
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:  # refused mid-body: read what it said
                break
            sent += len(chunk)
        status, body = read_response(s, 5.0)
        response = body
    assert status == 413, (status, response[:200])
    assert json.loads(response)["error"]["code"] == "BODY_TOO_LARGE", response
    assert sent < offered, "the server read the whole oversized body before answering"
    # socket buffers on both sides hold a few MiB that the server never read
    assert sent <= BODY_LIMIT + 16 * 2**20, f"server answered only after {sent >> 20} MiB"
    assert rss.growth < BODY_LIMIT + 32 * 2**20, (
        f"server RSS grew by {rss.growth >> 20} MiB for a body cut off at {BODY_LIMIT >> 20} MiB"
    )
    assert_alive(real_client, qid)


# ---------------------------------------------------------------------- nesting
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_hundred_thousand_levels_of_nesting_are_400(
    client: httpx.Client, qid: str, opener: str
) -> None:
    closer = "]" if opener == "[" else "}"
    deep = opener * 100_000 + "1" + closer * 100_000
    for path, body in [
        (f"/queue/{qid}/push", deep),
        (f"/queue/{qid}/push", '{"item": {"x": ' + deep + "}}"),
        (f"/queue/{qid}/push", '{"items": [{"item": {"x": ' + deep + "}}]}"),
        (f"/queue/{qid}/acknowledge", '{"lock_id": "x", "y": ' + deep + "}"),
        (f"/queue/{qid}/extend-lock", '{"lock_id": "x", "additional_ttl_seconds": ' + deep + "}"),
    ]:
        expect(client.post(path, content=body.encode(), headers=JSON), 400, "MALFORMED_JSON")
    assert_alive(client, qid)


def item_lifecycle(c: httpx.Client, q: str, compact: str) -> str | None:
    """Take the one item of ``q`` through every path; the first deviation, or None."""
    lock_params = {"require_ack": "true", "ttl_seconds": 300}

    def same(item: Any) -> bool:
        return json.dumps(item, separators=(",", ":")) == compact

    r = c.post(f"/queue/{q}/pop", params=lock_params)
    if r.status_code != 200 or len(r.json()["items"]) != 1:
        return f"pop with ack: {r.status_code} {r.text[:120]}"
    if not same(r.json()["items"][0]["item"]):
        return "item changed on pop with ack"
    r = c.post(f"/queue/{q}/release", json={"lock_id": r.json()["lock_id"]})
    if r.status_code != 200:
        return f"release: {r.status_code} {r.text[:120]}"
    r = c.post(f"/queue/{q}/pop", params=lock_params)
    if r.status_code != 200 or len(r.json()["items"]) != 1:
        return f"pop with ack after release: {r.status_code} {r.text[:120]}"
    r = c.post(f"/queue/{q}/dead-letter", json={"lock_id": r.json()["lock_id"]})
    if r.status_code != 200:
        return f"dead-letter: {r.status_code} {r.text[:120]}"
    r = c.post(f"/queue/{q}-deadletter/pop")
    if r.status_code != 200 or len(r.json()["items"]) != 1:
        return f"pop of the dead-letter queue: {r.status_code} {r.text[:120]}"
    if not same(r.json()["items"][0]["item"]):
        return "item changed through the dead-letter queue"
    return None


def test_nesting_at_the_limit_is_400_or_fully_usable(
    server: Served, client: httpx.Client, qid: str
) -> None:
    """Items nest at most ``MAX_NESTING`` arrays/objects deep: deeper is a clear 400,
    up to the limit the item is usable through every path.

    Without a limit, items near Python's recursion limit were accepted at push and then
    failed with 500 when the actor serialised them again at a deeper stack: a queue
    holding an item nobody could get out. Accepted items must survive pop, release,
    dead-letter and the dead-letter queue (each decodes or encodes them again).
    """
    levels = [*range(MAX_NESTING - 4, MAX_NESTING + 4), 500, 900, 990]
    with one_shot(server) as c:
        problems, accepted = scan_nesting(c, qid, levels)
    # {"a": [[...]]}: the item object itself is one level
    assert accepted == [n for n in levels if n + 1 <= MAX_NESTING], accepted
    assert not problems, (
        f"accepted {accepted[0]}..{accepted[-1]} levels; deviations:\n" + "\n".join(problems)
    )
    assert_alive(client, qid)


def scan_nesting(
    client: httpx.Client, qid: str, levels_to_try: list[int]
) -> tuple[list[str], list[int]]:
    problems: list[str] = []
    accepted: list[int] = []
    for levels in levels_to_try:
        q = f"{qid}-n{levels}"
        compact = '{"a":' + "[" * levels + "]" * levels + "}"
        r = client.post(
            f"/queue/{q}/push", content=b'{"item":' + compact.encode() + b"}", headers=JSON
        )
        if r.status_code != 200:
            if r.status_code != 400 or "nest" not in r.text:  # item or whole body
                problems.append(f"{levels} levels, push: {r.status_code} {r.text[:120]}")
            continue
        accepted.append(levels)
        problem = item_lifecycle(client, q, compact)
        if problem:
            problems.append(f"{levels} levels, {problem}")
        r = client.get(f"/queue/{q}")
        if r.status_code != 200:
            problems.append(f"{levels} levels, stats afterwards: {r.status_code}")
    return problems, accepted


# ---------------------------------------------------------------------- numbers
@pytest.mark.parametrize(
    "body",
    [
        b'{"item": {"a": 1e999}}',
        b'{"item": {"a": -1e999}}',
        b'{"item": {"a": ' + b"1" * 5000 + b"}}",
        b'{"item": {"a": -' + b"9" * 5000 + b"}}",
        b'{"item": {"a": 1.' + b"5" * 5000 + b"e999999999}}",
        b'{"item": {"a": 1}, "priority": 1e999}',
        b'{"item": {"a": 1}, "priority": ' + b"1" * 5000 + b"}",
    ],
    ids=[
        "1e999",
        "-1e999",
        "10**5000",
        "-10**5000",
        "long-mantissa-huge-exp",
        "prio-1e999",
        "prio-10**5000",
    ],
)
def test_numbers_out_of_range_are_400(
    server: Served, client: httpx.Client, qid: str, body: bytes
) -> None:
    with one_shot(server) as c:
        r = c.post(f"/queue/{qid}/push", content=body, headers=JSON)
    assert error_code(r) in ("MALFORMED_JSON", "INVALID_PRIORITY"), r.text
    assert r.status_code == 400
    assert ok(client.get(f"/queue/{qid}"))["depth"] == 0


def test_big_and_odd_numbers_round_trip_exactly(client: httpx.Client, qid: str) -> None:
    """Numbers JSON can carry come back as sent: value *and* type (int vs float, -0.0)."""
    item = {
        "int_4000_digits": int("7" * 4000),
        "int_big": 10**300,
        "float_big": 1e300,
        "float_exp": 1.5e300,
        "float_1e2": 1e2,
        "neg_zero": -0.0,
        "subnormal": 5e-324,
        "tenth": 0.1,
        "int64_overflow": 2**64 + 1,
    }
    sent = canonical(item)
    ok(client.post(f"/queue/{qid}/push", content=json.dumps({"item": item}).encode(), headers=JSON))
    got = ok(client.post(f"/queue/{qid}/pop"))["items"][0]["item"]
    changed = {
        k: (item[k], got.get(k)) for k in item if canonical(got.get(k)) != canonical(item[k])
    }
    assert canonical(got) == sent, f"numbers changed in the store: {changed}"


# ---------------------------------------------------------------------- text
def test_invalid_utf8_is_400(client: httpx.Client, qid: str) -> None:
    for body in [
        b'{"item": {"a": "\xff"}}',
        b'{"item": {"\xc0\xaf": 1}}',  # overlong "/"
        b'{"item": {"a": "\xed\xa0\x80"}}',  # a surrogate encoded as UTF-8
        b'{"item": {"a": "\xf4\x90\x80\x80"}}',  # above U+10FFFF
        b'\xef\xbb\xbf{"item": {"a": 1}}',  # a UTF-8 byte order mark
    ]:
        expect(client.post(f"/queue/{qid}/push", content=body, headers=JSON), 400, "MALFORMED_JSON")
    expect(
        client.post(f"/queue/{qid}/acknowledge", content=b'{"lock_id": "\xff"}', headers=JSON),
        400,
        "MALFORMED_JSON",
    )
    assert ok(client.get(f"/queue/{qid}"))["depth"] == 0


def test_nul_characters_in_strings_and_keys_round_trip(client: httpx.Client, qid: str) -> None:
    items = [
        {"a\u0000b": "x\u0000y", "\u0000": ["\u0000", {"k\u0000": "\u0000\u0000"}]},
        {"backslash_u0000_text": "\\u0000", "mixed": "é\u0000😀"},
    ]
    body = json.dumps({"items": [{"item": i} for i in items]}).encode()
    ids = ok(client.post(f"/queue/{qid}/push", content=body, headers=JSON))["ids"]
    lk = ok(
        client.post(
            f"/queue/{qid}/pop", params={"depth": 10, "require_ack": "true", "ttl_seconds": 300}
        )
    )
    assert [canonical(i["item"]) for i in lk["items"]] == [canonical(i) for i in items]
    ok(client.post(f"/queue/{qid}/release", json={"lock_id": lk["lock_id"]}))
    got = ok(client.post(f"/queue/{qid}/pop", params={"depth": 10}))["items"]
    assert [i["id"] for i in got] == ids
    assert [canonical(i["item"]) for i in got] == [canonical(i) for i in items]
    # a NUL in a lock id is just an unknown lock
    expect(
        client.post(f"/queue/{qid}/acknowledge", json={"lock_id": "a\u0000b"}),
        404,
        "LOCK_NOT_FOUND",
    )


def test_lone_surrogates_in_items_are_400(client: httpx.Client, qid: str) -> None:
    for body in [
        b'{"item": {"a": "\\ud800"}}',
        b'{"item": {"a": "\\udfff"}}',
        b'{"item": {"\\ud800": 1}}',
        b'{"item": {"a": ["x\\udc00y"]}}',
        b'{"items": [{"item": {"ok": 1}}, {"item": {"a": "\\ud83d"}}]}',
    ]:
        expect(client.post(f"/queue/{qid}/push", content=body, headers=JSON), 400, "INVALID_ITEM")
    assert ok(client.get(f"/queue/{qid}"))["depth"] == 0, "a rejected bulk push stored items"
    # an escaped surrogate *pair* is one valid character
    ok(
        client.post(
            f"/queue/{qid}/push", content=b'{"item": {"e": "\\ud83d\\ude00"}}', headers=JSON
        )
    )
    assert ok(client.post(f"/queue/{qid}/pop"))["items"][0]["item"] == {"e": "\U0001f600"}


@pytest.mark.parametrize("op", ["acknowledge", "extend-lock", "release", "dead-letter"])
def test_lone_surrogate_lock_id_is_a_clean_4xx(
    server: Served, client: httpx.Client, qid: str, op: str
) -> None:
    """A lock id cannot hold a lone surrogate: 400 INVALID_LOCK_ID or 404, never a 500."""
    ok(client.post(f"/queue/{qid}/push", json={"item": {"n": 1}}))
    lk = ok(client.post(f"/queue/{qid}/pop", params={"require_ack": "true", "ttl_seconds": 300}))
    with one_shot(server) as c:
        r = c.post(f"/queue/{qid}/{op}", content=b'{"lock_id": "\\ud800"}', headers=JSON)
    assert r.status_code < 500, f"{op} with lock_id '\\ud800': {r.status_code} {r.text}"
    assert error_code(r) in ("INVALID_LOCK_ID", "LOCK_NOT_FOUND"), r.text
    s = ok(client.get(f"/queue/{qid}"))
    assert (s["locks"], s["in_flight"]) == (1, 1), "a rejected lock id touched the real lock"
    ok(client.post(f"/queue/{qid}/acknowledge", json={"lock_id": lk["lock_id"]}))


def test_duplicate_keys_are_400(client: httpx.Client, qid: str) -> None:
    for body in [
        b'{"item": {"a": 1, "a": 1}}',
        b'{"item": {"a": 1}, "priority": 0, "priority": 5}',
        b'{"items": [{"item": {"x": {"y": 1, "y": 2}}}]}',
        b'{"item": {"a\\u0000": 1, "a\\u0000": 2}}',
        b'{"item": {"\\u00e9": 1, "\xc3\xa9": 2}}',  # the same key, escaped and not
    ]:
        expect(client.post(f"/queue/{qid}/push", content=body, headers=JSON), 400, "MALFORMED_JSON")
    expect(
        client.post(
            f"/queue/{qid}/release", content=b'{"lock_id": "a", "lock_id": "b"}', headers=JSON
        ),
        400,
        "MALFORMED_JSON",
    )
    assert ok(client.get(f"/queue/{qid}"))["depth"] == 0


# ---------------------------------------------------------------------- queue ids
def seed_victim(c: httpx.Client, victim: str) -> tuple[dict, list]:
    body = {"items": [{"item": {"v": n}, "priority": n % 3} for n in range(7)]}
    ok(c.post(f"/queue/{victim}/push", json=body))
    lk = ok(c.post(f"/queue/{victim}/pop", params={"require_ack": "true", "ttl_seconds": 600}))
    assert lk["lock_id"]
    return snapshot(c, victim)


IMPOSTORS = [
    "{v}';DROP TABLE state;--",
    "{v}' OR '1'='1",
    '{v}"; DELETE FROM state; --',
    "{v}||meta",
    "{v}||s:0:0",
    "pushpop||QueueActor||{v}",
    "pushpop||QueueActor||{v}||meta",
    "a||b",
    "{v}/push",
    "{v}/",
    "../{v}",
    "{v}/..",
    "{v}%",
    "{v} ",
    " {v}",
    "{v}\n",
    "{v}\r\n",
    "{v}\t",
    "{v}\u0000",
    "{v}\uff0d",  # a fullwidth hyphen-minus
    "\uff56{v}",  # a fullwidth v
    "{v}*",
    "{v}?depth=100",
    "{v}#frag",
]


def test_hostile_queue_ids_are_rejected_or_isolated(
    server: Served, client: httpx.Client, qid: str
) -> None:
    """Ids that imitate SQL, paths or Dapr key layouts: 400 INVALID_QUEUE_ID, nothing leaks.

    The client follows redirects, as ``requests``, browsers and ``curl -L`` do: a redirect
    from an invalid id to a valid one would hand the request to another queue.
    """
    victim = qid
    before = seed_victim(client, victim)
    deviations: list[str] = []
    with server.client(follow_redirects=True) as c:
        for template in IMPOSTORS:
            bad = template.format(v=victim)
            enc = quote(bad, safe="")
            for method, path, kwargs in [
                ("POST", f"/queue/{enc}/push", {"json": {"item": {"evil": bad}, "priority": 0}}),
                ("POST", f"/queue/{enc}/pop", {"params": {"depth": 100}}),
                ("POST", f"/queue/{enc}/pop", {"params": {"depth": 100, "require_ack": "true"}}),
                ("GET", f"/queue/{enc}", {}),
                ("DELETE", f"/queue/{enc}", {}),
            ]:
                r = c.request(method, path, **kwargs)
                try:
                    expect(r, 400, "INVALID_QUEUE_ID")
                except AssertionError:
                    hops = " -> ".join(str(h.status_code) for h in r.history)
                    deviations.append(
                        f"{method} {path}: {hops + ' -> ' if hops else ''}{r.status_code} "
                        f"{r.text[:100]}"
                    )
    after = snapshot(client, victim)
    ok(client.get("/ready"))  # the state table is still there
    assert after == before, "an impostor id changed the victim queue:\n" + "\n".join(deviations)
    assert not deviations, "invalid ids not answered 400 INVALID_QUEUE_ID:\n" + "\n".join(
        deviations
    )


@pytest.mark.parametrize("alias", ["..", ".", "...", "%2e%2e", "%2E", "%2e%2e%2e"])
def test_dot_queue_ids_are_ordinary_isolated_queues(
    client: httpx.Client, qid: str, alias: str
) -> None:
    """``.``/``..`` are legal ids: their own queues, never a way to another one."""
    victim = qid
    before = seed_victim(client, victim)
    path_id = alias
    if "%" not in alias:
        path_id = quote(alias, safe="").replace(".", "%2E")  # keep httpx from resolving them
    name = alias.replace("%2e", ".").replace("%2E", ".")
    ok(client.delete(f"/queue/{path_id}"))
    pushed = ok(client.post(f"/queue/{path_id}/push", json={"item": {"in": name}}))
    s = ok(client.get(f"/queue/{path_id}"))
    assert (s["queue_id"], s["depth"]) == (name, 1), s
    assert snapshot(client, victim) == before
    got = ok(client.post(f"/queue/{path_id}/pop", params={"depth": 100}))["items"]
    assert [(i["id"], i["item"]) for i in got] == [(pushed["ids"][0], {"in": name})]
    assert snapshot(client, victim) == before


def test_dot_segments_sent_raw_do_not_reach_another_queue(
    real_server: ServerProcess, real_client: httpx.Client, qid: str
) -> None:
    """``/queue/x/../VICTIM`` on the wire (no client-side normalisation): not the victim."""
    victim = qid
    before = seed_victim(real_client, victim)
    for method, target in [
        ("DELETE", f"/queue/x/../{victim}"),
        ("DELETE", f"/queue/../queue/{victim}"),
        ("DELETE", f"/queue/./{victim}"),
        ("DELETE", f"/queue/{victim}/."),
        ("DELETE", f"/queue/{victim}/../{victim}"),
        ("DELETE", f"/queue/x%2F..%2F{victim}"),
        ("DELETE", f"/queue/..%2F{victim}"),
        ("POST", f"/queue/x/../{victim}/pop?depth=100"),
        ("POST", f"/queue/{victim}/../{victim}/pop?depth=100"),
        ("DELETE", f"//queue/{victim}"),
        ("DELETE", f"/queue//{victim}"),
        ("DELETE", f"/queue/{victim}%00"),
        ("DELETE", f"/queue/{victim}%0A"),
        ("DELETE", f"/queue/{victim}%0D%0A"),
        ("DELETE", f"/queue/{victim}%20"),
        ("DELETE", f"/queue/{victim}%3F"),
        ("DELETE", f"/queue/{victim}%23"),
        ("DELETE", f"/queue/{victim.upper()}"),
    ]:
        status, body = raw_request(
            real_server.port,
            f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
        assert status < 500, (target, status, body[:200])
        if status == 200:  # only a distinct queue may answer, never the victim
            answer = json.loads(body)
            assert answer in ({"purged": 0}, {"items": []}), (target, answer)
    assert snapshot(real_client, victim) == before, "a raw path reached the victim queue"


def test_case_and_length_make_distinct_queues(client: httpx.Client, qid: str) -> None:
    victim = qid
    before = seed_victim(client, victim)
    for other in [victim.upper(), victim + "-", victim + ":", victim[:-1], ("x" + victim)[:128]]:
        ok(client.post(f"/queue/{other}/push", json={"item": {"o": other}}))
        assert ok(client.post(f"/queue/{other}/pop", params={"depth": 100}))["items"][0][
            "item"
        ] == {"o": other}
        ok(client.delete(f"/queue/{other}"))
    expect(client.post(f"/queue/{'a' * 129}/push", json={"item": {}}), 400, "INVALID_QUEUE_ID")
    assert snapshot(client, victim) == before


def test_locks_do_not_cross_queues(client: httpx.Client, qid: str) -> None:
    """A lock id of one queue is unknown on every other queue, whatever it looks like."""
    victim, other = qid, f"{qid}-other"
    ok(client.post(f"/queue/{victim}/push", json={"item": {"v": 1}}))
    ok(client.post(f"/queue/{other}/push", json={"item": {"o": 1}}))
    lk = ok(client.post(f"/queue/{victim}/pop", params={"require_ack": "true", "ttl_seconds": 600}))
    lock_id = lk["lock_id"]
    for op in ["acknowledge", "release", "dead-letter", "extend-lock"]:
        expect(
            client.post(f"/queue/{other}/{op}", json={"lock_id": lock_id}), 404, "LOCK_NOT_FOUND"
        )
        for fake in [
            f"../{lock_id}",
            f"{lock_id}' OR '1'='1",
            f"l:{lock_id}",
            "meta",
            f"{victim}||l:{lock_id}",
            "%",
            "*",
        ]:
            r = client.post(f"/queue/{victim}/{op}", json={"lock_id": fake})
            expect(r, 404, "LOCK_NOT_FOUND")
    s = ok(client.get(f"/queue/{victim}"))
    assert (s["locks"], s["in_flight"]) == (1, 1)
    assert ok(client.post(f"/queue/{victim}/acknowledge", json={"lock_id": lock_id})) == {
        "acknowledged": 1
    }
    assert ok(client.get(f"/queue/{other}"))["depth"] == 1
