"""A call's key access to one queue's state: what it loaded, what it changed.

The base of :class:`~actor_service.queue_state.QueueState` and of its mixins
(:mod:`queue_moves`), and what the helpers of :mod:`queue_delays` and
:mod:`queue_idempotency` work through: no I/O, only keys asked for (``yield``) and
values kept until the driver saves :meth:`StateAccess.changes` in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import Any

from actor_service.errors import StateCorrupt
from actor_service.queue_layout import DELETED, META, Limits, Need


class StateAccess:
    """The keys one call loaded and changed, and the call's clock and limits."""

    def __init__(
        self,
        queue_id: str,
        now: float,
        new_lock_id: Callable[[], str],
        limits: Limits | None = None,
        tails_checked: set[int] | None = None,
        catch_up: bool = True,
    ) -> None:
        self.queue_id = queue_id
        self.now = now
        self.new_lock_id = new_lock_id
        self.limits = limits or Limits()
        self.tails_checked = tails_checked
        # meta will come from the store and may lag (queue_tails): catch it up once
        self.catch_up = catch_up
        self._values: dict[str, Any] = {}
        self._dirty: set[str] = set()

    # ------------------------------------------------------------------ key access
    def _load(self, keys: Iterable[str]) -> Generator[Need, dict[str, Any], None]:
        missing = [k for k in dict.fromkeys(keys) if k not in self._values]
        if missing:
            got = yield missing
            for k in missing:
                self._values[k] = got.get(k)

    def _set(self, key: str, value: Any) -> None:
        self._values[key] = value
        self._dirty.add(key)

    def _delete(self, key: str) -> None:
        self._values[key] = None
        self._dirty.add(key)

    def changes(self) -> dict[str, Any]:
        """Keys written by the operation: value, or :data:`DELETED`."""
        return {k: (DELETED if self._values[k] is None else self._values[k]) for k in self._dirty}

    @property
    def meta(self) -> dict[str, Any]:
        return self._values[META]

    @property
    def seg_size(self) -> int:
        """This queue's segment size: recorded in its meta (checked), or the legacy one."""
        return self.meta.get("S", self.limits.legacy_segment_size)

    def _touch_meta(self) -> None:
        self._dirty.add(META)

    def _corrupt(self, what: str, *keys: str) -> StateCorrupt:
        return StateCorrupt(
            f"queue {self.queue_id!r} has inconsistent state: {what}; other queues are "
            f"unaffected (an admin can repair it: POST /queue/{{id}}/repair)",
            keys=[META, *keys] if META not in keys else list(keys),
        )
