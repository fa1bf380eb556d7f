"""TCP sockets that are bound but neither listening nor connected, from the kernel's
sock_diag netlink interface.

Such a socket holds its address:port against any other bind, yet appears neither in
/proc/net/tcp (what psutil reads) nor in `ss` before iproute2 6.3: the plan's own port
reservations are of this kind, and so is a client that binds before it connects. Linux 6.7+
reports them on request as state TCP_BOUND_INACTIVE; on older kernels the dump is empty.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_BOUND_INACTIVE = 13  # asked for by this state bit; answered as state CLOSE (6.18)
TCP_CLOSE = 7
HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
# struct inet_diag_req_v2: family, protocol, ext, pad, states, then the 48-byte sockid
REQUEST = struct.Struct("=BBBBI48s")
# struct inet_diag_msg: family, state, timer, retrans, sockid (sport, dport big-endian,
# src and dst 16 bytes each, interface, cookie), expires, rqueue, wqueue, uid, inode
MESSAGE = struct.Struct("=BBBB2s2s16s16sI8sIIIII")


@dataclass(frozen=True)
class BoundSocket:
    address: str
    port: int
    inode: int


def _request(family: int) -> bytes:
    body = REQUEST.pack(family, socket.IPPROTO_TCP, 0, 0, 1 << TCP_BOUND_INACTIVE, bytes(48))
    header = HEADER.pack(
        HEADER.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0
    )
    return header + body


def parse_dump(data: bytes) -> tuple[list[BoundSocket], bool]:
    """Pure: the sockets in one netlink read, and whether the dump is done."""
    found: list[BoundSocket] = []
    offset = 0
    while offset + HEADER.size <= len(data):
        length, kind, _flags, _seq, _pid = HEADER.unpack_from(data, offset)
        if length < HEADER.size:
            return found, True  # malformed: stop rather than loop
        if kind in (NLMSG_DONE, NLMSG_ERROR):
            return found, True
        if kind == SOCK_DIAG_BY_FAMILY and length >= HEADER.size + MESSAGE.size:
            family, state, _, _, sport, _, source, *_, inode = MESSAGE.unpack_from(
                data, offset + HEADER.size
            )
            if state in (TCP_CLOSE, TCP_BOUND_INACTIVE):  # asked for bound-only ones alone
                size = 4 if family == socket.AF_INET else 16
                address = str(ipaddress.ip_address(source[:size]))
                found.append(BoundSocket(address, int.from_bytes(sport, "big"), inode))
        offset += (length + 3) & ~3
    return found, False


def bound_inactive() -> list[BoundSocket]:
    """Every bound-only TCP socket on this machine's network namespace (IPv4 and IPv6);
    empty when the kernel cannot say."""
    found: list[BoundSocket] = []
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as diag:
                diag.settimeout(2)
                diag.send(_request(family))
                done = False
                while not done:
                    sockets, done = parse_dump(diag.recv(65536))
                    found += sockets
        except OSError:
            continue
    return found


def owners(inodes: set[int]) -> dict[int, int]:
    """inode -> pid of a process holding that socket (what /proc/<pid>/fd shows)."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if len(found) == len(wanted):
            break
        if not entry.name.isdigit():
            continue
        try:
            for descriptor in (entry / "fd").iterdir():
                inode = wanted.get(os.readlink(descriptor))
                if inode is not None:
                    found.setdefault(inode, int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return found
