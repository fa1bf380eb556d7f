"""Idle keep-alive HTTP/1.1 connections per engine address, so no request pays a TCP handshake.

Request threads take a connection, use it for one exchange and give it back. Pooling (rather
than one connection per request thread) keeps that true even when the gateway's own clients
open a new connection, and so a new server thread, per order.
"""

from __future__ import annotations

import http.client
import select
import threading

Address = tuple[str, int]


class ConnectionPool:
    def __init__(
        self, connect_timeout_s: float, read_timeout_s: float, max_idle_per_address: int
    ) -> None:
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._max_idle_per_address = max_idle_per_address
        self._idle: dict[Address, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()

    def acquire(self, address: Address) -> http.client.HTTPConnection:
        """An open connection; raises OSError if a new one cannot be made (nothing was sent)."""
        while True:
            with self._lock:
                idle = self._idle.get(address)
                # Most recently used first: the least likely to have been closed by the peer.
                connection = idle.pop() if idle else None
            if connection is None:
                return self._connect(address)
            if is_still_open(connection):
                return connection
            connection.close()

    def release(self, address: Address, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(address, [])
            if len(idle) < self._max_idle_per_address:
                idle.append(connection)
                return
        connection.close()

    def close_all(self) -> None:
        with self._lock:
            idle_lists = list(self._idle.values())
            self._idle.clear()
        for idle in idle_lists:
            for connection in idle:
                connection.close()

    def _connect(self, address: Address) -> http.client.HTTPConnection:
        host, port = address
        connection = http.client.HTTPConnection(host, port, timeout=self._connect_timeout_s)
        try:
            connection.connect()  # http.client sets TCP_NODELAY
            assert connection.sock is not None
            # A different limit once connected: the engine may legitimately take up to its
            # commit timeout to answer, while a connect that slow means the node is gone.
            connection.sock.settimeout(self._read_timeout_s)
        except BaseException:
            connection.close()
            raise
        return connection


def is_still_open(connection: http.client.HTTPConnection) -> bool:
    """False if the peer closed or reset the idle connection, seen before anything is sent.

    An idle HTTP/1.1 connection has nothing to read, so readability means end-of-file, a reset
    or garbage. Catching this before sending matters: a request written into a connection the
    engine had already closed would otherwise end as "sent, no answer", an outcome reported as
    unknown although the engine never saw it.
    """
    if connection.sock is None:
        return False
    poller = select.poll()  # unlike select.select, not limited to descriptors below 1024
    poller.register(connection.sock, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)
