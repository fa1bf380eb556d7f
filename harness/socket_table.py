"""Reading the kernel's socket table through psutil, safely in any process of the harness.

psutil decodes socket addresses with `socket.inet_ntop`. PySyncObj 0.3.17 replaces that
function, process-wide and on every platform, with a Windows-only one when it is imported
(`pysyncobj.win_inet_pton`, imported by its TCP connection module), so once anything in the
process has loaded it (a target's checks, a test of the engine), reading connections fails
with "not_windows() takes 0 positional arguments". Every reader calls `repair_inet_ntop` first.
"""

from __future__ import annotations

import _socket
import socket


def repair_inet_ntop() -> None:
    """Put the C library's `inet_ntop` back where PySyncObj replaced it."""
    if socket.inet_ntop is not _socket.inet_ntop:
        socket.inet_ntop = _socket.inet_ntop
