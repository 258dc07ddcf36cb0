"""The embedded runtime keeps Dapr's actor guarantees, on a real SQLite file."""

from __future__ import annotations

import asyncio
import gc
import json
from pathlib import Path
from typing import Any

import pytest

from actor_service.actor import ACTOR_TYPE, QueueActor
from actor_service.errors import StoreUnavailable
from actor_service.queue_layout import META, Limits, apply_changes, format_id
from actor_service.queue_state import QueueState
from actor_service.runtime.embedded import EmbeddedRuntime
from actor_service.stores.base import Transaction, actor_key, json_bytes
from actor_service.stores.sqlite import SqliteStore
from api.queue_list import QueueLister


async def _until(condition: object, timeout: float) -> None:
    """Poll a condition (the reaper runs on its own clock), bounded in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition() and loop.time() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.05)


class SlowActor(QueueActor):
    """Records how many calls run inside one actor id, and overall, at the same time."""

    inside: dict[str, int] = {}
    peak_per_actor = 0
    running = 0
    peak_overall = 0

    async def stats(self, request: dict) -> dict:
        cls = SlowActor
        me = self.id.id
        cls.inside[me] = cls.inside.get(me, 0) + 1
        cls.running += 1
        cls.peak_per_actor = max(cls.peak_per_actor, cls.inside[me])
        cls.peak_overall = max(cls.peak_overall, cls.running)
        await asyncio.sleep(0.01)
        cls.inside[me] -= 1
        cls.running -= 1
        return await super().stats(request)


async def test_one_call_at_a_time_per_actor_but_actors_in_parallel(tmp_sqlite: Path) -> None:
    rt = EmbeddedRuntime(SqliteStore(tmp_sqlite), actor_class=SlowActor)
    await rt.start()
    try:
        await asyncio.gather(*(rt.invoke("same", "Stats", {}) for _ in range(20)))
        assert SlowActor.peak_per_actor == 1
        assert SlowActor.peak_overall == 1
        await asyncio.gather(*(rt.invoke(f"q{i}", "Stats", {}) for i in range(20)))
        assert SlowActor.peak_per_actor == 1
        assert SlowActor.peak_overall > 1, "different actor ids must run concurrently"
    finally:
        await rt.stop()


async def test_concurrent_pushes_to_one_queue_never_lose_an_id(tmp_sqlite: Path) -> None:
    rt = EmbeddedRuntime(SqliteStore(tmp_sqlite))
    await rt.start()
    try:
        replies = await asyncio.gather(
            *(
                rt.invoke("q", "Push", {"items": [{"item": {"n": i}, "priority": 1}]})
                for i in range(50)
            )
        )
        ids = [r["ok"]["ids"][0] for r in replies]
        assert len(set(ids)) == 50
        stats = await rt.invoke("q", "Stats", {})
        assert stats["ok"]["depth"] == 50
    finally:
        await rt.stop()


async def test_idle_actors_are_deactivated_and_state_survives(tmp_sqlite: Path) -> None:
    rt = EmbeddedRuntime(SqliteStore(tmp_sqlite), idle_timeout=0.2, scan_interval=0.05)
    await rt.start()
    try:
        await rt.invoke("keep", "Push", {"items": [{"item": {"k": 1}, "priority": 3}]})
        assert rt.active_actors == 1
        await asyncio.sleep(0.6)
        assert rt.active_actors == 0
        assert rt._turns == {}
        # a fresh activation reads the state back from the store
        reply = await rt.invoke("keep", "Pop", {"depth": 5})
        assert [i["item"] for i in reply["ok"]["items"]] == [{"k": 1}]
    finally:
        await rt.stop()


async def test_memory_stays_bounded_after_many_distinct_queues(tmp_sqlite: Path) -> None:
    """Touch many distinct queues, far more than the reaper lets live at once: active
    actors and turn entries stay bounded, and all are reaped in the end."""
    batch_size, batches, pause_every = 250, 20, 4  # 5,000 queues
    # between pauses at most ``pause_every`` batches pile up on top of what the last pause
    # left (under one batch): without a reaper all 5,000 would stay active
    bound = (pause_every + 1) * batch_size
    rt = EmbeddedRuntime(SqliteStore(tmp_sqlite), idle_timeout=0.5, scan_interval=0.1)
    await rt.start()
    peak_actors = peak_turns = 0
    try:
        for batch in range(batches):
            await asyncio.gather(
                *(rt.invoke(f"many-{batch}-{i}", "Stats", {}) for i in range(batch_size))
            )
            peak_actors = max(peak_actors, rt.active_actors)
            peak_turns = max(peak_turns, len(rt._turns))
            if batch % pause_every == pause_every - 1:
                await _until(lambda: rt.active_actors < batch_size, 10.0)
        # the reaper forgets an actor, then drops its turn entry: wait for both
        await _until(lambda: rt.active_actors == 0 and not rt._turns, 10.0)
        gc.collect()
        assert rt.active_actors == 0
        assert len(rt._turns) == 0
        assert peak_actors <= bound, f"{peak_actors} actors active at once: reaper not keeping up"
        assert peak_turns <= bound, f"{peak_turns} turn entries at once: reaper not keeping up"
    finally:
        await rt.stop()


async def test_empty_queue_reads_write_nothing(tmp_sqlite: Path) -> None:
    """Queues are created on first use and cost nothing while empty."""
    import sqlite3

    rt = EmbeddedRuntime(SqliteStore(tmp_sqlite))
    await rt.start()
    try:
        await rt.invoke("ghost", "Stats", {})
        await rt.invoke("ghost", "Pop", {"depth": 10})
    finally:
        await rt.stop()
    rows = sqlite3.connect(tmp_sqlite).execute("SELECT count(*) FROM state").fetchone()[0]
    assert rows == 0


class StuckActor(QueueActor):
    """Stats on queue "stuck" takes a second: longer than the runtime's turn timeout."""

    finished = 0

    async def stats(self, request: dict) -> dict:
        if self.id.id == "stuck":
            await asyncio.sleep(1.0)
            StuckActor.finished += 1
        return await super().stats(request)


