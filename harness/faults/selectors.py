"""Resolve a scenario's target selectors to service names at the moment of injection."""

from __future__ import annotations

import random

from harness.backends.base import LeaderLookup
from harness.errors import BackendError
from harness.raft import ClusterLeaders
from harness.scenario.fault_fields import LinkSelector, RoleSelector, Target
from harness.topology.model import Topology
from harness.topology.plan import Plan

LEADER_AWARE = {"leader", "follower", "random-follower", "minority", "majority"}


def resolve_target(
    target: Target, plan: Plan, lookup: LeaderLookup | None, chooser: random.Random
) -> list[str]:
    if isinstance(target, str):
        return [target]
    members = selected_members(target, plan)
    if target.select == "all":
        return members
    if target.select == "random":
        return [chooser.choice(members)]
    if lookup is None:
        raise BackendError(f"selecting the {target.select} needs a leader lookup (Raft status)")
    leader = _leader_among(members, plan, lookup)
    if leader is None or leader not in members:
        raise BackendError(
            f"no {describe_group(target)} leader at the moment of injection, "
            f"cannot select {target.select!r}"
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


def selected_members(target: RoleSelector, plan: Plan) -> list[str]:
    """The services a selector chooses from: a cluster's members (with a role given too, those
    of that role), else the services of the role."""
    if target.cluster is None:
        return sorted(s.name for s in plan.with_role(target.role))
    members = plan.raft_members(target.cluster)
    if "role" in target.model_fields_set:
        members = [m for m in members if m.role == target.role]
    return sorted(m.name for m in members)


def topology_members(target: RoleSelector, topology: Topology) -> list[str]:
    """`selected_members` from the topology file alone (validate, clock control)."""
    return topology.chosen_by(target.role, target.cluster, "role" in target.model_fields_set)


def _leader_among(members: list[str], plan: Plan, lookup: LeaderLookup) -> str | None:
    """The leader of the cluster these members belong to (the first cluster among them)."""
    clusters = [c for m in members if (c := plan.services[m].raft_cluster) is not None]
    if clusters and isinstance(lookup, ClusterLeaders):
        return lookup.cluster_leader(clusters[0])
    return lookup.leader()


def describe_group(target: RoleSelector) -> str:
    return f"cluster {target.cluster}" if target.cluster is not None else target.role


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
        return f"{target.select} {describe_group(target)}"
    if isinstance(target, LinkSelector):
        return f"link {describe(target.source)} -> {describe(target.target)}"
    return target
