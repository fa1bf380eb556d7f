"""An observer that shares no code and no clock reading with the harness or the engine: it
watches the Raft traffic between the engine nodes on loopback and reports, with the kernel's
own timestamp of each packet, which PySyncObj messages were sent.

Run as its own process (root: a packet socket): `python raft_wire_observer.py OUT IP...`.
It writes one JSON line per Raft message it could decode, `{"mono_ns", "src", "dst", "type"}`,
until SIGTERM. The failover test uses it as the independent reference for when a new leader
took office: the kernel's time of that leader's first `append_entries` after the kill.

Why this is independent: the kernel stamps every packet as it passes the loopback device
(SO_TIMESTAMPNS, CLOCK_REALTIME; converted to CLOCK_MONOTONIC by an offset read here), so
neither the engine's role stamp nor the harness's probe samples enter it. The wire format is
PySyncObj's: a 4-byte native length, then a zlib-compressed pickle. Messages are never
unpickled; the type is found as its name in the decompressed bytes.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import signal
import socket
import struct
import sys
import time
import zlib
from pathlib import Path

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
ETHERNET_HEADER = 14
MESSAGE_TYPES = (b"append_entries", b"request_vote", b"response_vote", b"next_node_idx")


class _SockFilter(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter)))


def _filter_program(addresses: list[int]) -> list[tuple[int, int, int, int]]:
    """Classic BPF: outgoing IPv4 TCP whose source and destination are both engine addresses.

    Without it every loopback packet (probes, Kafka, load) would reach this process. Jumps
    are written as labels ("accept", "reject", "destination") and resolved at the end."""
    ld_w, ld_h, ld_b, jeq, ret = 0x20, 0x28, 0x30, 0x15, 0x06
    pkttype = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE
    # (code, jump if true, jump if false, k); a jump is a label or None (the next step)
    steps: list[tuple[int, str | None, str | None, int]] = [
        (ld_w, None, None, pkttype),
        (jeq, None, "reject", PACKET_OUTGOING),
        (ld_h, None, None, 12),
        (jeq, None, "reject", 0x0800),  # IPv4
        (ld_b, None, None, ETHERNET_HEADER + 9),
        (jeq, None, "reject", 6),  # TCP
        (ld_w, None, None, ETHERNET_HEADER + 12),  # source address
    ]
    steps += [(jeq, "destination", None, address) for address in addresses]
    steps.append((ret, None, None, 0))
    labels = {"destination": len(steps)}
    steps.append((ld_w, None, None, ETHERNET_HEADER + 16))  # destination address
    steps += [(jeq, "accept", None, address) for address in addresses]
    labels["reject"] = len(steps)
    steps.append((ret, None, None, 0))
    labels["accept"] = len(steps)
    steps.append((ret, None, None, 0xFFFF))

    def offset(label: str | None, index: int) -> int:
        return 0 if label is None else labels[label] - index - 1

    return [
        (code, offset(when_true, index), offset(when_false, index), k)
        for index, (code, when_true, when_false, k) in enumerate(steps)
    ]


def _attach_filter(sock: socket.socket, addresses: list[int]) -> None:
    program = _filter_program(addresses)
    instructions = (_SockFilter * len(program))(*[_SockFilter(*step) for step in program])
    fprog = _SockFprog(len(program), instructions)
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.setsockopt(
        sock.fileno(),
        socket.SOL_SOCKET,
        SO_ATTACH_FILTER,
        ctypes.byref(fprog),
        ctypes.sizeof(fprog),
    )
    if result != 0:
        raise OSError(ctypes.get_errno(), "SO_ATTACH_FILTER failed")


def _realtime_minus_monotonic_ns() -> int:
    """The offset between the two clocks, read as tightly as this process can (best of 50)."""
    best: tuple[int, int] | None = None
    for _ in range(50):
        before = time.monotonic_ns()
        wall = time.time_ns()
        after = time.monotonic_ns()
        if best is None or after - before < best[0]:
            best = (after - before, wall - (before + after) // 2)
    assert best is not None
    return best[1]


def _messages(payload: bytes) -> list[bytes]:
    """The types of the whole PySyncObj messages a segment starts with (none if it starts
    mid-message: those are not needed, a quiet connection's next message starts a segment)."""
    found = []
    offset = 0
    while offset + 4 <= len(payload):
        (length,) = struct.unpack_from("i", payload, offset)
        body = payload[offset + 4 : offset + 4 + length]
        if length <= 0 or len(body) < length:
            break
        try:
            text = zlib.decompress(body)
        except zlib.error:
            break
        found += [kind for kind in MESSAGE_TYPES if kind in text[:200]]
        offset += 4 + length
    return found


def _parse(frame: bytes) -> tuple[str, str, bytes] | None:
    ip = frame[ETHERNET_HEADER:]
    header_length = (ip[0] & 0x0F) * 4
    total_length = struct.unpack_from("!H", ip, 2)[0]
    tcp = ip[header_length:total_length]
    if len(tcp) < 20:
        return None
    source_port, destination_port = struct.unpack_from("!HH", tcp, 0)
    data_offset = (tcp[12] >> 4) * 4
    source = f"{socket.inet_ntoa(ip[12:16])}:{source_port}"
    destination = f"{socket.inet_ntoa(ip[16:20])}:{destination_port}"
    return source, destination, tcp[data_offset:]


def observe(output: Path, addresses: list[str]) -> None:
    running = True

    def stop(_signal: int, _frame: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    _attach_filter(sock, [int(ipaddress.IPv4Address(a)) for a in addresses])
    sock.bind(("lo", 0))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.settimeout(0.2)
    offset_ns = _realtime_minus_monotonic_ns()
    with output.open("w") as out:
        print(json.dumps({"ready": True, "offset_ns": offset_ns}), file=out, flush=True)
        while running:
            try:
                frame, ancillary, _flags, _address = sock.recvmsg(65536, 64)
            except TimeoutError:
                continue
            except InterruptedError:
                continue
            stamp = next((data for level, kind, data in ancillary if kind == SO_TIMESTAMPNS), None)
            parsed = _parse(frame)
            if stamp is None or parsed is None or not parsed[2]:
                continue
            seconds, nanoseconds = struct.unpack("ll", stamp[:16])
            mono_ns = seconds * 1_000_000_000 + nanoseconds - offset_ns
            for kind in _messages(parsed[2]):
                record = {"mono_ns": mono_ns, "src": parsed[0], "dst": parsed[1]}
                print(json.dumps({**record, "type": kind.decode()}), file=out, flush=True)
        drift = _realtime_minus_monotonic_ns() - offset_ns
        print(json.dumps({"stopped": True, "clock_drift_ns": drift}), file=out, flush=True)


if __name__ == "__main__":
    observe(Path(sys.argv[1]), sys.argv[2:])
