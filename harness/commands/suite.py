"""`hftchaos suite FILE`: run a suite of scenarios in order, continue past failures, and
write suite.json, JUnit XML and suite-report.html under <results>/suites/<name>/<stamp>/.

Exit codes: 0 every run valid, 1 a run failed or erred, 2 a bad suite or scenario file,
3 a harness error stopped the suite, 130 interrupted (what finished is written first)."""

from __future__ import annotations

import argparse
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from harness.backends.registry import add_backend_option
from harness.consoles import make_console

# The parser of every `hftchaos` command imports this module: what running a suite needs
# (the runner, pandas, matplotlib) is imported when a suite runs, not here.
if TYPE_CHECKING:
    from harness.suite.runner import RunOne, SuiteResult
    from harness.suite.shared_topology import SharedTopology

# Output going to a CI log is not cut to rich's default of 80 columns.
PIPED_WIDTH = 160
console = make_console()
if not console.is_terminal:
    console = make_console(width=PIPED_WIDTH)
STATE_STYLE = {"passed": "green", "failed": "bold red", "error": "red"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", metavar="FILE", help="suite YAML file")
    parser.add_argument("--release", default=None, help="release label (default: the suite's)")
    parser.add_argument(
        "--junit", default=None, metavar="PATH", help="also write the JUnit XML here (for CI)"
    )
    add_backend_option(parser)


def _say(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}")


def scenario_runner(
    release: str | None, backend: str | None = None, shared: SharedTopology | None = None
) -> RunOne:
    """Each repeat is an `hftchaos run` with its own run directory and live view, on a fresh
    topology, or on the `shared` one when the suite keeps one up."""
    from harness.history import EventBus
    from harness.live import LiveView
    from harness.run_parts import LeaderWatch
    from harness.runner import RunResult, run_scenario
    from harness.suite.loader import PlannedScenario

    def run_one(planned: PlannedScenario, repeat: int) -> RunResult:
        def live(bus: EventBus, probe: LeaderWatch) -> LiveView:
            view = LiveView(console, f"scenario {planned.name} [{repeat}]", probe.leader)
            bus.subscribe(view.listen)
            return view

        if shared is None:
            return run_scenario(planned.file, release, _say, live, backend=backend)
        try:
            running = shared.for_scenario(planned.file)
            earlier = shared.earlier_requests()
            result = run_scenario(
                planned.file,
                release,
                _say,
                live,
                running,
                backend=backend,
                earlier_requests=earlier,
            )
        except BaseException:
            shared.discard()
            raise
        if result.errors:
            shared.discard()
        else:
            shared.ran(result)
        return result

    return run_one


def run(arguments: argparse.Namespace) -> int:
    from harness.suite.loader import load_suite
    from harness.suite.output import new_suite_dir
    from harness.suite.runner import run_suite

    loaded = load_suite(Path(arguments.suite))
    release = arguments.release or loaded.suite.release
    suite_dir = new_suite_dir(loaded.suite.name)
    _say(
        escape(
            f"suite {loaded.suite.name}: {loaded.total_runs} runs of {len(loaded.scenarios)} "
            f"scenarios, release {release or '(none)'}; output in {suite_dir}"
        )
    )
    with ExitStack() as stack:
        shared = None
        if loaded.suite.share_topology:
            from harness.suite.shared_topology import SharedTopology

            shared = stack.enter_context(SharedTopology(suite_dir, _say, arguments.backend))
        runner = scenario_runner(release, arguments.backend, shared)
        result = run_suite(loaded, release, runner, _say)
    write_outputs(result, suite_dir, Path(arguments.junit) if arguments.junit else None)
    print_summary(result, suite_dir)
    if result.interrupted_by is not None:
        raise result.interrupted_by  # the CLI reports it and exits 130
    return result.exit_code


def write_outputs(result: SuiteResult, suite_dir: Path, junit_copy: Path | None) -> None:
    """JUnit first (CI needs it most), then the report, then suite.json last: a suite
    directory with suite.json is complete. A broken report must not cost the other two."""
    from harness.paths import results_root
    from harness.suite.junit import write_junit
    from harness.suite.output import JUNIT_FILE, REPORT_FILE, point_suite_latest, write_suite_json

    root = results_root()
    junit = write_junit(result, suite_dir / JUNIT_FILE, suite_dir, root)
    if junit_copy is not None:
        junit_copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(junit, junit_copy)
    try:
        from harness.suite.report import write_suite_report

        write_suite_report(result, suite_dir, REPORT_FILE)
    except Exception as error:  # the figures are worth less than the verdicts
        _say(f"[bold red]could not write {REPORT_FILE}:[/] {escape(repr(error))}")
    write_suite_json(result, suite_dir, root)
    point_suite_latest(suite_dir)


def _first_failures(failures: list[str], shown: int = 2, width: int = 90) -> str:
    lines = [line if len(line) <= width else line[: width - 3] + "..." for line in failures]
    more = f" (+{len(lines) - shown} more)" if len(lines) > shown else ""
    return "\n".join(lines[:shown]) + more


def print_summary(result: SuiteResult, suite_dir: Path) -> None:
    from harness.suite.projection import availability, format_duration, project

    table = Table(title=escape(f"suite {result.name} ({result.status})"))
    for column in ("run", "class", "result", "downtime ms", "what broke"):
        table.add_column(column, overflow="fold")
    for outcome in result.outcomes:
        downtime = outcome.downtime_ms
        table.add_row(
            escape(outcome.case_name),
            outcome.fault_class,
            f"[{STATE_STYLE[outcome.state.value]}]{outcome.state.value}[/]",
            f"{downtime:.1f}" if downtime is not None else "-",
            escape(_first_failures(outcome.failures)),
        )
    console.print(table)
    projection = project(result.outcomes, result.loaded.suite.availability)
    measured = availability(result.outcomes)
    if measured is not None:
        console.print(f"availability over the suite: {measured:.5%}")
    for line in projection.explanation():
        console.print(escape(line))
    verdict = "within" if projection.within_budget else "[bold red]OVER[/]"
    console.print(
        f"projected annual downtime {format_duration(projection.annual_s)}: {verdict} the "
        f"budget of {format_duration(projection.budget_s)}"
    )
    if result.stopped_by:
        console.print(f"[bold red]suite stopped:[/] {escape(result.stopped_by)}")
    console.print(f"verdict: {result.verdict.value}  suite results: {escape(str(suite_dir))}")
