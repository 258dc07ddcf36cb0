"""The queue API calls a load-generating user makes: timed, judged, entered in the ledger.

Why every scenario goes through these: a number from S1 and one from S5 must mean the
same thing, so each request is timed the same way (from its scheduled send in the open
model), judged against docs/api.md the same way, and every acknowledged push or final pop
reaches the ledger that proves "no loss, no duplicate" at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
from locust.contrib.fasthttp import FastHttpSession

from load_tests.scenarios.api_client import Answer, Popped, _json, error_kind
from load_tests.scenarios.run_state import STATE
from load_tests.utils.metrics import QUEUE_TIME, tag

log = logging.getLogger("pushpop.load")


@dataclass
class Arrival:
    """One arrival: its first request is timed from ``scheduled`` (open model)."""

    scheduled: float | None = None

    def claim(self) -> float | None:
        s, self.scheduled = self.scheduled, None
        return s


class QueueApi:
    """Mixin for a Locust ``FastHttpUser``: the API calls, on its ``client``."""

    client: FastHttpSession

    def request(
        self,
        method: str,
        path: str,
        *,
        name: str,
        ctx: Arrival,
        body: Any = None,
        raw: bytes | None = None,
        judge: Callable[[int, Any, Any], str | None] | None = None,
        queue: str | None = None,
    ) -> Answer:
        """Send one request; ``judge(status, body, headers)`` returns a problem or ``None``.

        The default judge accepts 2xx and names anything else by :func:`error_kind`.
        """
        intended = ctx.claim()
        headers = {"Content-Type": "application/json"} if raw is not None else None
        try:
            with self.client.request(
                method,
                path,
                name=name,
                json=body,
                data=raw,
                headers=headers,
                catch_response=True,
            ) as resp:
                done = time.time()
                meta = resp.request_meta
                service_ms = float(meta["response_time"])
                meta["context"]["pushpop_service_ms"] = service_ms
                if intended is not None:
                    meta["response_time"] = max(service_ms, (done - intended) * 1000.0)
                status = int(resp.status_code or 0)
                parsed = _json(resp) if status else None
                if judge is not None:
                    problem = judge(status, parsed, resp.headers)
                elif 200 <= status < 300:
                    problem = None
                else:
                    problem = error_kind(status, parsed, resp.headers, getattr(resp, "error", None))
                if problem is None:
                    resp.success()
                else:
                    resp.failure(problem)
                return Answer(status, parsed, problem)
        except gevent.GreenletExit:
            if queue:
                STATE.ledger_buffer.uncertain(queue, f"{method} {name} killed in flight")
            raise

    def push(
        self, queue: str, entries: list[dict[str, Any]], ctx: Arrival, name: str = "push"
    ) -> list[str] | None:
        """Push ``entries`` (single form for one item, bulk form otherwise); ids on success."""
        body: dict[str, Any] = (
            {"item": entries[0]["item"], "priority": entries[0]["priority"]}
            if len(entries) == 1
            else {"items": entries}
        )

        def judge(status: int, data: Any, headers: Any) -> str | None:
            if status != 200:
                return error_kind(status, data, headers)
            ids = data.get("ids") if isinstance(data, dict) else None
            if (
                not isinstance(ids, list)
                or len(ids) != len(entries)
                or data.get("pushed") != len(entries)
            ):
                return "contract: push answer without one id per item"
            return None

        answer = self.request(
            "POST", f"/queue/{queue}/push", name=name, ctx=ctx, body=body, judge=judge, queue=queue
        )
        if answer.ok:
            ids = [str(i) for i in answer.body["ids"]]
            STATE.ledger_buffer.pushed(queue, ids)
            STATE.recorder.count("items_pushed", len(ids))
            return ids
        if answer.status == 0 or (answer.status >= 500 and answer.status != 503):
            STATE.ledger_buffer.uncertain(queue, "push without a definite answer")
        return None

    def pop(
        self,
        queue: str,
        depth: int,
        ctx: Arrival,
        *,
        ttl: int | None = None,
        name: str | None = None,
        wait: int | None = None,
    ) -> Popped | None:
        """Pop up to ``depth`` items (with a lock of ``ttl`` seconds when given; a long poll
        of up to ``wait`` seconds when given)."""
        path = f"/queue/{queue}/pop?depth={depth}"
        if ttl is not None:
            path += f"&require_ack=true&ttl_seconds={ttl}"
        if wait is not None:
            path += f"&wait_seconds={wait}"
        name = name or ("pop+ack" if ttl is not None else "pop")

        def judge(status: int, data: Any, headers: Any) -> str | None:
            if status != 200:
                return error_kind(status, data, headers)
            items = data.get("items") if isinstance(data, dict) else None
            if not isinstance(items, list) or len(items) > depth:
                return "contract: pop answer without an item list of at most depth"
            for it in items:
                if (
                    not isinstance(it, dict)
                    or not {"id", "item", "priority", "enqueued_at"} <= it.keys()
                ):
                    return "contract: popped item lacks id/item/priority/enqueued_at"
            order = [(int(i["priority"]), len(str(i["id"])), str(i["id"])) for i in items]
            if order != sorted(order):
                return "contract: pop not in priority-then-FIFO order"
            if ttl is not None and items and not data.get("lock_id"):
                return "contract: pop with require_ack returned items without lock_id"
            return None

        answer = self.request("POST", path, name=name, ctx=ctx, judge=judge, queue=queue)
        if not answer.ok:
            if answer.status == 0 or (answer.status >= 500 and answer.status != 503):
                STATE.ledger_buffer.uncertain(queue, "pop without a definite answer")
            return None
        items = answer.body["items"]
        now = time.time()
        for it in items:
            STATE.recorder.record(
                tag(QUEUE_TIME, name), max(0.0, now - float(it["enqueued_at"])) * 1e6, now
            )
        STATE.recorder.count("items_popped", len(items))
        if not items:
            STATE.recorder.count("empty_pops")
        popped = Popped(items=items, lock_id=answer.body.get("lock_id"))
        if ttl is None:
            STATE.ledger_buffer.final(queue, popped.ids)
        return popped

    def end_lock(
        self, queue: str, popped: Popped, ctx: Arrival, verb: str, answer_key: str,
        extra: dict[str, Any] | None = None,
    ) -> Answer:  # fmt: skip
        """``POST /queue/{queue}/{verb}`` on a lock; a 410 (it expired first) is no failure:
        the items are back in the queue."""

        def judge(status: int, data: Any, headers: Any) -> str | None:
            if status == 200:
                ok = isinstance(data, dict) and answer_key in data
                return None if ok else f"contract: {verb}"
            if status == 410 and isinstance(data, dict):
                return None  # the lock expired first: not a failure, the items come back
            return error_kind(status, data, headers)

        return self.request(
            "POST",
            f"/queue/{queue}/{verb}",
            name=verb,
            ctx=ctx,
            body={"lock_id": popped.lock_id, **(extra or {})},
            judge=judge,
            queue=queue,
        )

    def acknowledge(self, queue: str, popped: Popped, ctx: Arrival) -> bool:
        """Acknowledge a lock; a 410 (it expired first) means its items are back in the queue."""
        answer = self.end_lock(queue, popped, ctx, "acknowledge", "acknowledged")
        if answer.ok and answer.status == 200:
            STATE.ledger_buffer.final(queue, popped.ids)
            return True
        STATE.ledger_buffer.abandoned(queue, popped.ids)
        if answer.status == 410:
            STATE.recorder.count("acks_too_late")
        return False

    def release(
        self, queue: str, popped: Popped, ctx: Arrival, *, delay: int = 0, gone: bool = False
    ) -> bool:
        """Give a lock's items back (after ``delay`` seconds). ``gone``: the caller knows
        they leave the queue with this release (``max_deliveries`` reached: dead-lettered),
        so the ledger counts them as delivered here; otherwise they must come back."""
        answer = self.end_lock(queue, popped, ctx, "release", "released", {"delay_seconds": delay})
        released = answer.ok and answer.status == 200
        if released and gone:
            STATE.ledger_buffer.final(queue, popped.ids)
        else:
            STATE.ledger_buffer.abandoned(queue, popped.ids)
        return released

    def abandon(self, queue: str, popped: Popped) -> None:
        """Leave a lock to expire: its items must come back (the ledger checks it)."""
        STATE.ledger_buffer.abandoned(queue, popped.ids)
        STATE.recorder.count("locks_abandoned")

    def expect_rejection(
        self,
        method: str,
        path: str,
        *,
        name: str,
        ctx: Arrival,
        status: int,
        code: str,
        mentions: str,
        body: Any = None,
        raw: bytes | None = None,
    ) -> bool:
        """An invalid request counts as a success only when it is refused as docs/api.md says:
        the status, the error code, and a message naming the offending field."""

        def judge(got: int, data: Any, headers: Any) -> str | None:
            err = data.get("error") if isinstance(data, dict) else None
            got_code = err.get("code") if isinstance(err, dict) else None
            message = str(err.get("message", "")) if isinstance(err, dict) else ""
            if got == status and got_code == code and mentions in message.lower():
                return None
            return f"expected {status} {code} naming '{mentions}', got {got} {got_code}"

        answer = self.request(method, path, name=name, ctx=ctx, body=body, raw=raw, judge=judge)
        STATE.recorder.count("rejections_ok" if answer.ok else "rejections_wrong")
        return answer.ok

    def warn_dry(self, queue: str) -> None:
        """A prepopulated queue answered empty: later pops measure an empty queue."""
        STATE.recorder.count("dry_pops")
        if queue not in STATE.dry_warned:
            STATE.dry_warned.add(queue)
            log.warning(
                "queue %s ran dry %.1fs into the load; pops from now on measure an empty queue",
                queue,
                STATE.run.elapsed(),
            )


__all__ = ["Arrival", "QueueApi"]
