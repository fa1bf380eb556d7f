"""`hftchaos` command line. Exit codes: 0 pass, 1 an SLO or check failed, 2 bad input,
3 harness or environment error, 130 interrupted."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from harness.backends.registry import add_backend_option
from harness.consoles import make_console
from harness.errors import EXIT_ENVIRONMENT, EXIT_OK, HarnessError
from harness.lifecycle import Interrupted, stop_signals_raise
from harness.memory import prefer_system_allocator
from harness.paths import DEMO_SCENARIO, REFERENCE_TOPOLOGY

if TYPE_CHECKING:
    from harness.runner import RunResult

console = make_console()
error_console = make_console(stderr=True)

EXIT_INTERRUPTED = 130


def _report(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}")


def command_setup(arguments: argparse.Namespace) -> int:
    from harness.toolchain import ensure_toolchain

    if arguments.example:
        return _setup_example(arguments.example)
    started = time.monotonic()
    toolchain = ensure_toolchain(lambda item, message: _report(f"[bold]{item}[/]: {message}"))
    _report(f"toolchain ready in {time.monotonic() - started:.1f}s")
    for item, path in (
        ("toxiproxy", toolchain.toxiproxy_server),
        ("kafka", toolchain.kafka_libs),
        ("libfaketime", toolchain.libfaketime),
        ("java", toolchain.java),
    ):
        console.print(f"  {item:12} {path}")
    if arguments.docker:
        _setup_docker()
    return EXIT_OK


def _setup_docker() -> None:
    """docker.io and debootstrap when missing, an engine, the base image and the images."""
    from harness import settings
    from harness.backends.docker.daemon import ensure_engine, install_packages
    from harness.commands.images import build
    from harness.images.base import make_base_image

    install_packages(_report)
    client = ensure_engine(_report)
    if settings.BASE_IMAGE.read() is None:  # a base of the user's own needs no making
        make_base_image(client, _report)
    build(client, None, None)


def _setup_example(name: str) -> int:
    from harness.toolchain._examples import ensure_example

    started = time.monotonic()
    _report(f"[bold]{escape(name)}[/]: checking the cached build (a first build takes minutes)")
    binary, built = ensure_example(name)
    verb = "built" if built else "cached"
    _report(f"[bold]{escape(name)}[/]: {verb} {binary} in {time.monotonic() - started:.1f}s")
    return EXIT_OK


def command_up(arguments: argparse.Namespace) -> int:
    from harness.running_topologies import open_local_backend, prepare_up_dir, start_detached
    from harness.status_view import status_table
    from harness.topology.loader import load_topology
    from harness.topology.plan import check_plan

    topology_file = Path(arguments.topology)
    loaded = load_topology(topology_file)
    check_plan(loaded)  # an unknown placeholder is refused before any folder is touched
    name = loaded.topology.name
    if arguments.detach:
        run_dir = start_detached(topology_file, name)
        _report(
            f"topology {name} is up; logs in {escape(str(run_dir / 'logs'))}; "
            "stop with `hftchaos down`"
        )
        return EXIT_OK
    run_dir = prepare_up_dir(name)
    with open_local_backend(topology_file, run_dir, _report) as backend:
        backend.up()
        from harness.running_topologies import read_running

        running = read_running(name)
        if running:
            console.print(status_table(running.state))
        _report("up; Ctrl-C or `hftchaos down` stops and tears everything down")
        while True:
            time.sleep(1)


def command_status(arguments: argparse.Namespace) -> int:
    from harness.running_topologies import chosen_topology, read_running, topologies_up
    from harness.status_view import status_table

    if arguments.name is None and not topologies_up():
        console.print("no topology is up")
        return EXIT_OK
    name = chosen_topology(arguments.name)
    running = read_running(name)
    if running is None or not running.supervisor_alive():
        console.print(f"topology {escape(repr(name))} is not up")
        return EXIT_OK
    console.print(status_table(running.state))
    return EXIT_OK


def command_down(arguments: argparse.Namespace) -> int:
    from harness.running_topologies import bring_down, chosen_topology

    name = chosen_topology(arguments.name)
    swept = bring_down(name)
    if swept:
        _report(f"killed leftover services: {escape(', '.join(swept))}")
    _report(f"topology {escape(repr(name))} is down")
    return EXIT_OK


def command_validate(arguments: argparse.Namespace) -> int:
    from harness.errors import EXIT_BAD_INPUT, InputError
    from harness.scenario.loader import load_scenario

    failed = 0
    for file in arguments.files:
        try:
            loaded = load_scenario(Path(file))
        except InputError as error:  # its topology's errors too: check the remaining files
            error_console.print(f"[bold red]invalid:[/] {escape(str(error))}", soft_wrap=True)
            failed += 1
            continue
        faults = len(loaded.scenario.faults)
        console.print(
            f"[green]ok[/] {escape(file)}: {escape(loaded.scenario.name)} ({faults} faults)"
        )
    return EXIT_BAD_INPUT if failed else EXIT_OK


def command_schema(arguments: argparse.Namespace) -> int:
    from harness.scenario.schema import write_schema
    from harness.store.summary import write_summary_schema

    write_schema(Path(arguments.output))
    console.print(f"wrote {arguments.output}")
    write_summary_schema(Path(arguments.summary_output))
    console.print(f"wrote {arguments.summary_output}")
    return EXIT_OK


def command_run(arguments: argparse.Namespace) -> int:
    if arguments.dry_run:
        from harness.backends.registry import chosen_backend
        from harness.dry_run import print_dry_run
        from harness.scenario.loader import load_scenario

        loaded = load_scenario(Path(arguments.scenario))
        backend = chosen_backend(arguments.backend, loaded.topology.topology.backend)
        print_dry_run(console, loaded, backend)
        return EXIT_OK
    return _run_and_print(arguments).exit_code


def _run_and_print(arguments: argparse.Namespace) -> RunResult:
    from harness.console_result import print_result
    from harness.history import EventBus
    from harness.live import LiveView
    from harness.run_parts import LeaderWatch
    from harness.runner import run_scenario

    file = Path(arguments.scenario)

    def live(bus: EventBus, probe: LeaderWatch) -> LiveView:
        view = LiveView(console, f"scenario {file.stem}", probe.leader)
        bus.subscribe(view.listen)
        return view

    result = run_scenario(file, arguments.release, _report, live, backend=arguments.backend)
    print_result(console, result)
    return result


def command_sweep(_arguments: argparse.Namespace) -> int:
    from harness.faults.netfilter import require_netfilter
    from harness.faults.stale import sweep_dead_runs

    require_netfilter()
    removed = sweep_dead_runs()
    _report(escape(f"healed {len(removed)} runs whose harness died {removed or ''}".rstrip()))
    _sweep_docker()
    return EXIT_OK


def _sweep_docker() -> None:
    """Containers and networks of dead Docker runs, when an engine answers (else nothing)."""
    from harness.backends.docker.leftovers import sweep_engine

    runs = sweep_engine()
    _report(f"removed the containers and networks of {len(runs)} dead Docker runs {runs or ''}")


# Commands that heal dead runs themselves, or must not touch the machine at all.
NO_HEAL_NOTICE = {"heal", "sweep", "validate", "schema"}


def notice_unfinished_runs() -> None:
    """A harness SIGKILLed mid-fault ran no `finally`: the next command heals what its run
    left (from its journal), one line per run, and never fails because of it."""
    try:
        from harness.faults.journal_heal import describe_heal
        from harness.faults.stale import heal_unfinished

        for outcome in heal_unfinished("the next hftchaos command"):
            error_console.print(describe_heal(outcome), markup=False, soft_wrap=True)
    except Exception as error:  # healing is a courtesy here; `hftchaos heal` says more
        error_console.print(
            f"could not check for runs left unhealed ({type(error).__name__}: {error}); "
            "run `hftchaos heal`",
            markup=False,
        )


def command_demo(arguments: argparse.Namespace) -> int:
    """The main job: a leader-kill scenario through the same pipeline as `hftchaos run`
    (order flow, executions through Kafka to the consumer, the leader SIGKILLed, failover
    and recovery judged against its SLOs), then proof that no process of the run was left."""
    from harness.run_marker import processes_of_run

    result = _run_and_print(arguments)
    survivors = processes_of_run(result.run_dir)
    if survivors:
        names = ", ".join(f"{process.pid} {process.name()}" for process in survivors)
        error_console.print(f"processes of the run outlived it: {names}", markup=False)
        return EXIT_ENVIRONMENT
    _report("torn down: no process of the run is left")
    return result.exit_code


# Commands that live in their own modules under harness/commands/: each module has
# `configure(parser)` to add its arguments and `run(arguments) -> int`. Only the chosen
# command's module is imported, so `hftchaos validate` or `run` does not pay for pandas,
# numpy or matplotlib it does not use (0.4 s of every invocation, measured).
MODULE_COMMANDS = (
    ("heal", "undo what runs whose harness was killed left behind (rules, toxics, clocks...)"),
    ("report", "write report.html for a finished run"),
    ("replay", "replay a finished run from what it left on disk (the reference: each journal)"),
    ("suite", "run a suite of scenarios; JUnit XML and a suite report"),
    ("runs", "list and filter the runs in the results catalog"),
    ("compare", "compare recovery between two releases; non-zero exit on a regression"),
    ("dashboard", "build the static dashboard site from the results catalog"),
    ("images", "the Docker backend's images: make the base image, build the rest"),
    ("bench", "run the benchmarks (results/bench/<stamp>.json), or --compare two of them"),
)


def _module_command(name: str) -> Any:
    return importlib.import_module(f"harness.commands.{name}")


def _run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("scenario", metavar="FILE", help="scenario YAML file")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved timeline, targets and effect checks; start and write nothing",
    )
    _add_run_options(run)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that runs a scenario, declared once."""
    parser.add_argument("--release", default=None, help="label the run with a release name")
    add_backend_option(parser)


