"""Apply one scenario fault to the running system and return how to heal it.

Targets are resolved here, at the moment of injection, and recorded in the ActiveFault.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.errors import BackendError
from harness.faults.base import ActiveFault, FaultContext, SimpleActiveFault
from harness.faults.selectors import resolve_link, resolve_target
from harness.scenario.model import (
    BandwidthFault,
    ClockSkewFault,
    Fault,
    KillFault,
    LatencyFault,
    LinkDownFault,
    LinkFaultBase,
    PacketLossFault,
    PartitionFault,
    PauseFault,
    ResetPeerFault,
    RestartFault,
    SlicerFault,
    Target,
    TimeoutFault,
)
from harness.toxiproxy import Stream, Toxic, ToxiproxyClient


def inject(fault: Fault, key: int, context: FaultContext) -> ActiveFault:
    """Apply `fault`; `key` identifies this application (rule tags, toxic names)."""
    if isinstance(fault, LinkFaultBase):
        return _inject_link_fault(fault, key, context)
    match fault:
        case KillFault():
            return _kill(fault, context)
        case RestartFault():
            return _restart(fault, context)
        case PauseFault():
            return _pause(fault, context)
        case ClockSkewFault():
            return _clock_skew(fault, context)
        case PacketLossFault():
            return _packet_loss(fault, key, context)
        case PartitionFault():
            return _partition(fault, key, context)
    raise BackendError(f"no injector for fault type {fault.type!r}")


def _targets(target: Target, context: FaultContext) -> list[str]:
    return resolve_target(target, context.plan, context.leader_lookup, context.random)


def _kill(fault: KillFault, context: FaultContext) -> ActiveFault:
    names = _targets(fault.target, context)
    for name in names:
        context.backend.kill(name)

    def restart_all() -> None:
        for name in names:
            context.backend.start(name)
        for name in names:
            context.backend.wait_healthy(name)

    return SimpleActiveFault(names, {"signal": "SIGKILL"}, restart_all)


def _restart(fault: RestartFault, context: FaultContext) -> ActiveFault:
    names = _targets(fault.target, context)
    for name in names:
        context.backend.restart(name)
    return SimpleActiveFault(names, {"how": "SIGTERM, start, wait healthy"})


def _pause(fault: PauseFault, context: FaultContext) -> ActiveFault:
    names = _targets(fault.target, context)
    for name in names:
        context.backend.pause(name)

    def resume_all() -> None:
        for name in names:
            context.backend.resume(name)

    return SimpleActiveFault(names, {"signal": "SIGSTOP"}, resume_all)


def _clock_skew(fault: ClockSkewFault, context: FaultContext) -> ActiveFault:
    clock = context.clock
    if clock is None:
        raise BackendError("this backend cannot move a service's clock")
    names = _targets(fault.target, context)
    for name in names:
        clock.set_clock_offset(name, fault.offset_ms)

    def reset_clocks() -> None:
        for name in names:
            clock.set_clock_offset(name, 0)

    return SimpleActiveFault(names, {"offset_ms": fault.offset_ms}, reset_clocks)


def _packet_loss(fault: PacketLossFault, key: int, context: FaultContext) -> ActiveFault:
    from harness.faults.network import inject_packet_loss

    names = _targets(fault.target, context)
    if len(names) != 1:
        raise BackendError(f"packet_loss takes one service, the selector gave {names}")
    host = context.plan.services[names[0]].host
    return inject_packet_loss(context.run_id, key, names[0], host, fault.percent)


def partition_groups(fault: PartitionFault, context: FaultContext) -> list[list[str]]:
    """Resolve groups in order; a service already placed is skipped later, so
    `[[minority], [all]]` splits the cluster into a minority and the rest."""
    if fault.isolate is not None:
        isolated = _targets(fault.isolate, context)
        role = context.plan.services[isolated[0]].role
        rest = [s.name for s in context.plan.with_role(role) if s.name not in isolated]
        return [isolated, sorted(rest)]
    placed: set[str] = set()
    groups: list[list[str]] = []
    for group in fault.groups or []:
        members: list[str] = []
        for target in group:
            for name in _targets(target, context):
                if name not in placed:
                    placed.add(name)
                    members.append(name)
        groups.append(members)
    return groups


def _partition(fault: PartitionFault, key: int, context: FaultContext) -> ActiveFault:
    from harness.faults.network import inject_partition

    groups = partition_groups(fault, context)
    hosts = [[(name, context.plan.services[name].host) for name in group] for group in groups]
    return inject_partition(context.run_id, key, hosts)


# -- link faults through Toxiproxy ---------------------------------------------------------------


def _toxic_attributes(fault: LinkFaultBase) -> tuple[str, dict[str, int | float]]:
    match fault:
        case LatencyFault():
            return "latency", {"latency": fault.latency_ms, "jitter": fault.jitter_ms}
        case BandwidthFault():
            return "bandwidth", {"rate": fault.rate_kb_per_s}
        case TimeoutFault():
            return "timeout", {"timeout": fault.timeout_ms}
        case ResetPeerFault():
            return "reset_peer", {"timeout": fault.timeout_ms}
        case SlicerFault():
            return "slicer", {
                "average_size": fault.average_size,
                "size_variation": fault.size_variation,
                "delay": fault.delay_us,
            }
    raise BackendError(f"{type(fault).__name__} is not a toxic")


def _inject_link_fault(fault: LinkFaultBase, key: int, context: FaultContext) -> ActiveFault:
    client = context.toxiproxy
    if client is None:
        raise BackendError("link faults need Toxiproxy, and this topology has none")
    links = resolve_link(fault.link, context.plan, context.leader_lookup, context.random)
    if isinstance(fault, LinkDownFault):
        for link in links:
            client.set_enabled(link, False)
        return SimpleActiveFault(
            links, {"enabled": False}, _each(links, lambda link: client.set_enabled(link, True))
        )
    toxic_type, attributes = _toxic_attributes(fault)
    streams: list[Stream] = ["upstream", "downstream"] if fault.stream == "both" else [fault.stream]
    toxics = [
        Toxic(
            name=f"hftchaos-{context.run_id}-{key}-{stream}",
            type=toxic_type,
            stream=stream,
            attributes=attributes,
        )
        for stream in streams
    ]
    for link in links:
        for toxic in toxics:
            client.add_toxic(link, toxic)
    return SimpleActiveFault(
        links,
        {"toxic": toxic_type, "streams": streams, "attributes": attributes},
        _each(links, lambda link: _remove_toxics(client, link, toxics)),
    )


def _remove_toxics(client: ToxiproxyClient, link: str, toxics: list[Toxic]) -> None:
    present = client.toxics(link)
    for toxic in toxics:
        if toxic.name in present:
            client.remove_toxic(link, toxic.name)


def _each(items: list[str], action: Callable[[str], object]) -> Callable[[], None]:
    def run() -> None:
        for item in items:
            action(item)

    return run
