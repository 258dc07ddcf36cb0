"""``QueueActor``: one Dapr virtual actor per queue id, driving the pure state machine.

The same class runs under ``daprd`` and under the embedded runtime, through the SDK's
state manager and ``runtime_ctx.dapr_client`` (the dead-letter hand-over). Every method
does one :meth:`save_state` and answers plain JSON, ``{"ok": ...}`` or ``{"error": ...}``:
the SDK turns exceptions raised in an actor into opaque HTTP 500s.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from dapr.actor import Actor, ActorId, ActorInterface, actormethod

from actor_service.actor_ids import actor_id_for, queue_id_of
from actor_service.errors import InvalidRequest, PushpopError, StateCorrupt, StoreUnavailable
from actor_service.queue_layout import DELETED, META, Limits, Op, dead_letter_queue
from actor_service.queue_repair import repair as repair_queue
from actor_service.queue_state import QueueState
from actor_service.sdk_compat import evict_cached_state, is_cached

log = logging.getLogger("pushpop.actor")

ACTOR_TYPE = "QueueActor"

Reply = dict[str, Any]
# how a request becomes a state-machine operation, and its result a reply
Plan = tuple[Callable[[QueueState], Op], Callable[[Any], Any]]


class QueueActorInterface(ActorInterface):
    """The actor's methods; each takes and returns a JSON object."""

    @actormethod(name="Push")
    async def push(self, request: dict) -> dict: ...

    @actormethod(name="Pop")
    async def pop(self, request: dict) -> dict: ...

    @actormethod(name="PopWithAck")
    async def pop_with_ack(self, request: dict) -> dict: ...

    @actormethod(name="Acknowledge")
    async def acknowledge(self, request: dict) -> dict: ...

    @actormethod(name="ExtendLock")
    async def extend_lock(self, request: dict) -> dict: ...

    @actormethod(name="Release")
    async def release(self, request: dict) -> dict: ...

    @actormethod(name="DeadLetter")
    async def dead_letter(self, request: dict) -> dict: ...

    @actormethod(name="Stats")
    async def stats(self, request: dict) -> dict: ...

    @actormethod(name="Purge")
    async def purge(self, request: dict) -> dict: ...

    @actormethod(name="Receive")
    async def receive(self, request: dict) -> dict: ...

    @actormethod(name="Repair")
    async def repair(self, request: dict) -> dict: ...

    @actormethod(name="Batch")
    async def batch(self, request: dict) -> dict: ...

    @actormethod(name="GetSettings")
    async def get_settings(self, request: dict) -> dict: ...

    @actormethod(name="PutSettings")
    async def put_settings(self, request: dict) -> dict: ...

    @actormethod(name="Redrive")
    async def redrive(self, request: dict) -> dict: ...

    @actormethod(name="Peek")
    async def peek(self, request: dict) -> dict: ...