async def test_a_stuck_turn_answers_503_by_the_deadline_and_is_never_cut_short(
    tmp_sqlite: Path,
) -> None:
    """The caller of a stuck turn, and a caller queued behind it, get a 503 at the turn
    timeout; the turn itself runs to its end (cutting it would leave the cached state out
    of step with the store), and other actors answer meanwhile."""
    rt = EmbeddedRuntime(SqliteStore(tmp_sqlite), actor_class=StuckActor, turn_timeout=0.3)
    await rt.start()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = asyncio.ensure_future(rt.invoke("stuck", "Stats", {}))
        await asyncio.sleep(0.05)
        behind = asyncio.ensure_future(rt.invoke("stuck", "Stats", {}))
        assert "ok" in await rt.invoke("free", "Stats", {})
        assert loop.time() - started < 0.3, "another actor waited for the stuck one"
        for call, within in ((first, 0.3), (behind, 0.35)):
            with pytest.raises(StoreUnavailable, match="stuck"):
                await call
            assert loop.time() - started < within + 0.2
        assert StuckActor.finished == 0
        await _until(lambda: StuckActor.finished == 1, 2.0)
        assert StuckActor.finished == 1, "the stuck turn was cancelled, not finished"
        await asyncio.sleep(1.2)  # long enough for the one behind it, had it been let in
        assert StuckActor.finished == 1, "a call whose caller gave up ran anyway"
        turn = rt._turns.get("stuck")
        assert turn is None or not turn.lock.locked(), "the turn was never given back"
    finally:
        await rt.stop()


async def test_plain_pushes_leave_meta_behind_and_readers_catch_up(tmp_sqlite: Path) -> None:
    """A plain push into its tail segment writes that row alone: the stored meta lags,
    and a new activation (and a listing, which activates nothing) reads the rest from
    the segment, ids continuing past the caught-up ones."""
    store = SqliteStore(tmp_sqlite)
    rt = EmbeddedRuntime(store, idle_timeout=0.2, scan_interval=0.05)
    await rt.start()
    try:
        for n in range(3):
            await rt.invoke("lag", "Push", {"items": [{"item": {"n": n}, "priority": 1}]})
        meta = json.loads(await store.get(actor_key("pushpop", ACTOR_TYPE, "lag", META)) or b"")
        assert meta["pri"]["1"][:2] == [0, 1] and meta["next_id"] == 2  # the first push's
        listed = (await QueueLister(lambda: store, "pushpop").page()).queues
        assert [(q["queue_id"], q["depth"]) for q in listed] == [("lag", 3)]
        await _until(lambda: rt.active_actors == 0, 5.0)
        assert rt.active_actors == 0
        assert (await rt.invoke("lag", "Stats", {}))["ok"]["depth"] == 3
        pushed = await rt.invoke("lag", "Push", {"items": [{"item": {"n": 3}, "priority": 1}]})
        assert pushed["ok"]["ids"] == [format_id(4)]
        popped = await rt.invoke("lag", "Pop", {"depth": 10})
        assert [i["item"]["n"] for i in popped["ok"]["items"]] == [0, 1, 2, 3]
    finally:
        await rt.stop()


async def test_two_queues_with_transfers_to_each_other_do_not_wait_on_each_other(
    tmp_sqlite: Path,
) -> None:
    """A crash can leave queue a with a transfer to b pending and b with one to a (a dead
    letter and a redrive). a's next call delivers to b, inside a's turn; b's Receive must
    not deliver b's outbox back to a (a's turn is busy waiting for b): the call stalled
    until its deadline, every time (tests/integration/test_workers_crash.py met it)."""
    state: dict[str, dict[str, Any]] = {"a": {}, "b": {}}
    for qid, other in (("a", "b"), ("b", "a")):
        for step in ("push", "redrive"):
            st = QueueState(qid, 1_700_000_000.0, lambda: "L", Limits())
            op = st.push([({"from": qid}, 1)]) if step == "push" else st.redrive(other, 10)
            try:
                need = next(op)
                while True:
                    need = op.send({k: json.loads(json.dumps(state[qid].get(k))) for k in need})
            except StopIteration:
                pass
            apply_changes(state[qid], st.changes())
        assert state[qid][META]["out"], "the transfer is pending, as a crash leaves it"
    store = SqliteStore(tmp_sqlite)
    await store.open()
    await store.transact(Transaction(upserts=[
        (actor_key("pushpop", ACTOR_TYPE, qid, key), json_bytes(value))
        for qid, rows in state.items() for key, value in rows.items()
    ]))  # fmt: skip
    await store.close()
    rt = EmbeddedRuntime(SqliteStore(tmp_sqlite), turn_timeout=5.0)
    await rt.start()
    try:
        loop = asyncio.get_running_loop()
        for q in "ab":  # b's own call delivers what b's Receive left pending
            started = loop.time()
            await rt.invoke(q, "Stats", {})
            assert loop.time() - started < 2.0, f"{q}'s delivery waited for its own turn"
        await rt.invoke("a", "Stats", {})
        got = {q: (await rt.invoke(q, "Pop", {"depth": 10}))["ok"]["items"] for q in "ab"}
        assert {q: [i["item"] for i in items] for q, items in got.items()} == {
            "a": [{"from": "b"}], "b": [{"from": "a"}],
        }  # fmt: skip
    finally:
        await rt.stop()
