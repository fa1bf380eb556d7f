"""link_down: the Toxiproxy proxy of the link is disabled (connections refused and cut);
enabled again on heal."""

from __future__ import annotations

from typing import Literal

from harness.faults.base import ActiveFault, FaultContext, SimpleActiveFault
from harness.faults.classes import network_class
from harness.faults.effects_toxics import watch_link_down
from harness.faults.journal import EnableProxies
from harness.faults.kind import FaultKind
from harness.faults.kinds._targets import journal_intent, toxiproxy_process
from harness.faults.kinds._toxics import each, links_of
from harness.scenario.fault_fields import LinkFaultBase


class LinkDownFault(LinkFaultBase):
    type: Literal["link_down"]


def inject(fault: LinkDownFault, key: int, context: FaultContext) -> ActiveFault:
    client, links = links_of(fault, context)
    undo = EnableProxies(api=client.api, server=toxiproxy_process(context), links=links)
    journal_intent(context, key, "link_down", links, [undo])
    for link in links:
        client.set_enabled(link, False)
    return SimpleActiveFault(
        links, {"enabled": False}, each(links, lambda link: client.set_enabled(link, True))
    )


KIND = FaultKind(
    name="link_down",
    model=LinkDownFault,
    inject=inject,
    fault_class=network_class,
    watch_effect=watch_link_down,
)