def _configure_setup(setup: argparse.ArgumentParser) -> None:
    setup.add_argument(
        "--docker",
        action="store_true",
        help="also get the Docker backend ready: docker.io and debootstrap when missing, "
        "dockerd started when none answers, the base image and the images built",
    )
    setup.add_argument(
        "--example",
        default=None,
        help="instead, build a worked example's third-party system (targets/examples/): nats",
    )


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """Every command; the options of a module command only when it is `chosen` (or when no
    command is chosen, as for the tests that read the whole parser)."""
    parser = argparse.ArgumentParser(
        prog="hftchaos", description="Chaos and resilience harness for low-latency trading systems"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    setup = add("setup", command_setup, "provision Toxiproxy, Kafka and libfaketime into the cache")
    _configure_setup(setup)
    up = add("up", command_up, "bring a topology up and keep it running until Ctrl-C or `down`")
    up.add_argument("--topology", default=str(REFERENCE_TOPOLOGY), help="topology YAML file")
    up.add_argument("--detach", action="store_true", help="run the supervisor in the background")
    for name, handler, text in (
        ("status", command_status, "show the services of a running topology"),
        ("down", command_down, "stop a topology started with `up`"),
    ):
        sub = add(name, handler, text)
        sub.add_argument(
            "--name",
            default=None,
            help="topology name (default: the one topology that is up, else reference)",
        )
    _run_arguments(add("run", command_run, "run a failure scenario and judge it against its SLOs"))
    add("sweep", command_sweep, "heal runs whose harness was killed (as `hftchaos heal`)")
    validate = add("validate", command_validate, "check scenario files without running them")
    validate.add_argument("files", nargs="+", metavar="FILE")
    schema = add(
        "schema", command_schema, "write the JSON Schemas of scenario files and run summaries"
    )
    schema.add_argument("--output", default="scenarios/scenario.schema.json")
    schema.add_argument(
        "--summary-output",
        default="results/summary.schema.json",
        help="where the schema of summary.json goes (default results/summary.schema.json)",
    )
    demo = add(
        "demo",
        command_demo,
        "run the leader-kill scenario on the reference topology and prove nothing was left",
    )
    demo.add_argument(
        "scenario", nargs="?", default=str(DEMO_SCENARIO), metavar="FILE", help="scenario file"
    )
    _add_run_options(demo)
    for name, text in MODULE_COMMANDS:
        if chosen not in (None, name):
            add(name, _unconfigured, text)  # listed in --help; never run unconfigured
            continue
        module = _module_command(name)
        module.configure(add(name, module.run, text))
    return parser


def _unconfigured(_arguments: argparse.Namespace) -> int:
    raise AssertionError("a module command runs only from a parser built for it")


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The command word: the first argument that is not an option (the top-level parser has
    no option that takes a value, so no value can be mistaken for it)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    arguments = build_parser(_chosen_command(words) or "").parse_args(words)
    prefer_system_allocator()
    try:
        with stop_signals_raise():
            if arguments.command not in NO_HEAL_NOTICE and not getattr(arguments, "dry_run", 0):
                notice_unfinished_runs()
            code: int = arguments.handler(arguments)
            return code
    except HarnessError as error:
        error_console.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
        return error.exit_code
    except (KeyboardInterrupt, Interrupted) as stop:
        error_console.print(
            f"[yellow]interrupted[/] ({stop or 'Ctrl-C'}); everything was torn down"
        )
        return EXIT_INTERRUPTED
    except Exception:  # a bug in the harness: say so, keep the evidence
        error_console.print("[bold red]internal error[/] (a bug in hftchaos):")
        error_console.print(traceback.format_exc(), markup=False)
        return EXIT_ENVIRONMENT


if __name__ == "__main__":
    sys.exit(main())
