"""Where the load goes: the scenario's `load.target` (a service, every service of a role, or a
link's listen side) resolved against the topology (validate time) and the plan (run time).
Without a target the reference order flow goes to the first `role: gateway` service."""

from __future__ import annotations

from harness.excerpt import excerpt
from harness.scenario.http_load import LoadTarget
from harness.scenario.model import LoadProfile
from harness.topology.model import Topology
from harness.topology.plan import Plan

GATEWAY_ROLE = "gateway"


def target_problems(target: LoadTarget, topology: Topology) -> list[tuple[str, str]]:
    """(field, what is wrong) for each mistake, the field relative to `load.target`."""
    if target.via is not None:
        if target.via not in topology.links:
            links = ", ".join(sorted(topology.links)) or "none"
            return [("via", f"unknown link {excerpt(target.via)}; links: {links}")]
        return []
    if target.service is not None:
        service = topology.services.get(target.service)
        if service is None:
            names = ", ".join(sorted(topology.services))
            return [("service", f"unknown service {excerpt(target.service)}; services: {names}")]
        chosen = [service]
    else:
        chosen = [s for s in topology.services.values() if s.role == target.role]
        if not chosen:
            roles = ", ".join(sorted({s.role for s in topology.services.values()}))
            return [("role", f"no service has role {excerpt(target.role or '')}; roles: {roles}")]
    if any(target.port not in service.ports for service in chosen):
        return [("port", f"no port {excerpt(target.port)} on {chosen[0].role} services")]
    return []


def load_addresses(plan: Plan, profile: LoadProfile) -> tuple[str, ...]:
    """host:port of every address the senders spread over; () when there is none (a topology
    without a gateway and no `load.target`: the run measures leadership only)."""
    target = profile.target
    if target is None:
        for service in plan.with_role(GATEWAY_ROLE):
            if "http" in service.ports:
                return (service.address("http"),)
        return ()
    if target.via is not None:
        return (plan.links[target.via].listen_address,)
    if target.service is not None:
        return (plan.services[target.service].address(target.port),)
    return tuple(service.address(target.port) for service in plan.with_role(target.role or ""))
