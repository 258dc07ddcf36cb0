"""A 100,000-item queue pushes and drains in order (bulk pushes keep it quick)."""

from __future__ import annotations

from asgi_helpers import AppThread

N = 100_000


def test_hundred_thousand_items_drain_in_order(apps: dict[str, AppThread], qid: str) -> None:
    with apps["postgres"].client(timeout=60) as c:
        last_id = ""
        for start in range(0, N, 1000):
            body = {
                "items": [{"item": {"n": n}, "priority": 4} for n in range(start, start + 1000)]
            }
            r = c.post(f"/queue/{qid}/push", json=body)
            assert r.status_code == 200, r.text
            ids = r.json()["ids"]
            assert ids[0] > last_id
            last_id = ids[-1]
        assert r.json()["depth"] == N
        # a push to the deep queue still lands at its tail
        assert (
            c.post(f"/queue/{qid}/push", json={"item": {"n": N}, "priority": 4}).json()["depth"]
            == N + 1
        )
        expect = 0
        while True:
            items = c.post(f"/queue/{qid}/pop", params={"depth": 100}).json()["items"]
            if not items:
                break
            got = [i["item"]["n"] for i in items]
            assert got == list(range(expect, expect + len(got)))
            expect += len(got)
        assert expect == N + 1
        stats = c.get(f"/queue/{qid}").json()
        assert stats["depth"] == 0
