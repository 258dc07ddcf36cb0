"""A lock's total lifetime is capped: each extend is capped, and so is their sum.

Before the cap, ``ttl_seconds=3600`` then 30 extends of 3600 kept items locked 31 h.
"""

from __future__ import annotations

from pathlib import Path

from asgi_helpers import app_thread
from http_helpers import err, ok

from actor_service.queue_layout import Limits, apply_changes, run_sync
from actor_service.queue_state import QueueState


def test_extends_stop_at_the_lifetime_cap_in_the_state_machine() -> None:
    store: dict = {}
    limits = Limits(max_lock_lifetime=100)

    def run(now: float, make):
        st = QueueState("q", now, lambda: "L", limits)
        out = run_sync(make(st), store)
        apply_changes(store, st.changes())
        return out

    run(0, lambda s: s.push([({"a": 1}, 1)]))
    run(0, lambda s: s.pop(1, lock_ttl=60))
    assert run(10, lambda s: s.extend("L", 40)) == 100  # exactly the cap
    try:
        run(20, lambda s: s.extend("L", 1))
    except Exception as exc:
        assert getattr(exc, "code", "") == "LOCK_LIFETIME_EXCEEDED", exc
        assert "100s" in str(exc)
    else:
        raise AssertionError("an extend past the cap was accepted")
    assert run(20, lambda s: s.stats())["locks"] == 1  # the lock itself is untouched


def test_lock_lifetime_cap_over_http(tmp_path: Path) -> None:
    """The app with ``PUSHPOP_MAX_LOCK_LIFETIME=5000``."""
    with app_thread(tmp_path / "s.sqlite3", max_lock_lifetime=5000) as app, app.client() as c:
        ok(c.post("/queue/l/push", json={"item": {"n": 1}}))
        lock = ok(c.post("/queue/l/pop", params={"depth": 1, "require_ack": "true",
                                                 "ttl_seconds": 3600}))  # fmt: skip
        body = {"lock_id": lock["lock_id"], "additional_ttl_seconds": 1000}
        first = ok(c.post("/queue/l/extend-lock", json=body))
        assert first["lock_expires_at"] == lock["lock_expires_at"] + 1000
        msg = err(c.post("/queue/l/extend-lock", json=body), 400, "LOCK_LIFETIME_EXCEEDED",
                  "5000s", "PUSHPOP_MAX_LOCK_LIFETIME")  # fmt: skip
        assert "400s more" in msg, msg
        ok(c.post("/queue/l/extend-lock", json={**body, "additional_ttl_seconds": 400}))
        assert ok(c.post("/queue/l/acknowledge", json={"lock_id": lock["lock_id"]})) == {
            "acknowledged": 1
        }
