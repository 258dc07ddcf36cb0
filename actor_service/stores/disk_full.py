"""Disk-full episodes of a store: one log line in, one out, and a cheap way to probe.

A full disk fails every write; this logs an episode once when it starts and once when the
store's probe finds room again, lets ``/ready`` say why it is not ready, answers
:class:`StorageFull` (507) meanwhile and probes at most once per ``probe_interval``.
"""

from __future__ import annotations

import logging
import time

from actor_service.errors import StorageFull

log = logging.getLogger("pushpop.store")


class DiskFullEpisode:
    def __init__(self, store: str, probe_interval: float = 1.0) -> None:
        self.store = store
        self.probe_interval = probe_interval
        self.cause = ""
        self.since: float | None = None
        self._last_probe = 0.0

    @property
    def active(self) -> bool:
        return self.since is not None

    def enter(self, cause: str, detail: str = "") -> StorageFull:
        """Record the failure (logged only if it starts an episode); the error to raise.

        ``cause`` goes to clients too; ``detail`` (file paths, say) only to the log."""
        if self.since is None:
            self.since = self._last_probe = time.monotonic()
            self.cause = cause
            log.error(
                "%s: disk full (%s%s); writes answer 507 INSUFFICIENT_STORAGE, purge and "
                "acknowledge still run; free space or drain queues to recover",
                self.store, cause, f": {detail}" if detail else "",
            )  # fmt: skip
        return self.error()

    def leave(self) -> None:
        if self.since is not None:
            log.warning(
                "%s: disk space available again after %.0fs; writes accepted",
                self.store, time.monotonic() - self.since,
            )  # fmt: skip
            self.since = None
            self.cause = ""

    def error(self) -> StorageFull:
        return StorageFull(f"{self.store}: disk full ({self.cause}); free space to recover")

    def probe_due(self) -> bool:
        """At most one recovery probe per interval, however many requests ask."""
        now = time.monotonic()
        if now - self._last_probe < self.probe_interval:
            return False
        self._last_probe = now
        return True
