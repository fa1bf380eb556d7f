"""`hftchaos run --dry-run`: what a run would do, from the scenario and its topology alone.

The resolved timeline (each application and heal, with its offset from the start of the
load), the services or links each fault may land on (a leader or random selector is decided
at injection, so its candidates are listed), how each fault's effect will be checked, what
the run needs from the machine, and its abort conditions. Nothing is started, opened or
written: no process, no socket, no file under the results root.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.faults.registry import clock_controlled_services, needs_netfilter
from harness.scenario.fault_fields import FaultBase, LinkSelector, RoleSelector
from harness.scenario.loader import LoadedScenario
from harness.scenario.model import AbortConditions
from harness.timeline import schedule
from harness.topology.model import Topology

# The fault-effect checks live in their own package (issue 14's sibling work); until it is
# part of this build each fault says so instead of claiming a check.
EFFECTS_MODULE = "harness.faults.effects"


def describe_target(target: object, topology: Topology) -> str:
    if isinstance(target, RoleSelector):
        members = ", ".join(topology.services_with_role(target.role)) or "none"
        if target.select == "all":
            return f"every {target.role}: {members}"
        return f"the {target.select} {target.role} at injection, among {members}"
    if isinstance(target, LinkSelector):
        return f"links {target.source} -> ({describe_target(target.target, topology)})"
    if isinstance(target, str) and target in topology.links:
        link = topology.links[target]
        return f"link {target} ({link.source} -> {link.target})"
    return str(target)


def fault_targets(fault: FaultBase, topology: Topology) -> str:
    for field in ("target", "isolate", "link"):
        value = getattr(fault, field, None)
        if value is not None:
            prefix = "isolate " if field == "isolate" else ""
            return prefix + describe_target(value, topology)
    groups = getattr(fault, "groups", None) or []
    return " | ".join(
        "[" + "; ".join(describe_target(member, topology) for member in group) + "]"
        for group in groups
    )


def effect_check(fault: FaultBase) -> str:
    """How the run will verify that the fault took effect."""
    if importlib.util.find_spec(EFFECTS_MODULE) is not None:
        describe: Callable[[FaultBase], str] | None = getattr(
            importlib.import_module(EFFECTS_MODULE), "describe_check", None
        )
        if describe is not None:
            return describe(fault)
    return f"none in this build ({EFFECTS_MODULE} is missing)"


def describe_abort(conditions: AbortConditions) -> list[str]:
    lines = []
    if conditions.error_rate is not None:
        rule = conditions.error_rate
        lines.append(
            f"error rate above {rule.above:.0%} (over {rule.window_s:g} s) for {rule.for_s:g} s"
        )
    if conditions.probe_failing is not None:
        rule_probe = conditions.probe_failing
        lines.append(f"probe {rule_probe.probe} failing for {rule_probe.for_s:g} s")
    if conditions.max_duration_s is not None:
        lines.append(f"the run lasting {conditions.max_duration_s:g} s")
    return lines


def print_dry_run(console: Console, loaded: LoadedScenario, backend: str) -> None:
    scenario, topology = loaded.scenario, loaded.topology.topology
    load = scenario.load
    console.print(
        f"[bold]dry run[/] of {escape(scenario.name)} on topology {escape(topology.name)} "
        f"(backend {escape(backend)}): nothing is started or written"
    )
    console.print(
        f"load: {load.rate_per_s:g} orders/s for {load.duration_s:g} s "
        f"(warm-up {load.warmup_s:g} s)"
    )
    console.print(_timeline(loaded))
    needs = ["root and iptables (kernel rules)"] if needs_netfilter(scenario) else []
    clocks = sorted(clock_controlled_services(scenario, topology))
    needs += [f"clock control (libfaketime) on {', '.join(clocks)}"] if clocks else []
    console.print(f"needs: {escape('; '.join(needs) or 'nothing beyond the topology')}")
    stops = describe_abort(scenario.abort)
    console.print(f"aborts on: {escape('; '.join(stops) or 'no condition (runs to its end)')}")


def _timeline(loaded: LoadedScenario) -> Table:
    topology = loaded.topology.topology
    table = Table(title="timeline (seconds from the start of the load)")
    for column in ("at s", "step", "fault", "targets", "effect checked by"):
        table.add_column(column, overflow="fold")
    for step in schedule(loaded.scenario.faults):
        fault = loaded.scenario.faults[step.fault_index]
        repeat = f" (repeat {step.repeat + 1})" if fault.repeat else ""
        table.add_row(
            f"{step.offset_s:g}",
            step.action,
            escape(f"#{step.fault_index} {fault.type}{repeat}"),
            escape(fault_targets(fault, topology)),
            escape(effect_check(fault)) if step.action == "apply" else "",
        )
    return table
