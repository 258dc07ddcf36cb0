"""api.coalescer: the invoker wrapper the app is built with (or not), and settle: a hot
queue's closed-loop clients end up in one batch, not two groups that alternate. The
settle test is pure logic, the actor call simulated by event-loop iterations (the real
thing, with servers, is tests/integration/test_coalescing.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from actor_service.errors import StoreUnavailable
from actor_service.stores.claim import SqliteClaim
from api.app import build_invoker
from api.coalescer import Coalescer, CoalescingInvoker
from api.dapr.invoker import DaprInvoker
from api.invoker import EmbeddedInvoker
from api.settings import Settings

CLIENTS, ROUNDS = 16, 30


async def closed_loop(settle: int) -> tuple[list[int], dict[int, list[int]]]:
    """``CLIENTS`` clients push to one queue, each its next request two loop iterations
    after its reply (its network); a turn takes five. The sizes of the calls the actor
    saw, and what each client was answered, in order."""
    calls: list[int] = []

    async def send(actor: str, method: str, payload: dict[str, Any], deadline: float) -> Any:
        requests = payload["requests"] if method == "Batch" else [payload]
        calls.append(len(requests))
        for _ in range(5):
            await asyncio.sleep(0)
        replies = [{"ok": {"n": r["n"]}} for r in requests]
        return {"ok": {"replies": replies}} if method == "Batch" else replies[0]

    coalescer = Coalescer(send, settle=settle)
    answered: dict[int, list[int]] = {c: [] for c in range(CLIENTS)}

    async def client(c: int) -> None:
        for n in range(ROUNDS):
            reply = await coalescer.call("q", "Push", {"n": c * 1000 + n}, time.monotonic() + 30)
            answered[c].append(reply["ok"]["n"])
            for _ in range(2):
                await asyncio.sleep(0)

    await asyncio.gather(*(client(c) for c in range(CLIENTS)))
    await coalescer.close()
    return calls, answered


@pytest.mark.parametrize("settle", [0, 6])
def test_each_client_gets_its_own_answers_in_order(settle: int) -> None:
    calls, answered = asyncio.run(closed_loop(settle))
    assert sum(calls) == CLIENTS * ROUNDS
    assert answered == {c: [c * 1000 + n for n in range(ROUNDS)] for c in range(CLIENTS)}


def test_settling_merges_the_two_alternating_groups() -> None:
    """Without settle the clients split into the one that came in during a batch and the
    fifteen that batch answered: two turns per round. With it, one turn per round."""
    unsettled, _ = asyncio.run(closed_loop(0))
    settled, _ = asyncio.run(closed_loop(6))
    assert len(unsettled) >= 1.8 * ROUNDS, unsettled[:10]
    assert len(settled) <= 1.2 * ROUNDS, settled[:10]
    assert max(settled) == CLIENTS


def test_the_app_is_built_with_the_coalescer_in_front_of_either_runtime(tmp_path: Path) -> None:
    """``PUSHPOP_COALESCE`` picks the wrapper; the Dapr invoker settles, the embedded one
    does not; the wrapper reads its inner invoker's claim and attributes through."""
    embedded = build_invoker(Settings(store="memory"))
    assert isinstance(embedded, CoalescingInvoker)
    assert isinstance(embedded.inner, EmbeddedInvoker) and embedded.coalescer.settle == 0
    assert embedded.runtime is embedded.inner.runtime  # what the queue lister reads
    embedded.claim = claim = SqliteClaim(tmp_path / "q.sqlite3", "exclusive")  # not held
    assert embedded.inner.claim is claim
    with pytest.raises(StoreUnavailable):  # the wrapper refuses a call as the inner would
        asyncio.run(embedded.call("q", "Stats", {}))
    dapr = build_invoker(Settings(store="memory", runtime="dapr"))
    assert isinstance(dapr, CoalescingInvoker) and isinstance(dapr.inner, DaprInvoker)
    assert dapr.coalescer.settle == DaprInvoker.settle > 0
    plain = build_invoker(Settings(store="memory", coalesce=False))
    assert isinstance(plain, EmbeddedInvoker)
    assert build_invoker(Settings(store="memory"), inner=embedded) is embedded  # not twice