def store_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the state store (or the sidecar in front of it) failed"."""
    errors: list[type[BaseException]] = [StoreUnavailable, ConnectionError, TimeoutError]
    try:
        from dapr.clients.exceptions import DaprInternalError

        errors.append(DaprInternalError)
    except ImportError:  # pragma: no cover
        pass
    try:
        import aiohttp

        errors.append(aiohttp.ClientError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


_STORE_ERRORS = store_errors()


@dataclass
class TurnStats:
    """Where an actor turn's time goes, summed over all turns in this process: reading
    state (a cache hit costs nothing; a miss is a store read, or a call to daprd's state
    API), and saving it (one store transaction, with group commit's wait; or daprd's).
    Plain counters on the hot path; ``/metrics`` reads them at scrape time, and the
    throughput benchmark turns them into a per-hop breakdown of a request's latency."""

    turns: int = 0
    load_seconds: float = 0.0
    save_seconds: float = 0.0


class QueueActor(Actor, QueueActorInterface):
    """A priority queue with locks; its state is the key layout of :mod:`queue_state`.

    ``limits`` and ``clock`` are class-wide settings the host sets at start-up (the
    SDK builds actors itself, so there is no constructor to pass them through).
    """

    limits: ClassVar[Limits] = Limits()
    clock: ClassVar[Callable[[], float]] = time.time
    turn_stats: ClassVar[TurnStats] = TurnStats()

    def __init__(self, ctx: Any, actor_id: ActorId) -> None:
        super().__init__(ctx, actor_id)
        # what this activation, the queue's only writer, has read past each priority's
        # tail (see QueueState): forgotten with the cache, whenever a turn fails
        self._tails_checked: set[int] = set()

    # ------------------------------------------------------------------ plumbing
    def _state(self) -> QueueState:
        return QueueState(
            queue_id_of(self.id.id),
            type(self).clock(),
            lambda: uuid.uuid4().hex,
            self.limits,
            self._tails_checked,
            # meta cached is meta as a turn computed it; read from the store (after an
            # activation, a failed turn, the SDK's own clearing), it may lag: queue_tails
            not is_cached(self._state_manager, META),
        )

    async def _forget(self) -> None:
        """Drop everything this activation knows beyond the store: the next turn reads."""
        self._tails_checked.clear()
        await self._state_manager.clear_cache()

    async def _drive(self, st: QueueState, op: Op) -> Any:
        """Run a state-machine operation, loading the keys it asks for, then save once.

        A value that does not decode, or that trips the state machine up in a way its own
        checks did not foresee (a ``KeyError`` deep in a malformed row), is reported as
        :class:`StateCorrupt` for this queue alone rather than as an anonymous 500.
        """
        sm = self._state_manager
        stats = self.turn_stats
        key = ""
        try:
            need = next(op)
            while True:
                values = {}
                started = time.perf_counter()
                for key in need:
                    _, values[key] = await sm.try_get_state(key)
                stats.load_seconds += time.perf_counter() - started
                key = ""
                need = op.send(values)
        except StopIteration as stop:
            result = stop.value
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            await self._forget()
            where = f"row {key!r} does not decode" if key else "a row is malformed"
            raise StateCorrupt(
                f"queue {st.queue_id!r} has inconsistent state: {where} "
                f"({exc.__class__.__name__}); other queues are unaffected",
                keys=[key] if key else sorted(st._values),
            ) from exc
        except BaseException:
            # the operation may have mutated cached values in place: forget them
            await self._forget()
            raise
        try:
            for key, value in st.changes().items():
                if value is DELETED:
                    await sm.try_remove_state(key)
                else:
                    await sm.set_state(key, value)
            started = time.perf_counter()
            await sm.save_state()
            stats.save_seconds += time.perf_counter() - started
            stats.turns += 1
        except BaseException:
            await self._forget()
            raise
        self._evict_cold(st)
        return result

    def _evict_cold(self, st: QueueState) -> None:
        """Keep only meta and the queue ends cached, so memory per actor stays bounded.

        The public API has no way to drop single keys from the cache: see sdk_compat.
        """
        evict_cached_state(self._state_manager, st.hot_keys() if st._values.get("meta") else ())

    async def _call(
        self, make: Callable[[QueueState], Op], render: Callable[[Any], Any], flush: bool = True
    ) -> Reply:
        """Run one operation in this turn; then, unless ``flush`` is off, deliver the
        outbox (other queues' ``Receive`` turns, waited for in this one)."""
        st = self._state()
        try:
            result = await self._drive(st, make(st))
        except StateCorrupt as err:
            # one line, greppable: the queue and the rows an operator has to look at
            log.error(
                "STATE_CORRUPT queue=%s actor=%s keys=%s: %s",
                st.queue_id, self.id.id, ",".join(err.keys), err.message,
            )  # fmt: skip
            return {"error": err.to_dict()}
        except PushpopError as err:
            return {"error": err.to_dict()}
        except _STORE_ERRORS as exc:
            log.warning("state store failed for queue %s: %s", self.id.id, exc)
            return {"error": StoreUnavailable(f"state store failed: {exc}").to_dict()}
        if flush and st.meta.get("out"):
            try:
                await self._flush_outbox()
            except PushpopError as err:  # the call itself committed; delivery is retried later
                log.error("dead-letter outbox of queue %s: %s", st.queue_id, err.message)
        return {"ok": render(result)}

    # ------------------------------------------------------------------ lifecycle
    async def _flush_outbox(self) -> None:
        """Deliver pending transfers oldest first; confirm those the target took.

        Delivery is idempotent on the receiving side (sequence numbers), so a retry
        after a crash between delivery and confirmation cannot duplicate items. It is
        retried by the next call to this queue whose meta shows pending transfers (no
        extra read at activation, so activation stays one key read).
        """
        st = self._state()
        pending = await self._drive(st, st.pending_transfers())
        delivered: list[int] = []
        client = self.runtime_ctx.dapr_client
        for t in pending:
            body = json.dumps({"source": self.id.id, "seq": t.seq, "entries": t.entries}).encode()
            try:
                raw = await client.invoke_method(
                    ACTOR_TYPE, actor_id_for(t.target), "Receive", body
                )
            except Exception as exc:
                log.warning("dead-letter delivery %s->%s failed: %s", self.id.id, t.target, exc)
                break
            reply = json.loads(raw) if raw else {}
            if "error" in reply:
                log.warning(
                    "dead-letter delivery %s->%s refused: %s", self.id.id, t.target, reply["error"]
                )
                break
            delivered.append(t.seq)
        if delivered:
            st = self._state()
            await self._drive(st, st.confirm(delivered))

    # ------------------------------------------------------------------ methods
    # each coalescible method as (operation maker, result renderer): used alone by the
    # method itself, or many at once by Batch
    @staticmethod
    def _push_plan(request: dict) -> Plan:
        items = [
            (e["item"], int(e["priority"]), int(e.get("delay_seconds", 0)))
            for e in request["items"]
        ]
        key = request.get("idempotency_key")
        fingerprint = str(request.get("fingerprint", ""))

        def render(r: Any) -> dict:
            out = {"pushed": len(r[0]), "ids": r[0], "depth": r[1]}
            if r[2]:
                out["replayed"] = True
            return out

        return lambda st: st.push(items, key, fingerprint), render

    @staticmethod
    def _popped(st: QueueState, items: list[Any]) -> dict[str, Any]:
        """A pop's answer; an empty one says when the queue may next have an item by
        itself (``next_at``, for the gateway's long-poll waiters; never sent to clients)."""
        out: dict[str, Any] = {"items": [i.to_dict() for i in items]}
        if not items:
            next_at = st.next_at()
            if next_at is not None:
                out["next_at"] = next_at
        return out

    @classmethod
    def _pop_plan(cls, request: dict) -> Plan:
        """A pop, plain or with ack (``ttl_seconds``), keyed or not (``idempotency_key``:
        a retry answers the same items and lock, ``"replayed": true``)."""
        depth = int(request.get("depth", 1))
        ttl = float(request["ttl_seconds"]) if "ttl_seconds" in request else None
        key = request.get("idempotency_key")
        st_of: list[QueueState] = []

        def make(st: QueueState) -> Op:
            st_of.append(st)
            if key is None:
                return st.pop(depth, ttl)
            return st.pop_keyed(depth, ttl, key, str(request.get("fingerprint", "")))

        def render(r: Any) -> dict:
            out = cls._popped(st_of[-1], r[0])
            if r[1] is not None:
                out["lock_id"], out["lock_expires_at"] = r[1]
            if len(r) > 2 and r[2]:
                out["replayed"] = True
            return out

        return make, render

    async def push(self, request: dict) -> dict:
        return await self._call(*self._push_plan(request))

    async def pop(self, request: dict) -> dict:
        return await self._call(*self._pop_plan(request))

    async def batch(self, request: dict) -> dict:
        """Several pushes, or several plain pops, that the gateway coalesced while this
        queue was busy: one state-machine pass and one save for all of them, one reply
        each (``{"ok": ...}`` or ``{"error": ...}``), in the order they arrived.

        A request the batch cannot even read answers ``INVALID_REQUEST`` on its own; a
        limit refusing one request (``QUEUE_FULL``) does not fail the others.
        """
        plan_of = {"Push": self._push_plan, "Pop": self._pop_plan}.get(request.get("method", ""))
        if plan_of is None or not isinstance(request.get("requests"), list):
            err = InvalidRequest("Batch takes a method (Push or Pop) and a list of requests")
            return {"error": err.to_dict()}
        plans: list[Plan | PushpopError] = []
        for one in request["requests"]:
            try:
                plans.append(plan_of(one))
            except (KeyError, TypeError, ValueError) as exc:
                plans.append(InvalidRequest(f"malformed request in a batch: {exc!r}"))
        runnable = [p for p in plans if not isinstance(p, PushpopError)]

        def render(results: list[Any]) -> dict:
            done = iter(results)
            replies: list[Reply] = []
            for plan in plans:
                if isinstance(plan, PushpopError):
                    replies.append({"error": plan.to_dict()})
                    continue
                result = next(done)
                if isinstance(result, PushpopError):
                    replies.append({"error": result.to_dict()})
                else:
                    replies.append({"ok": plan[1](result)})
            return {"replies": replies}

        return await self._call(
            lambda st: st.batch([functools.partial(make, st) for make, _ in runnable]), render
        )

    async def pop_with_ack(self, request: dict) -> dict:
        if "ttl_seconds" not in request:
            return {"error": InvalidRequest("PopWithAck takes ttl_seconds").to_dict()}
        return await self._call(*self._pop_plan(request))

    async def acknowledge(self, request: dict) -> dict:
        return await self._call(
            lambda st: st.acknowledge(request["lock_id"]), lambda n: {"acknowledged": n}
        )

    async def extend_lock(self, request: dict) -> dict:
        return await self._call(
            lambda st: st.extend(request["lock_id"], float(request["additional_ttl_seconds"])),
            lambda exp: {"lock_id": request["lock_id"], "lock_expires_at": exp},
        )

    async def release(self, request: dict) -> dict:
        delay = float(request.get("delay_seconds", 0))
        return await self._call(
            lambda st: st.release(request["lock_id"], delay), lambda n: {"released": n}
        )

    async def dead_letter(self, request: dict) -> dict:
        return await self._call(
            lambda st: st.dead_letter(request["lock_id"]),
            lambda r: {"dead_lettered": r[0], "dead_letter_queue": r[1]},
        )

    async def get_settings(self, request: dict) -> dict:
        return await self._call(lambda st: st.get_settings(), lambda r: r)

    async def put_settings(self, request: dict) -> dict:
        """Admin: the fields given (already validated by the gateway); ``None`` resets."""
        return await self._call(lambda st: st.put_settings(request), lambda r: r)

    async def redrive(self, request: dict) -> dict:
        """Admin: move waiting items to another queue through the outbox (crash-safe)."""
        target = str(request["to"])
        return await self._call(
            lambda st: st.redrive(target, int(request.get("limit", 10_000))),
            lambda r: {"moved": r[0], "to": target, "remaining": r[1]},
        )

    async def peek(self, request: dict) -> dict:
        return await self._call(
            lambda st: st.peek(int(request.get("limit", 10))),
            lambda r: {"items": [i.to_dict() for i in r]},
        )

    async def stats(self, request: dict) -> dict:
        return await self._call(lambda st: st.stats(), lambda r: r)

    async def purge(self, request: dict) -> dict:
        return await self._call(lambda st: st.purge(), lambda n: {"purged": n})

    async def repair(self, request: dict) -> dict:
        """Admin: make a corrupted queue consistent, keeping what can be read (see
        :func:`~actor_service.queue_repair.repair`); logged, as it decides that missing
        rows are gone."""
        reply = await self._call(repair_queue, lambda r: r)
        # rows it could not reach (past a gap) may lie past the new tails: read again
        self._tails_checked.clear()
        if "ok" in reply and reply["ok"]["repaired"]:
            log.warning("queue %s repaired by an admin: %s", self.id.id, reply["ok"])
        return reply

    async def receive(self, request: dict) -> dict:
        """Internal: apply a dead-letter transfer from another queue's actor.

        It never delivers this queue's own outbox: the sender waits for it in its turn,
        so two queues with transfers to each other (a dead letter and a redrive, both
        left pending by a crash) would each wait for the other's turn until the deadline,
        on every call. This queue's next call of its own delivers them."""
        source = request["source"]
        return await self._call(
            lambda st: st.receive(
                source, int(request["seq"]), request["entries"], queue_id_of(source)
            ),
            lambda n: {"received": n},
            flush=False,
        )


__all__ = ["ACTOR_TYPE", "QueueActor", "QueueActorInterface", "dead_letter_queue"]
