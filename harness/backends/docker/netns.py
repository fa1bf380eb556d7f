"""Kernel-level faults inside services' own network namespaces, entered from the host with
`nsenter -t <pid> -n iptables ...` (a container's) or `nsenter --net=/run/netns/<name>` (the
local backend's `network: namespaces`), so an image needs no tools and the host's tables are
never touched: the rules go when the fault heals, and at the latest with the namespace.

Every rule sits in INPUT of the namespace it acts in and drops on arrival (a drop on the way
out would fail the sender's own syscall, which no real network does): packets *to* a service
are dropped in its namespace, packets *from* it in each peer's (`-s <its address>`). Rules
skip the namespace's loopback and carry `-m comment --comment hftchaos:<run id>:<fault key>`.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import BackendError, RuntimeEnvironmentError
from harness.faults import restore_session
from harness.faults.netfilter import (
    CountedRule,
    make_tag,
    parse_counted,
    parse_listing,
    restore_script,
)

if TYPE_CHECKING:
    from harness.faults.base import ActiveFault

COMMAND_TIMEOUT_S = 10.0
CHAIN = "INPUT"


@dataclass(frozen=True)
class Namespace:
    """One service's network namespace: the pid that holds it and its address on the run's
    network (both change when the container starts again)."""

    service: str
    pid: int
    address: str
    file: str | None = None  # a named namespace (/run/netns/NAME): entered by file, not pid


@dataclass(frozen=True)
class NamespaceRule:
    namespace: Namespace
    spec: tuple[str, ...]

    def text(self) -> str:
        return f"{self.namespace.service}: {shlex.join(['-A', CHAIN, *self.spec])}"


def _iptables(namespace: Namespace, *args: str) -> str:
    return _in_namespace(namespace, ["iptables", "-w", "5", *args])


def entering(namespace: Namespace) -> list[str]:
    """The prefix that runs a host program in the namespace. Only the network namespace is
    entered: the program and /proc stay the host's (no tool needed in the image, host pids)."""
    if namespace.file is not None:
        return ["nsenter", f"--net={namespace.file}"]
    return ["nsenter", "-t", str(namespace.pid), "-n"]


def _in_namespace(namespace: Namespace, program: list[str], given: str | None = None) -> str:
    return _run([*entering(namespace), *program], given)


