"""Link faults through Toxiproxy, shared by the toxic kinds: each names its toxic type and
attributes; the toxics are named after the run and fault so a sweep can find them."""

from __future__ import annotations

from collections.abc import Callable

from harness.errors import BackendError
from harness.faults.base import ActiveFault, FaultContext, SimpleActiveFault
from harness.faults.journal import RemoveToxics
from harness.faults.kinds._targets import journal_intent, toxiproxy_process
from harness.faults.selectors import resolve_link
from harness.scenario.fault_fields import LinkFaultBase
from harness.toxiproxy import Stream, Toxic, ToxiproxyClient


def links_of(fault: LinkFaultBase, context: FaultContext) -> tuple[ToxiproxyClient, list[str]]:
    client = context.toxiproxy
    if client is None:
        raise BackendError("link faults need Toxiproxy, and this topology has none")
    return client, resolve_link(fault.link, context.plan, context.leader_lookup, context.random)


def inject_toxic(
    fault: LinkFaultBase,
    key: int,
    context: FaultContext,
    toxic_type: str,
    attributes: dict[str, int | float],
) -> ActiveFault:
    client, links = links_of(fault, context)
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
    undo = RemoveToxics(
        api=client.api,
        server=toxiproxy_process(context),
        links=links,
        toxics=[toxic.name for toxic in toxics],
    )
    journal_intent(context, key, toxic_type, links, [undo])
    for link in links:
        for toxic in toxics:
            client.add_toxic(link, toxic)
    return SimpleActiveFault(
        links,
        {"toxic": toxic_type, "streams": streams, "attributes": attributes},
        each(links, lambda link: _remove_toxics(client, link, toxics)),
    )


def _remove_toxics(client: ToxiproxyClient, link: str, toxics: list[Toxic]) -> None:
    present = client.toxics(link)
    for toxic in toxics:
        if toxic.name in present:
            client.remove_toxic(link, toxic.name)


def each(items: list[str], action: Callable[[str], object]) -> Callable[[], None]:
    def run() -> None:
        for item in items:
            action(item)

    return run
