"""Listing queues from the state store: ``GET /queues`` and the per-queue gauges.

No actor is activated: each queue's ``meta`` row says what a listing shows
(:func:`~actor_service.queue_layout.summarize`), read by actor id from an index, so a
queue is listed as soon as its push has answered, in either runtime. Empty queues are
skipped, and a page scans at most :data:`SCAN_BUDGET` rows, answering a short page with a
``next`` cursor rather than scanning the whole table.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actor_service.actor import ACTOR_TYPE
from actor_service.actor_ids import actor_id_for, queue_id_of
from actor_service.queue_layout import LEGACY_SEGMENT_SIZE, summarize
from actor_service.queue_tails import catch_up, end_keys
from actor_service.stores.base import StateStore, actor_key

log = logging.getLogger("pushpop.queues")

# meta rows read per store call, and at most per page (or 10 pages' worth)
BATCH = 200
SCAN_BUDGET = 2000
# queues per page of the gauges' full listing: fewer round trips, and a page's parsing is
# the longest the event loop is held (its cost: docs/benchmarks.md)
SCAN_ALL_PAGE = 250
# the two queue ids whose actor ids are escaped ("~." and "~..": they sort last as actor
# ids but first-ish as queue ids, so they are read apart and merged in)
_DOT_QUEUES = (".", "..")
_ESCAPED = "~"


def holds_something(summary: dict[str, Any]) -> bool:
    return bool(summary["depth"] or summary["in_flight"] or summary["delayed"] or summary["locks"])


def _meta(queue_id: str, raw: bytes, now: float) -> dict[str, Any] | None:
    """A queue's stored meta if the queue holds something, or ``None`` (also when meta
    is not an object: ``GET /queue/{id}`` says what is wrong with such a queue). A
    lagging tail (queue_tails) changes how much it holds, never whether."""
    try:
        meta = json.loads(raw)
        if holds_something(summarize(meta, now)):
            return meta
    except (ValueError, TypeError, KeyError, AttributeError):
        log.warning("queue %r: meta row unreadable, not listed", queue_id)
    return None


@dataclass
class Page:
    queues: list[dict[str, Any]]
    next: str | None


class QueueLister:
    """Pages of non-empty queues in ``queue_id`` order, read from ``store``."""

    def __init__(
        self,
        store: Callable[[], StateStore],
        app_id: str,
        actor_type: str = ACTOR_TYPE,
        legacy_segment_size: int = LEGACY_SEGMENT_SIZE,
    ) -> None:
        self._store = store
        self.app_id = app_id
        self.actor_type = actor_type
        self.legacy_segment_size = legacy_segment_size

    async def close(self) -> None:
        """Release what the lister opened itself (nothing, unless it has its own store)."""

    async def _read(self, prefix: str, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        store = self._store()
        return await store.list_metas(self.app_id, self.actor_type, prefix, after, limit)

    async def _entries(
        self, metas: list[tuple[str, str, dict[str, Any]]], now: float
    ) -> list[dict[str, Any]]:
        """The listing entries of ``(queue_id, actor_id, meta)``: each meta caught up with
        its priorities' end segments (queue_tails), read in one go."""
        wanted: dict[str, str] = {}  # store key -> segment key, per queue below
        ends: list[tuple[int, dict[str, str]]] = []  # segment size, that queue's keys
        for _, actor_id, meta in metas:
            s = meta.get("S", self.legacy_segment_size)
            try:
                keys = end_keys(meta, s)
            except (TypeError, KeyError, AttributeError, ValueError, ZeroDivisionError):
                keys = []  # malformed: summarized as stored
            full = {actor_key(self.app_id, self.actor_type, actor_id, k): k for k in keys}
            wanted |= full
            ends.append((s, full))
        rows = await self._store().get_many(list(wanted)) if wanted else {}
        out = []
        for (queue_id, _, meta), (s, full) in zip(metas, ends, strict=True):
            segments = {k: json.loads(rows[key]) for key, k in full.items() if key in rows}
            try:
                catch_up(meta, s, segments)
            except (TypeError, KeyError, AttributeError, ValueError, IndexError):
                pass  # malformed: summarized as stored (the queue's own calls report it)
            out.append({"queue_id": queue_id, **summarize(meta, now)})
        return out

    async def page(self, prefix: str = "", after: str | None = None, limit: int = 100) -> Page:
        """Up to ``limit`` non-empty queues with ids starting with ``prefix`` and after
        ``after``; ``next`` is the cursor to continue from (``None``: nothing is left)."""
        now = time.time()
        found: list[tuple[str, str, dict[str, Any]]] = []  # (queue_id, actor_id, meta)
        cursor = after
        scanned = 0
        budget = max(SCAN_BUDGET, 10 * limit)
        exhausted = False
        while len(found) < limit and scanned < budget:
            want = min(max(BATCH, limit - len(found)), budget - scanned)
            rows = await self._read(prefix, cursor, want)
            scanned += len(rows)
            consumed = 0
            for actor_id, raw in rows:
                if actor_id.startswith(_ESCAPED):
                    break  # escaped ids sort last: every other queue has been seen
                consumed += 1
                cursor = actor_id  # queue id == actor id for every unescaped id
                meta = _meta(actor_id, raw, now)
                if meta is not None:
                    found.append((actor_id, actor_id, meta))
                    if len(found) == limit:
                        break
            if len(found) < limit and (consumed < len(rows) or len(rows) < want):
                exhausted = True  # the store has no further row under the prefix
                break
        found += await self._dot_queues(prefix, after, None if exhausted else cursor, now)
        found.sort(key=lambda e: e[0])
        entries = await self._entries(found[:limit], now)
        if len(found) > limit:
            return Page(entries, entries[-1]["queue_id"])
        if exhausted:
            return Page(entries, None)
        return Page(entries, entries[-1]["queue_id"] if len(entries) == limit else cursor)

    async def _dot_queues(
        self, prefix: str, after: str | None, until: str | None, now: float
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """The queues ``.`` and ``..`` in the range ``(after, until]`` under ``prefix``."""
        wanted = [
            q
            for q in _DOT_QUEUES
            if q.startswith(prefix) and (after is None or q > after)
            and (until is None or q <= until)
        ]  # fmt: skip
        if not wanted:
            return []
        rows = await self._read(_ESCAPED + ".", None, 2)
        out = []
        for actor_id, raw in rows:
            queue_id = queue_id_of(actor_id)
            if queue_id in wanted and actor_id == actor_id_for(queue_id):
                meta = _meta(queue_id, raw, now)
                if meta is not None:
                    out.append((queue_id, actor_id, meta))
        return out

    async def scan_all(self) -> list[dict[str, Any]]:
        """Every non-empty queue (for the gauges): pages of :data:`SCAN_ALL_PAGE`,
        yielding to the event loop between them so that requests are not held up long."""
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            page = await self.page("", after, SCAN_ALL_PAGE)
            out += page.queues
            if page.next is None:
                return out
            after = page.next
            await asyncio.sleep(0)


@dataclass
class QueueSnapshot:
    """The deepest queues at the last refresh, for :class:`api.metrics.Metrics`."""

    queues: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0  # non-empty queues seen by the last refresh
    taken_at: float | None = None


class QueueGaugeRefresher:
    """One task that lists every queue every ``interval`` seconds (or 20 times the
    last scan's duration, if longer) and keeps the ``max_queues`` deepest: a scrape
    only reads :attr:`snapshot`, it never waits for the store."""

    def __init__(self, lister: QueueLister, max_queues: int, interval: float = 5.0) -> None:
        self.lister = lister
        self.max_queues = max_queues
        self.interval = interval
        self.snapshot = QueueSnapshot()
        self.last_scan_seconds = 0.0
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def refresh(self) -> None:
        started = time.perf_counter()
        queues = await self.lister.scan_all()
        deepest = heapq.nlargest(
            self.max_queues,
            queues,
            key=lambda q: (q["depth"], q["in_flight"] + q["delayed"], q["queue_id"]),
        )
        self.snapshot = QueueSnapshot(deepest, len(queues), time.time())
        self.last_scan_seconds = time.perf_counter() - started

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
                if self._failing:
                    log.info("per-queue gauges: the state store answers again")
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down: keep the last snapshot
                if not self._failing:
                    log.warning("per-queue gauges not refreshed: %s", exc)
                self._failing = True
            await asyncio.sleep(max(self.interval, 20 * self.last_scan_seconds))

    def start(self) -> None:
        if self.max_queues > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="pushpop-queue-gauges")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _sizes(settings: Any) -> dict[str, Any]:
    return {"legacy_segment_size": settings.legacy_segment_size}


