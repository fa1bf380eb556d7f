"""Resolve a scenario's target selectors to service names at the moment of injection."""

from __future__ import annotations

import random

from harness.backends.base import LeaderLookup
from harness.errors import BackendError
from harness.scenario.model import LinkSelector, RoleSelector, Target
from harness.topology.plan import Plan

LEADER_AWARE = {"leader", "follower", "random-follower", "minority", "majority"}


def resolve_target(
    target: Target, plan: Plan, lookup: LeaderLookup | None, chooser: random.Random
) -> list[str]:
    if isinstance(target, str):
        return [target]
    members = sorted(s.name for s in plan.with_role(target.role))
    if target.select == "all":
        return members
    if target.select == "random":
        return [chooser.choice(members)]
    if lookup is None:
        raise BackendError(f"selecting the {target.select} needs a leader lookup (Raft status)")
    leader = lookup.leader()
    if leader is None or leader not in members:
        raise BackendError(
            f"no {target.role} leader at the moment of injection, cannot select {target.select!r}"
        )
    followers = [m for m in members if m != leader]
    minority_size = (len(members) - 1) // 2
    match target.select:
        case "leader":
            return [leader]
        case "follower":
            return followers[:1]
        case "random-follower":
            return [chooser.choice(followers)]
        case "minority":
            # The leader is part of the minority: the interesting case is a leader that loses
            # its quorum (it must step down, the majority must elect a new one).
            return [leader, *followers[: minority_size - 1]]
        case "majority":
            return [leader, *followers[: len(members) - minority_size - 1]]
    raise BackendError(f"unknown selection {target.select!r}")


def resolve_link(
    link: str | LinkSelector, plan: Plan, lookup: LeaderLookup | None, chooser: random.Random
) -> list[str]:
    if isinstance(link, str):
        return [link]
    sources = set(resolve_target(link.source, plan, lookup, chooser))
    targets = set(resolve_target(link.target, plan, lookup, chooser))
    names = sorted(
        name
        for name, planned in plan.links.items()
        if planned.source in sources and planned.target in targets
    )
    if not names:
        raise BackendError(
            f"no link from {sorted(sources)} to {sorted(targets)} in topology {plan.topology_name}"
        )
    return names


def describe(target: Target | LinkSelector | str) -> str:
    if isinstance(target, RoleSelector):
        return f"{target.select} {target.role}"
    if isinstance(target, LinkSelector):
        return f"link {describe(target.source)} -> {describe(target.target)}"
    return target
