"""Log lines that clients can trigger at will, at most one per kind per interval.

A client that disconnects mid-body, stalls past the read deadline or sends garbage
costs us one line, not one line per connection: otherwise any client could flood
the log (and the disk it lives on). The lines swallowed are counted in the next one.
"""

from __future__ import annotations

import logging
import time


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[str, float] = {}
        self._swallowed: dict[str, int] = {}

    def log(self, level: int, kind: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._swallowed[kind] = self._swallowed.get(kind, 0) + 1
            return
        self._last[kind] = now
        swallowed = self._swallowed.pop(kind, 0)
        if swallowed:
            msg += f" (and {swallowed} more like it in the last {now - (last or now):.0f}s)"
        self.logger.log(level, msg, *args)

    def info(self, kind: str, msg: str, *args: object) -> None:
        self.log(logging.INFO, kind, msg, *args)


# one instance per process: the HTTP protocol and the app's handlers share it
client_trouble = RateLimitedLog(logging.getLogger("pushpop.clients"))
