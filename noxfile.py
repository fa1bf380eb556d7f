"""Developer and CI entry points. `nox -s tests` is what CI runs; `nox -s demo` is the main job."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
# uv makes each session's virtualenv and installs in seconds; plain virtualenv where it is absent.
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"


# Debian packages the sessions need, by the command that shows each is there: kernel-level
# faults need iptables; the report and dashboard tests open pages in headless Chromium; the
# fault actuation bench watches rules go in with `nft monitor`.
SYSTEM_PACKAGES = {
    "iptables": ("iptables",),
    "nft": ("nftables",),
    "chromium": ("chromium", "chromium-driver"),
}


def install_system_packages(session: nox.Session, commands: tuple[str, ...]) -> None:
    missing = [
        package
        for command in commands
        if not shutil.which(command)
        for package in SYSTEM_PACKAGES[command]
    ]
    if not missing or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    session.run("apt-get", "update", "-qq", external=True)
    session.run("apt-get", "install", "-y", "-qq", *missing, external=True)


def install_with_toolchain(
    session: nox.Session, extras: str, commands: tuple[str, ...] = ("iptables",)
) -> None:
    install_system_packages(session, commands)
    # pip too: uv's virtualenvs have none, and the Docker images' wheels are fetched with the
    # session's own pip (harness/images/wheels.py).
    session.install("pip", "-e", f".[{extras}]")
    # Toxiproxy (go install), Kafka jars (Maven) and libfaketime, cached under .cache/hftchaos.
    session.run("hftchaos", "setup")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The suite CI runs: unit tests, integration tests on the real reference topology, and
    Docker backend tests (docker.io and debootstrap installed when missing, dockerd started
    when no engine answers, the base image and images made: `hftchaos setup --docker`, cached
    on one machine). Full scenario runs on Docker are a long suite of their own (`nox -s
    docker`), as are the other suites of several whole runs each (`nox -s long`). Without root
    there is no Docker engine to start, and the Docker tests are left out, said in a warning."""
    install_with_toolchain(session, "test", ("iptables", "nft", "chromium"))
    marks: tuple[str, ...] = ("-m", "not docker_long and not long")
    if os.geteuid() == 0:
        session.run("hftchaos", "setup", "--docker")
    else:
        session.warn("not root: no Docker engine can be started, so the Docker tests are left out")
        marks = ("-m", "not docker and not long")
    if session.posargs:  # the tests asked for, as asked
        session.run("pytest", "-ra", "--durations=15", *marks, *session.posargs)
        return
    # The unit tests are pure logic: spread over every core. The integration tests time real
    # processes to the millisecond: one at a time, with the machine to themselves.
    session.run("pytest", "-ra", "--durations=10", "-n", "auto", *marks, "tests/unit")
    session.run("pytest", "-ra", "--durations=15", *marks, "tests/integration")


@nox.session(python=PYTHON)
def long(session: nox.Session) -> None:
    """The long end-to-end suites CI leaves out (marker `long`, about four minutes): releases
    compared (six runs on two topologies), `hftchaos run` in network namespaces (SIGTERM mid-
    partition too), a broker killed in a three-broker Kafka. Best on a quiet machine."""
    install_with_toolchain(session, "test")
    session.run("pytest", "-ra", "--durations=15", "-m", "long", *session.posargs)


@nox.session(python=PYTHON)
def docker(session: nox.Session) -> None:
    """Every Docker backend test, the library's scenarios on Docker included (`hftchaos setup
    --docker` first, as in `tests`). A scenario or the nightly suite runs there with
    `--backend docker` (`nox -s nightly -- --backend docker`)."""
    install_with_toolchain(session, "test")
    session.run("hftchaos", "setup", "--docker")
    session.run("pytest", "-ra", "--durations=15", "-m", "docker", *session.posargs)


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """Unit tests only (no processes, seconds)."""
    session.install("-e", ".[test]")
    session.run("pytest", "-ra", "-n", "auto", "-m", "not integration", *session.posargs)


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """The hostile-input properties with many more examples than CI runs (profile "fuzz" of
    tests/conftest.py: 2,000 per property, new ones each time, failures kept in .hypothesis/
    and tried first next time). Arguments after `--` go to pytest, e.g. `-x` or `-k alias`."""
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "-ra",
        "--timeout=3600",
        "tests/unit/test_hostile_fuzz.py",
        *session.posargs,
        env={"HFTCHAOS_HYPOTHESIS_PROFILE": "fuzz"},
    )