def _run_each(commands: Sequence[list[str]]) -> list[str | BackendError]:
    """Run the programs at the same time; each one's output, or the BackendError it failed
    with (as `_run` raises it)."""
    started: list[subprocess.Popen[str]] = []
    try:
        for command in commands:
            started.append(
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
    except FileNotFoundError:
        for process in started:
            process.kill()
            process.wait()
        raise RuntimeEnvironmentError("nsenter or iptables is not installed") from None
    results: list[str | BackendError] = []
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    for command, process in zip(commands, started, strict=True):
        try:
            stdout, stderr = process.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for late in started:
                late.kill()
                late.wait()
            raise RuntimeEnvironmentError(
                f"`{shlex.join(command)}` did not finish in time"
            ) from None
        ok = process.returncode == 0
        results.append(stdout if ok else _failure(command, process.returncode, stderr))
    return results


def _failure(command: Sequence[str], code: int, stderr: str) -> BackendError:
    message = " ".join(stderr.split()) or "(no message)"
    return BackendError(f"`{shlex.join(command)}` failed ({code}): {message}")


def _run(command: list[str], given: str | None = None) -> str:
    try:
        result = subprocess.run(
            command,
            input=given,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise RuntimeEnvironmentError("nsenter or iptables is not installed") from None
    except subprocess.TimeoutExpired:
        raise RuntimeEnvironmentError(f"`{shlex.join(command)}` did not finish in time") from None
    if result.returncode != 0:
        raise _failure(command, result.returncode, result.stderr)
    return result.stdout


def drop_spec(tag: str, source: str | None, probability: float | None) -> tuple[str, ...]:
    spec: list[str] = []
    if source is not None:
        spec += ["-s", f"{source}/32"]
    spec += ["!", "-i", "lo"]
    if probability is not None:
        spec += ["-m", "statistic", "--mode", "random", "--probability", f"{probability:.11f}"]
    return (*spec, "-m", "comment", "--comment", tag, "-j", "DROP")


def random_loss_rules(
    tag: str, target: Namespace, peers: Sequence[Namespace], probability: float
) -> list[NamespaceRule]:
    if not 0.0 < probability <= 1.0:
        raise BackendError(f"drop probability must be in (0, 1], got {probability}")
    rules = [NamespaceRule(target, drop_spec(tag, None, probability))]
    rules += [NamespaceRule(peer, drop_spec(tag, target.address, probability)) for peer in peers]
    return rules


def partition_rules(tag: str, groups: Sequence[Sequence[Namespace]]) -> list[NamespaceRule]:
    """In each member's namespace, a DROP of every address of every other group."""
    rules = []
    for index, group in enumerate(groups):
        others = [peer for other, g in enumerate(groups) if other != index for peer in g]
        for member in group:
            for peer in others:
                rules.append(NamespaceRule(member, drop_spec(tag, peer.address, None)))
    return rules


def inject(
    targets: list[str], rules: list[NamespaceRule], tag: str, detail: dict[str, object]
) -> ActiveFault:
    """Add the rules as one fault, healed by removing its tag from each namespace."""
    from harness.faults.base import SimpleActiveFault

    add_rules(rules)
    spaces = {rule.namespace for rule in rules}
    detail = {**detail, "tag": tag, "rules": [rule.text() for rule in rules]}

    def heal() -> None:
        remove_tagged(spaces, tag)

    return SimpleActiveFault(targets, detail, heal)


def _restore(namespace: Namespace, script: str) -> None:
    """One block in the namespace, through its kept-open iptables-restore
    (`faults/restore_session.py`: a fault in force after one write a namespace, not one
    program: a packet loss of four rules took ~22 ms as four `iptables` programs, ~17 as one
    `iptables-restore` each)."""
    prefix = entering(namespace)
    restore_session.apply(prefix, script, _restore_once)


def _restore_once(command: Sequence[str], script: str) -> None:
    _run(list(command), script)


def prepare(namespaces: Sequence[Namespace]) -> None:
    """Start each namespace's kept-open iptables-restore before the first fault is due."""
    for namespace in namespaces:
        restore_session.prepare(entering(namespace))


def forget(namespaces: Sequence[Namespace]) -> None:
    """End the kept-open programs of namespaces that are going (each holds its namespace)."""
    for namespace in namespaces:
        restore_session.close(entering(namespace))


def add_rules(rules: Sequence[NamespaceRule]) -> None:
    """Append every rule, one block a namespace, all namespaces at once; if one fails, take
    out those of its tag already added and re-raise."""
    by_namespace: dict[Namespace, list[NamespaceRule]] = {}
    for rule in rules:
        by_namespace.setdefault(rule.namespace, []).append(rule)
    blocks = [
        (entering(namespace), restore_script([["-A", CHAIN, *rule.spec] for rule in its_rules]))
        for namespace, its_rules in by_namespace.items()
    ]
    try:
        restore_session.apply_each(blocks, _restore_once)
    except BaseException:
        remove_tagged({rule.namespace for rule in rules}, _tag_of(rules))
        raise


def remove_tagged(namespaces: set[Namespace], tag: str) -> int:
    """Delete the rules carrying `tag` in each namespace, one block a namespace; a namespace
    that is gone (its container stopped, killed or removed) took its rules with it. Returns
    how many. The namespaces are listed at once (one program each, ~5 ms)."""
    spaces = sorted(namespaces, key=lambda space: space.service)
    listings = _run_each(
        [[*entering(space), "iptables", "-w", "5", "-S", CHAIN] for space in spaces]
    )
    removed = 0
    for namespace, listing in zip(spaces, listings, strict=True):
        if isinstance(listing, BackendError):
            continue  # no such process or namespace any more: nothing left to undo there
        tagged = parse_listing(listing).tagged_with(tag)
        try:
            if tagged:
                _restore(namespace, restore_script([["-D", r.chain, *r.spec] for r in tagged]))
            removed += len(tagged)
        except BackendError:
            continue  # gone since its listing
    return removed


def counted_tagged(namespaces: Sequence[Namespace], tag: str) -> list[CountedRule]:
    """The rules carrying `tag` in each namespace, with the kernel's counters of each (a
    namespace that is gone has none)."""
    found = []
    saves = [[*entering(space), "iptables-save", "-c", "-t", "filter"] for space in namespaces]
    for listing in _run_each(saves):  # at once: one program a namespace
        if not isinstance(listing, BackendError):
            found += [counted for counted in parse_counted(listing) if counted.rule.tag == tag]
    return found


def count_tagged(namespace: Namespace, run_id: str) -> int:
    return len(parse_listing(_iptables(namespace, "-S", CHAIN)).tagged(run_id))


def _tag_of(rules: Sequence[NamespaceRule]) -> str:
    for index, word in enumerate(rules[0].spec):
        if word == "--comment":
            return rules[0].spec[index + 1]
    raise BackendError("a namespace rule without a tag")


__all__ = ["Namespace", "make_tag"]
