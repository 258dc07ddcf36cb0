"""supervise.ports: ports handed to child processes never collide with outgoing connections."""

from __future__ import annotations

import socket

from supervise.ports import candidate_ports, ephemeral_range, free_port


def test_ports_come_from_outside_the_ephemeral_range_and_never_twice() -> None:
    low, high = ephemeral_range()
    assert candidate_ports(), "this host leaves no room outside its ephemeral range"
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert not [p for p in ports if low <= p <= high]


def test_a_port_an_outgoing_connection_holds_is_never_handed_out() -> None:
    """The CI failure: a connection's local port was picked for daprd's metrics port."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        clients = [socket.create_connection(server.getsockname()) for _ in range(50)]
        try:
            held = {c.getsockname()[1] for c in clients}
            assert not held & {free_port() for _ in range(300)}
        finally:
            for c in clients:
                c.close()
