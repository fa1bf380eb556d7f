"""Make this node's outgoing Raft connections leave from its own address.

On loopback the kernel gives every outgoing connection the source 127.0.0.1, whatever address
the node listens on. Then a kernel rule cannot tell this node's traffic from anyone else's,
and a partition or packet loss aimed at one node would miss half of its conversations. Binding
the client side of every Raft connection to the node's own address fixes that: traffic between
two nodes carries a node address at both ends.
"""

from __future__ import annotations

import ipaddress
import socket
import types
from typing import Any


def bind_outgoing_raft_sockets(host: str) -> None:
    """Patch PySyncObj's connection module so new client sockets bind to `host` first."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return  # a host name: leave the kernel's choice alone
    if address.is_unspecified or address.version != 4:
        return
    import pysyncobj.tcp_connection as tcp_connection

    class SourceBoundSocket(socket.socket):
        def __init__(self, family: Any = -1, type: Any = -1, proto: int = -1, fileno: Any = None):
            super().__init__(family, type, proto, fileno)
            if fileno is None and self.family == socket.AF_INET:
                self.bind((host, 0))

    patched = types.ModuleType("socket")
    patched.__dict__.update(socket.__dict__)
    patched.socket = SourceBoundSocket  # type: ignore[attr-defined]
    tcp_connection.socket = patched
