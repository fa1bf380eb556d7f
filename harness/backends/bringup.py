"""The start-order rules every backend follows: services in dependency order, the services
of one `group` started together and then waited for together, a job waited to its end, every
other service waited healthy; Toxiproxy's links created as soon as it is
up; then, for a Raft cluster, a leader elected."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from rich.markup import escape

from harness.backends.health import wait_for_raft_leader
from harness.topology.plan import Plan, link_owner
from harness.toxiproxy import ToxiproxyClient

Report = Callable[[str], None]
LEADER_TIMEOUT_S = 30


class Starting(Protocol):
    plan: Plan

    def start(self, name: str) -> None: ...

    def wait_healthy(self, name: str, timeout_s: float | None = None) -> None: ...

    def wait_job(self, name: str) -> None: ...


def bring_up(backend: Starting, report: Report) -> None:
    plan = backend.plan
    # A group's services all start before any is waited for: a quorum member may answer its
    # health check only once the others run.
    for step in plan.start_steps:
        started = time.monotonic()
        for name in step:
            backend.start(name)
        for name in step:
            if plan.services[name].kind == "job":
                backend.wait_job(name)
            else:
                backend.wait_healthy(name)
            if name == plan.toxiproxy:
                create_proxies(plan)
            report(f"{escape(name)} ready in {time.monotonic() - started:.1f}s")
    for cluster in plan.raft_clusters():
        members = plan.raft_members(cluster)
        statuses = {m.name: m.raft for m in members if m.raft}
        leader = wait_for_raft_leader(statuses, timeout_s=LEADER_TIMEOUT_S)
        report(f"raft leader elected in {escape(cluster)}: {escape(str(leader))}")


def create_proxies(plan: Plan) -> None:
    """One Toxiproxy proxy per link, listening where the link's source dials it."""
    assert plan.toxiproxy is not None
    proxy = plan.services[plan.toxiproxy]
    client = ToxiproxyClient(proxy.address("api"))  # brackets an IPv6 host itself
    for link in plan.links.values():
        plan.reservations.release(link_owner(link.name))
        client.create_proxy(link.name, link.listen_address, link.upstream_address)