@nox.session(python=PYTHON)
def heal(session: nox.Session) -> None:
    """The harness SIGKILLed during every fault kind of the registry, then `hftchaos heal`:
    the machine must equal its snapshot from before (part of `tests` too; about a minute)."""
    install_with_toolchain(session, "test")
    session.run(
        "pytest",
        "-ra",
        "tests/integration/test_heal_after_sigkill.py",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("-e", ".[lint,test]")  # mypy checks the code that imports selenium too
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: the reference topology on the local backend, order flow through it, the
    Raft leader SIGKILLed, failover, recovery and downtime judged against the leader-kill
    scenario's SLOs through the same pipeline as `hftchaos run` (`hftchaos demo`)."""
    install_with_toolchain(session, "test")
    # The scenario's verdict is the demo's result, printed with its figures; an SLO or a
    # steady-state window it misses (exit 1) is not a failure of the job. Bad input (2), a
    # harness error or a process left behind (3) is.
    session.run("hftchaos", "demo", *session.posargs, success_codes=[0, 1])


@nox.session(python=PYTHON)
def scenarios(session: nox.Session) -> None:
    """The long suite: every scenario of the library, each on a fresh reference topology.
    Continues past failures and fails at the end if any scenario did."""
    install_with_toolchain(session, "test")
    files = session.posargs or sorted(str(path) for path in Path("scenarios").glob("*.yaml"))
    failed = []
    for file in files:
        try:
            session.run("hftchaos", "run", file)
        except nox.command.CommandFailed:
            failed.append(file)
    if failed:
        session.error(f"{len(failed)} of {len(files)} scenarios failed: {', '.join(failed)}")


@nox.session(python=PYTHON)
def nightly(session: nox.Session) -> None:
    """The nightly suite: every scenario, JUnit XML and a suite report under results/suites/,
    then the dashboard site (results/dashboard/index.html) built from the results catalog.
    `nox -s nightly -- --release LABEL` labels the runs."""
    install_with_toolchain(session, "test")
    try:
        session.run(
            "hftchaos",
            "suite",
            "scenarios/suites/nightly.yaml",
            "--junit",
            "results/junit/nightly.xml",
            *session.posargs,
        )
    finally:
        # The dashboard shows a failed night too: that is when people look at it.
        session.run("hftchaos", "dashboard")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Every benchmark in one go (`hftchaos bench`): the load path against Vegeta on a static
    nginx, the reference order path at rising rates, what judging, status requests and
    libfaketime cost, and the harness's own cost (topology up and down, its CPU during a
    run, a suite's time over its scenarios'); one JSON under results/bench/
    and a table. Vegeta (go install) and nginx (apt-get) are provisioned by the bench itself.
    Arguments after `--` go to `hftchaos bench`, e.g. `--quick`, `--only load_path`,
    `--baseline results/bench/<older>.json`. HFTCHAOS_BENCH_PROFILE=1 adds py-spy flame graphs
    of the reference order path's leader and gateway."""
    install_with_toolchain(session, "test,bench", ("iptables", "nft"))
    # benchmarks.docker_actuation (Docker backend) runs on its own: it needs `setup --docker`.
    session.run("hftchaos", "bench", *session.posargs)


@nox.session(python=PYTHON)
def examples(session: nox.Session) -> None:
    """The worked examples on real third-party systems (targets/examples/), minutes each:
    builds them first (`hftchaos setup --example NAME`, go install), then runs
    tests/examples/, which the CI `tests` session does not collect. `-- -k NAME` picks one."""
    install_with_toolchain(session, "test")
    session.run("hftchaos", "setup", "--example", "nats")
    session.run("hftchaos", "setup", "--example", "etcd")
    session.run(
        "pytest",
        "-ra",
        "-s",
        "--timeout=1800",
        "tests/examples",
        *session.posargs,
        env={"HFTCHAOS_EXAMPLES": "1"},
    )
