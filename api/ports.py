"""Free loopback ports for the processes tests, benchmarks and the Dapr launcher start."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now.

    Racy by nature (someone may take it before the child binds it), which is acceptable
    here; the alternative, letting each binary pick port 0, is not offered by Dapr for
    most of its listeners, nor by PostgreSQL's start-up.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


__all__ = ["free_port"]
