"""Queue ids are 1-128 characters, dead-letter names included; a move past that is refused.

A dead-letter queue's name is no exception to the limit: a dead-letter whose target would
be longer than 128 characters is refused before anything moves, its items staying under
their lock.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from asgi_helpers import in_process

SUFFIX = "-deadletter"
LONGEST = "q" * 128


def error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]["message"]


@pytest.mark.parametrize(
    "name",
    [
        "q" * 129,
        LONGEST + SUFFIX,
        "q" * 118 + SUFFIX,  # 129 characters
        LONGEST + SUFFIX * 50,
        "a" + SUFFIX * 12,  # 133 characters of nothing but a suffix chain
    ],
    ids=lambda n: f"{len(n)}chars",
)
async def test_ids_past_128_characters_are_refused(name: str, tmp_path: Path) -> None:
    async with in_process(tmp_path / "db.sqlite3") as c:
        for method, path, body in [
            ("POST", f"/queue/{name}/push", {"item": {"a": 1}}),
            ("POST", f"/queue/{name}/pop", None),
            ("GET", f"/queue/{name}", None),
            ("DELETE", f"/queue/{name}", None),
            ("POST", f"/queue/{name}/dead-letter", {"lock_id": "x"}),
        ]:
            msg = error(await c.request(method, path, json=body), 400, "INVALID_QUEUE_ID")
            assert "128" in msg, msg


async def test_ids_of_128_characters_and_short_suffix_chains_are_queues(tmp_path: Path) -> None:
    async with in_process(tmp_path / "db.sqlite3") as c:
        for name in (LONGEST, "q" * 117 + SUFFIX, "a" + SUFFIX * 11):
            assert len(name) <= 128
            r = await c.post(f"/queue/{name}/push", json={"item": {"n": 1}})
            assert r.status_code == 200, r.text
            r = await c.post(f"/queue/{name}/pop")
            assert [i["item"] for i in r.json()["items"]] == [{"n": 1}]


async def test_dead_letter_that_would_strand_items_is_refused(tmp_path: Path) -> None:
    """From a 118-char queue the dead-letter queue would be 129 characters: 400, nothing
    moved, the lock still holds its items; a 117-char queue dead-letters normally."""
    async with in_process(tmp_path / "db.sqlite3") as c:
        for length, moved in ((118, False), (128, False), (117, True)):
            q = "d" * length
            await c.post(f"/queue/{q}/push", json={"items": [{"item": {"n": n}} for n in range(3)]})
            lock = await c.post(f"/queue/{q}/pop", params={"depth": 3, "require_ack": "true"})
            lock_id = lock.json()["lock_id"]
            r = await c.post(f"/queue/{q}/dead-letter", json={"lock_id": lock_id})
            if moved:
                assert r.json() == {"dead_lettered": 3, "dead_letter_queue": q + SUFFIX}
                got = await c.post(f"/queue/{q}{SUFFIX}/pop", params={"depth": 5})
                assert [i["item"]["n"] for i in got.json()["items"]] == [0, 1, 2]
                continue
            msg = error(r, 400, "INVALID_QUEUE_ID")
            assert f"{length + len(SUFFIX)} characters" in msg and "nothing was moved" in msg
            stats = (await c.get(f"/queue/{q}")).json()
            assert (stats["depth"], stats["in_flight"]) == (0, 3), stats
            r = await c.post(f"/queue/{q}/release", json={"lock_id": lock_id})
            assert r.json() == {"released": 3}
            got = await c.post(f"/queue/{q}/pop", params={"depth": 5})
            assert [i["item"]["n"] for i in got.json()["items"]] == [0, 1, 2]
