"""One actor's turn: the lock both actor hosts take so an actor runs one call at a time.

The embedded runtime takes it for every call (it is the only turn-keeper there); in
Dapr mode ``daprd`` keeps turns, and the app takes this lock as well, for the calls a
dead or impatient sidecar lets in twice (:mod:`actor_service.runtime.dapr.guard`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class Turn:
    """Per-actor-id turn lock; ``users`` counts calls holding or waiting for it and
    ``last_used`` is when the last one let go (for idle deactivation)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)


__all__ = ["Turn"]
