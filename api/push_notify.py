"""Long-poll wake-ups across Dapr hosts: PostgreSQL ``LISTEN``/``NOTIFY``.

A waiter parks on the host its client reached; the push may arrive through another.
Dapr-mode hosts on PostgreSQL share the database, so ``NOTIFY`` on ``pushpop_push`` links
them with nothing new to deploy, two connections per host. Pushes are sent after their
answers, the moment's pushes to every queue in one note; a host skips its own notes
unparsed; a lost listener reconnects and resyncs (:meth:`api.waiters.WaiterRegistry.resync`).
Why not pub/sub: docs/long-poll.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

from api.log_limits import client_trouble

log = logging.getLogger("pushpop.notify")

CHANNEL = "pushpop_push"
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more: notes are cut below this
NOTE_BYTES = 7000
# at most one note per this many seconds: the first push after a quiet spell is sent at
# once, later ones share the next note. Every host hears every note, so at a thousand
# pushes a second one note per push was most of the link's CPU (docs/long-poll.md)
NOTE_INTERVAL = 0.01
# a dead peer is noticed within about idle + interval * count seconds
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3, "connect_timeout": 5}  # fmt: skip


class PushNotifier:
    """Sends this host's pushes to the other hosts and hears theirs.

    ``on_push(queue_id, n)`` is called for another host's push; ``on_reconnect()`` after
    the listening connection came back (notes may have been missed meanwhile).
    """

    def __init__(
        self,
        database_url: str,
        app_id: str,
        on_push: Callable[[str, int], None],
        on_reconnect: Callable[[], None],
    ) -> None:
        self.url = database_url
        self.app_id = app_id
        self.host = uuid.uuid4().hex  # this process: its own notes come back to it too
        self._own = json.dumps([app_id, self.host], separators=(",", ":"))[:-1] + ","
        self.on_push = on_push
        self.on_reconnect = on_reconnect
        self.listening = asyncio.Event()
        self.heard = 0  # notes from other hosts (tests, metrics)
        self._pending: dict[str, int] = {}
        self._sent_at = float("-inf")  # loop time the last note went out
        self._sender: asyncio.Task[None] | None = None
        self._send_conn: psycopg.AsyncConnection[Any] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self, within: float = 5.0) -> None:
        """Start listening; wait up to ``within`` seconds for ``LISTEN`` to take (a host
        whose database is down starts anyway: the listener keeps trying)."""
        self._listener = asyncio.create_task(self._listen(), name="pushpop-listen")
        try:
            await asyncio.wait_for(self.listening.wait(), within)
        except TimeoutError:
            log.warning("long-poll notifications: not listening yet; retrying in the background")

    async def stop(self) -> None:
        self._closing = True
        for task in (self._listener, self._sender):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._listener, self._sender) if t is not None), return_exceptions=True
        )
        if self._send_conn is not None:
            await self._send_conn.close()

    # ------------------------------------------------------------------ sending
    def publish(self, queue_id: str, n: int) -> None:
        """Tell the other hosts; returns at once (sent by a task, merged with others)."""
        if self._closing:
            return
        self._pending[queue_id] = self._pending.get(queue_id, 0) + n
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="pushpop-notify")

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            wait = self._sent_at + NOTE_INTERVAL - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            batch, self._pending = self._pending, {}
            notes = self.notes(batch)
            for attempt in (1, 2):  # a connection the database closed fails once
                try:
                    if self._send_conn is None or self._send_conn.closed:
                        # a note needs no durable commit: never wait for a WAL flush
                        self._send_conn = await psycopg.AsyncConnection.connect(
                            self.url, autocommit=True, options="-c synchronous_commit=off",
                            **KEEPALIVES,
                        )  # fmt: skip
                    await self._send_conn.execute(
                        "SELECT pg_notify(%s, note) FROM unnest(%s::text[]) AS note",
                        (CHANNEL, notes),
                    )
                    break
                except psycopg.Error as exc:
                    if self._send_conn is not None:
                        await self._send_conn.close()
                        self._send_conn = None
                    if attempt == 2:  # the waiters elsewhere wake at their deadline
                        client_trouble.log(
                            logging.WARNING, "notify",
                            "could not notify other hosts of %d push(es): %s",
                            len(notes), exc.__class__.__name__,
                        )  # fmt: skip
            self._sent_at = loop.time()

    def notes(self, batch: dict[str, int]) -> list[str]:
        """``[app_id, host, queue, n, queue, n, ...]``, as few notes as fit ``NOTE_BYTES``
        (one queue's note reads as it did when every note named one queue)."""
        head = json.dumps([self.app_id, self.host], separators=(",", ":"))[:-1]
        notes: list[str] = []
        parts: list[str] = []
        size = len(head)
        for q, n in batch.items():
            part = "," + json.dumps(q) + "," + str(n)
            if parts and size + len(part) + 1 > NOTE_BYTES:
                notes.append(head + "".join(parts) + "]")
                parts, size = [], len(head)
            parts.append(part)
            size += len(part)
        if parts:
            notes.append(head + "".join(parts) + "]")
        return notes

    # ------------------------------------------------------------------ listening
    async def _listen(self) -> None:
        failures = 0
        first = True
        while not self._closing:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, **KEEPALIVES
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    if not first:
                        log.warning("long-poll notifications: listening again")
                        self.on_reconnect()
                    first, failures = False, 0
                    async for note in conn.notifies():
                        self._heard(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # psycopg.Error, OSError: the database went away
                self.listening.clear()
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                failures += 1
                log.warning(
                    "long-poll notifications: lost the database (%s); again in %gs",
                    exc.__class__.__name__, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)

    def _heard(self, payload: str) -> None:
        if payload.startswith(self._own):
            return  # this host's own note: its waiters were woken when it pushed
        try:
            note = json.loads(payload)
        except ValueError:
            return  # not ours
        if not isinstance(note, list) or len(note) < 4 or len(note) % 2:
            return
        if note[0] != self.app_id or note[1] == self.host:
            return
        self.heard += 1
        for i in range(2, len(note), 2):
            queue_id, n = note[i], note[i + 1]
            if isinstance(n, int) and not isinstance(n, bool):
                self.on_push(str(queue_id), n)


__all__ = ["CHANNEL", "PushNotifier"]
