"""Group commit: saves of different actors that wait together are written together.

Every commit costs a round trip, a statement's parse and plan and a WAL flush; saves that
arrive while ``max_in_flight`` commits run share the next one (no timer: nothing waits on
purpose), written by the store's ``write_many`` as one atomic unit. Each caller keeps the
guarantees it has without batching (deadline, failure, 2xx means committed):
docs/how-it-works.md, "Group commit's guarantees".
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from actor_service.errors import StoreUnavailable
from actor_service.stores.base import Transaction, call_deadline

WriteMany = Callable[[Sequence[Transaction]], Awaitable[None]]


@dataclass(slots=True)
class _Save:
    tx: Transaction
    deadline: float | None
    future: asyncio.Future[None]


def merge(txs: Sequence[Transaction]) -> tuple[dict[str, bytes], list[str]]:
    """The net effect of ``txs`` applied in order: (upserts by key, deletes).

    Within one transaction a delete beats an upsert of the same key (the stores'
    rule since before batching); across transactions the later one wins. Keys of
    concurrent saves are disjoint in practice (one call at a time per actor, and an
    actor's keys carry its id), so this only matters if that ever stops being true.
    """
    upserts: dict[str, bytes] = {}
    deletes: dict[str, None] = {}  # ordered set
    for tx in txs:
        mine = dict(tx.upserts)
        for key in tx.deletes:
            mine.pop(key, None)
            upserts.pop(key, None)
            deletes[key] = None
        for key, value in mine.items():
            deletes.pop(key, None)
            upserts[key] = value
    return upserts, list(deletes)


class GroupCommitter:
    """Batches concurrent :meth:`transact` calls into ``write_many`` calls (see module doc).

    ``write_many`` must apply all its transactions atomically or none, check the
    caller's deadline through :func:`~.base.time_left` like a single save does, and
    raise :class:`StoreUnavailable` for failures that are nobody's fault in particular.
    """

    def __init__(
        self,
        write_many: WriteMany,
        *,
        max_in_flight: int = 2,
        patience: float = 5.0,
        max_rows: int = 4000,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.write_many = write_many
        self.max_in_flight = max_in_flight
        self.patience = patience
        # a batch of many big saves stays one statement of bounded size (PostgreSQL
        # allows 65535 parameters per statement)
        self.max_rows = max_rows
        self._queue: deque[_Save] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0  # commits running: batch tasks and idle callers' own
        # statistics, for benchmarks and tests
        self.batches = 0
        self.saves = 0

    async def transact(self, tx: Transaction) -> None:
        """Commit ``tx`` (with whatever else is waiting); returns once it is committed."""
        if not tx:
            return
        deadline = call_deadline.get()
        if deadline is not None and deadline <= time.monotonic():
            raise StoreUnavailable("the call's deadline passed before the state store answered")
        if self._in_flight < self.max_in_flight and not self._queue:
            # idle: commit at once in the caller's own task (no hand-over to pay for);
            # the slot is held, so saves arriving meanwhile queue for the next batch
            self._in_flight += 1
            try:
                await self.write_many((tx,))
            finally:
                self._in_flight -= 1
                self._start()
            self.batches += 1
            self.saves += 1
            return
        save = _Save(tx, deadline, asyncio.get_running_loop().create_future())
        self._queue.append(save)
        self._start()
        # a caller cancelled while queued cancels its future: the batch skips it
        await save.future

    def _start(self) -> None:
        while self._queue and self._in_flight < self.max_in_flight:
            self._in_flight += 1
            task = asyncio.create_task(self._commit_next(), name="pushpop-group-commit")
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._in_flight -= 1
        self._start()

    def _take(self) -> list[_Save]:
        """Everything queued (up to ``max_rows``), taken when the commit starts, so
        that saves which arrived since it was scheduled ride along."""
        batch: list[_Save] = []
        rows = 0
        while self._queue:
            size = len(self._queue[0].tx.upserts) + len(self._queue[0].tx.deletes)
            if batch and rows + size > self.max_rows:
                break
            save = self._queue.popleft()
            if not save.future.done():  # its caller was cancelled
                batch.append(save)
                rows += size
        return batch

    async def _commit_next(self) -> None:
        batch = self._take()
        now = time.monotonic()
        relaxed: list[_Save] = []
        urgent: list[_Save] = []
        for save in batch:
            if save.deadline is None or save.deadline - now >= self.patience:
                relaxed.append(save)
            elif save.deadline > now:
                urgent.append(save)
            else:
                save.future.set_exception(
                    StoreUnavailable("the call's deadline passed while its save was queued")
                )
        groups = [g for g in (relaxed, urgent) if g]
        if len(groups) == 1:
            await self._commit(groups[0])
        elif groups:
            await asyncio.gather(*(self._commit(g) for g in groups))

    async def _commit(self, group: list[_Save]) -> None:
        deadlines = [s.deadline for s in group if s.deadline is not None]
        # this task's own context: the batch is bounded by its earliest deadline
        call_deadline.set(min(deadlines) if deadlines else None)
        try:
            await self.write_many([s.tx for s in group])
        except StoreUnavailable as exc:
            for save in group:
                _fail(save, StoreUnavailable(exc.message, retry_after=exc.retry_after or 1), exc)
            return
        except asyncio.CancelledError:
            for save in group:
                _fail(save, StoreUnavailable("the store closed while the save was queued"), None)
            raise
        except Exception as exc:
            if len(group) == 1:
                _fail(group[0], exc, None)
                return
            # nothing was committed: let each save succeed or fail on its own
            await asyncio.gather(*(self._commit([save]) for save in group))
            return
        self.batches += 1
        self.saves += len(group)
        for save in group:
            if not save.future.done():
                save.future.set_result(None)

    async def close(self) -> None:
        """Let the commits in flight finish (their callers are owed an answer)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _fail(save: _Save, exc: BaseException, cause: BaseException | None) -> None:
    if cause is not None:
        exc.__cause__ = cause
    if not save.future.done():
        save.future.set_exception(exc)


__all__ = ["GroupCommitter", "merge"]