def lister_for(settings: Any, invoker: Any) -> QueueLister:
    """The lister of this host's runtime: the embedded runtime's store; in Dapr mode the
    direct store, or (state through daprd) a small read pool of our own on daprd's
    table, which has the same layout and keys as ours (opened on first use)."""
    runtime = getattr(invoker, "runtime", None)
    if runtime is not None:
        return QueueLister(lambda: runtime.store, settings.app_id, **_sizes(settings))
    direct = getattr(invoker, "direct_store", None)
    if direct is not None:
        return QueueLister(lambda: direct, settings.app_id, **_sizes(settings))
    return _DaprComponentLister(settings)


class _DaprComponentLister(QueueLister):
    """Reads daprd's state store (``components/postgres``: the ``state`` table of
    ``PUSHPOP_DATABASE_URL``; ``components/sqlite``: the file ``--sqlite-path``)."""

    def __init__(self, settings: Any) -> None:
        super().__init__(self._opened, settings.app_id, **_sizes(settings))
        self.settings = settings
        self._own: StateStore | None = None
        self._opening = asyncio.Lock()

    def _opened(self) -> StateStore:
        assert self._own is not None
        return self._own

    async def _read(self, prefix: str, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        if self._own is None:
            async with self._opening:
                if self._own is None:
                    self._own = await self._open()
        return await super()._read(prefix, after, limit)

    async def _open(self) -> StateStore:
        from actor_service.stores.factory import open_store

        # schema=False: daprd owns the table; creating it here could race its migrations
        options: dict[str, object] = (
            {"min_size": 1, "max_size": 2, "group_commit": 0, "schema": False}
            if self.settings.store == "postgres"
            else {"group_commit": 0, "schema": False}
        )
        store = open_store(
            self.settings.store,
            database_url=self.settings.database_url,
            sqlite_path=self.settings.sqlite_path,
            **options,
        )
        await store.open()
        return store

    async def close(self) -> None:
        if self._own is not None:
            await self._own.close()
            self._own = None


__all__ = ["Page", "QueueGaugeRefresher", "QueueLister", "QueueSnapshot", "lister_for"]
