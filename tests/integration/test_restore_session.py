"""The kept-open iptables-restore (harness/faults/restore_session.py) against the real program:
a block is in force the moment `apply` returns (a datagram sent right then is dropped), a
refused block raises with the program's words and the next block still goes in, and rules other
programs change between two blocks are neither lost nor duplicated.

The host's rules act on 127.0.0.77 only and are swept like a run's; the rest happens in a
network namespace made for the test.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.errors import BackendError
from harness.faults import netfilter, restore_session
from tests.integration.netfilter_run import netfilter_run

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="iptables rules need root"),
    pytest.mark.skipif(not restore_session.supported(), reason="no /proc/<pid>/syscall here"),
]

HOST = "127.0.0.77"
ROUNDS = 20


def arrives(receiver: socket.socket, sender: socket.socket) -> bool:
    """Send one datagram at once and say whether it arrived (a drop is silent)."""
    sender.sendto(b"x", receiver.getsockname())
    try:
        return receiver.recv(16) == b"x"
    except TimeoutError:
        return False


def test_a_rule_is_in_force_when_add_returns_and_gone_when_remove_returns(tmp_path: Path) -> None:
    with (
        netfilter_run(tmp_path, f"restore{os.getpid()}") as run,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind((HOST, 0))
        receiver.settimeout(0.05)
        sender.bind(("127.0.0.1", 0))
        netfilter.prepare()
        for key in range(ROUNDS):
            assert arrives(receiver, sender)
            ruleset = netfilter.drop_randomly(run, key, HOST, 1.0)
            assert not arrives(receiver, sender), f"round {key}: the rule was not yet in force"
            netfilter.remove(ruleset)
            assert arrives(receiver, sender), f"round {key}: the rule was still in force"


@contextmanager
def made_namespace(name: str) -> Iterator[tuple[str, ...]]:
    """A network namespace of the test's own; the prefix that runs a program in it."""
    subprocess.run(["ip", "netns", "add", name], check=True)
    prefix = ("ip", "netns", "exec", name)
    try:
        yield prefix
    finally:
        restore_session.close(prefix)
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture
def namespace() -> Iterator[tuple[str, ...]]:
    with made_namespace(f"hftchaos-restore-{os.getpid()}") as prefix:
        yield prefix


def listing(prefix: tuple[str, ...]) -> list[str]:
    shown = subprocess.run([*prefix, "iptables", "-S", "INPUT"], capture_output=True, text=True)
    return [line for line in shown.stdout.splitlines() if line.startswith("-A")]


def block(*lines: str) -> str:
    return "\n".join(["*filter", *lines, "COMMIT", ""])


def never(command: object, script: str) -> None:
    raise AssertionError("this machine's /proc shows when a block is in force")


def test_a_refused_block_raises_and_the_next_one_goes_in(namespace: tuple[str, ...]) -> None:
    restore_session.apply(namespace, block("-A INPUT -s 10.9.0.1/32 -j DROP"), never)
    with pytest.raises(BackendError, match=r"line \d+ failed"):
        restore_session.apply(namespace, block("-A NOSUCHCHAIN -j DROP"), never)
    restore_session.apply(namespace, block("-A INPUT -s 10.9.0.2/32 -j DROP"), never)
    assert listing(namespace) == [
        "-A INPUT -s 10.9.0.1/32 -j DROP",
        "-A INPUT -s 10.9.0.2/32 -j DROP",
    ]


def test_rules_other_programs_change_between_blocks_are_kept(namespace: tuple[str, ...]) -> None:
    restore_session.apply(namespace, block("-A INPUT -s 10.9.0.1/32 -j DROP"), never)
    subprocess.run([*namespace, "iptables", "-D", "INPUT", "-s", "10.9.0.1/32", "-j", "DROP"])
    subprocess.run([*namespace, "iptables", "-A", "INPUT", "-s", "10.9.0.9/32", "-j", "DROP"])
    restore_session.apply(namespace, block("-A INPUT -s 10.9.0.2/32 -j DROP"), never)
    assert listing(namespace) == [
        "-A INPUT -s 10.9.0.9/32 -j DROP",
        "-A INPUT -s 10.9.0.2/32 -j DROP",
    ]
    many = [f"-A INPUT -s 10.8.{n // 250}.{n % 250 + 1}/32 -j DROP" for n in range(1500)]
    restore_session.apply(namespace, block(*many), never)  # more than a pipe's buffer
    assert len(listing(namespace)) == 2 + len(many)


def test_a_namespace_that_cannot_be_entered_is_a_backend_error() -> None:
    prefix = ("ip", "netns", "exec", f"hftchaos-no-such-{os.getpid()}")
    with pytest.raises(BackendError, match="failed"):
        restore_session.apply(prefix, block("-A INPUT -j DROP"), never)


@pytest.fixture
def second_namespace() -> Iterator[tuple[str, ...]]:
    with made_namespace(f"hftchaos-restore2-{os.getpid()}") as prefix:
        yield prefix


def test_blocks_for_several_namespaces_all_go_in_and_a_refusal_in_one_is_raised(
    namespace: tuple[str, ...], second_namespace: tuple[str, ...]
) -> None:
    restore_session.apply_each(
        [
            (namespace, block("-A INPUT -s 10.9.0.1/32 -j DROP")),
            (second_namespace, block("-A INPUT -s 10.9.0.2/32 -j DROP")),
        ],
        never,
    )
    assert listing(namespace) == ["-A INPUT -s 10.9.0.1/32 -j DROP"]
    assert listing(second_namespace) == ["-A INPUT -s 10.9.0.2/32 -j DROP"]
    with pytest.raises(BackendError, match="failed"):
        restore_session.apply_each(
            [
                (namespace, block("-A NOSUCHCHAIN -j DROP")),
                (second_namespace, block("-A INPUT -s 10.9.0.3/32 -j DROP")),
            ],
            never,
        )
    assert listing(second_namespace)[-1] == "-A INPUT -s 10.9.0.3/32 -j DROP"
