"""Free loopback ports for the processes tests, benchmarks and the Dapr launcher start.

A port picked here is bound later by a child process, so it must stay free in between:
ports are drawn at random from *below* the kernel's ephemeral range, where no outgoing
connection lands, and never handed out twice by one process (docs/scaling.md, "Ports on
one machine").
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL = (32768, 60999)  # Linux's default, and below every other OS's range
LOWEST = 15000  # stay clear of the well-known and registered ports users run services on
ATTEMPTS = 200

_random = random.SystemRandom()  # never a seeded generator: two processes must not agree
_handed_out: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (inclusive)."""
    try:
        low, high = (int(x) for x in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL
    return low, high


def candidate_ports() -> range:
    """Where :func:`free_port` draws from: below the ephemeral range, else above it, else
    (a host whose ephemeral range covers nearly everything) empty."""
    low, high = ephemeral_range()
    if low - LOWEST >= 1000:
        return range(LOWEST, low)
    if 65535 - high >= 1000:
        return range(high + 1, 65536)
    return range(0)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and outside the ephemeral range.

    Still racy against another process that picks the same port to listen on, which is
    as unlikely as two random draws from ~17,000 ports agreeing; callers that restart a
    child (the Dapr launcher) pick again when a bind fails.
    """
    candidates = candidate_ports()
    if candidates:
        for _ in range(ATTEMPTS):
            port = _random.choice(candidates)
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # last resort
        s.bind((LOOPBACK, 0))
        port = int(s.getsockname()[1])
    _handed_out.add(port)
    return port


__all__ = ["candidate_ports", "ephemeral_range", "free_port"]
