"""Kernel-level network faults on the local backend: random packet loss and partitions.

Both act on the loopback address of a service, so they can only single out a service that has
an address of its own (the engine nodes). 127.0.0.1 is shared by every other service and by
the harness itself: a rule on it would cut the harness off from the system it measures, so
such faults are refused with a message instead. Link-level faults between two services on
127.0.0.1 belong to Toxiproxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from harness.errors import BackendError
from harness.faults import netfilter
from harness.faults.base import ActiveFault, SimpleActiveFault

# Called with the rules a fault is about to add, before any is added (the run's journal).
BeforeRules = Callable[[netfilter.RuleSet], None]


def _nothing(_ruleset: netfilter.RuleSet) -> None:
    pass


SHARED_HOST = "127.0.0.1"


def inject_packet_loss(
    run_id: str,
    key: str | int,
    target_name: str,
    host: str,
    percent: float,
    before: BeforeRules = _nothing,
) -> ActiveFault:
    """Drop `percent` % of the packets to and of the packets from `target_name`'s host."""
    if not 0 < percent <= 100:
        raise BackendError(f"packet_loss percent must be in (0, 100], got {percent}")
    _refuse_shared_host(target_name, host, "packet_loss")
    ruleset = netfilter.random_ruleset(run_id, key, host, percent / 100)
    before(ruleset)
    netfilter.add(ruleset)
    detail: dict[str, object] = {
        "mechanism": "iptables statistic DROP",
        "host": host,
        "percent": percent,
        "tag": ruleset.tag,
        "rules": ruleset.texts(),
    }
    return SimpleActiveFault([target_name], detail, lambda: netfilter.remove(ruleset))


def inject_partition(
    run_id: str,
    key: str | int,
    groups: list[list[tuple[str, str]]],
    before: BeforeRules = _nothing,
) -> ActiveFault:
    """Drop every packet between hosts of different groups of (service name, host)."""
    groups = [group for group in groups if group]
    if len(groups) < 2:
        raise BackendError(f"a partition needs at least two non-empty groups, got {_names(groups)}")
    _check_hosts(groups)
    rulesets = [
        netfilter.between_ruleset(run_id, key, _hosts(first), _hosts(second))
        for index, first in enumerate(groups)
        for second in groups[index + 1 :]
    ]
    ruleset = netfilter.merge(rulesets)
    before(ruleset)
    netfilter.add(ruleset)
    detail: dict[str, object] = {
        "mechanism": "iptables DROP",
        "groups": _names(groups),
        "hosts": [_hosts(group) for group in groups],
        "tag": ruleset.tag,
        "rules": ruleset.texts(),
    }
    targets = [name for group in groups for name, _ in group]
    return SimpleActiveFault(targets, detail, lambda: netfilter.remove(ruleset))


def _check_hosts(groups: list[list[tuple[str, str]]]) -> None:
    owner: dict[str, tuple[int, str]] = {}
    for index, group in enumerate(groups):
        for name, host in group:
            _refuse_shared_host(name, host, "partition")
            previous = owner.setdefault(host, (index, name))
            if previous[0] != index:
                raise BackendError(
                    f"partition: {previous[1]} and {name} share host {host} but are in different"
                    " groups, so no kernel rule can separate them; give each its own address"
                )


def _refuse_shared_host(name: str, host: str, fault: str) -> None:
    netfilter.loopback_host(host)  # a clear error for anything but an IPv4 loopback address
    if ipaddress.ip_address(host) == ipaddress.ip_address(SHARED_HOST):
        raise BackendError(
            f"{fault}: {name} runs on {SHARED_HOST}, which every other service and the harness"
            " share, so a kernel rule on it would cut them off too; give the service its own"
            " loopback address in the topology (host: 127.0.0.x) or use a Toxiproxy link fault"
        )


def _hosts(group: list[tuple[str, str]]) -> list[str]:
    return list(dict.fromkeys(host for _, host in group))


def _names(groups: list[list[tuple[str, str]]]) -> list[list[str]]:
    return [[name for name, _ in group] for group in groups]
