"""Effects of kernel network faults (partition, packet_loss): the kernel's own per-rule
counters, read where the backend put the rules (NetworkControl.rule_counters). Right after
injection the fault's rules must be in the kernel; just before the heal they must have
matched (dropped) at least one packet. A rule that matched nothing did nothing: the usual
cause is a program whose connections do not come from its own address (every peer
connection from 127.0.0.1), which rules on that address never see.
"""

from __future__ import annotations

from harness.faults import netfilter
from harness.faults.effects import (
    Effect,
    EffectRequest,
    EffectWatch,
    effective,
    not_effective,
)


class CounterWatch:
    def __init__(self, request: EffectRequest) -> None:
        # The tag the kind's rules carry, computed from the run and key rather than read from
        # the fault's own detail: a fault that added nothing has no detail to trust.
        self._tag = netfilter.make_tag(request.context.run_id, request.key)
        self._rules_at_injection = 0
        # Where the backend put them: the host's tables, or each container's namespace.
        network = request.context.network
        self._counters = network.rule_counters if network else netfilter.rule_counters

    def injected(self) -> None:
        self._rules_at_injection = len(self._counters(self._tag))

    def judge(self) -> Effect:
        counted = self._counters(self._tag)
        return judge_counters(self._tag, self._rules_at_injection, counted)


def judge_counters(
    tag: str, rules_at_injection: int, counted: list[netfilter.CountedRule]
) -> Effect:
    """Pure: the effect told by the rules found at injection and their counters at the heal."""
    rules = [
        {"rule": item.rule.text(), "packets": item.packets, "bytes": item.bytes} for item in counted
    ]
    dropped = sum(item.packets for item in counted)
    evidence: dict[str, object] = {"tag": tag, "packets_dropped": dropped, "rules": rules}
    if rules_at_injection == 0:
        return not_effective(
            f"no kernel rule tagged {tag} was in place after injection", **evidence
        )
    if not counted:
        return not_effective(f"the rules tagged {tag} were gone before the heal", **evidence)
    if dropped == 0:
        return not_effective(
            f"none of its {len(counted)} kernel rules matched a packet during the fault: the "
            "targets' traffic does not use their own address (connections from 127.0.0.1?); "
            "make the program bind its own address, or use a Toxiproxy link fault",
            **evidence,
        )
    return effective(f"{dropped} packets dropped by {len(counted)} kernel rules", **evidence)


def watch_counters(request: EffectRequest) -> EffectWatch:
    return CounterWatch(request)
