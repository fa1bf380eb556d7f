"""`python -m targets.reference.engine`: run one engine node until SIGTERM (exit 0).

Every flag can also come from an environment variable (the flag wins); PROTOCOL.md lists them.
A bad flag is reported in one line on stderr with exit code 2; a port that cannot be bound or a
failed start, exit code 3.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

from pysyncobj import SyncObjException

from targets.reference import gc_log, heap
from targets.reference.bugs import SKIPPED_AFTER_FAILOVER, UnknownBugError, active_bugs
from targets.reference.engine.http_api import EngineHttpServer
from targets.reference.engine.node import EngineNode, NodeConfig, RaftTimings, ReplicatedEngine
from targets.reference.engine.publisher import ExecutionPublisher, kafka_producer

PROGRAM = "engine"
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_START_FAILED = 3
PRODUCER_FLUSH_S = 1.0


@dataclass(frozen=True)
class Option:
    flag: str
    env: str
    help: str
    default: str | None = None  # None: required


OPTIONS = (
    Option("--node-id", "ENGINE_NODE_ID", "this node's id, e.g. n1"),
    Option("--raft", "ENGINE_RAFT", "host:port this node's Raft server binds"),
    Option("--peers", "ENGINE_PEERS", "the other members: n2=host:port,n3=host:port"),
    Option("--http", "ENGINE_HTTP", "host:port of the status/command HTTP server"),
    Option("--data-dir", "ENGINE_DATA_DIR", "directory of the Raft journal and dump files"),
    Option("--kafka", "ENGINE_KAFKA", "Kafka bootstrap host:port; empty disables publishing", ""),
    Option("--topic", "ENGINE_TOPIC", "executions topic", "executions"),
    Option("--election-timeout-min-ms", "ENGINE_ELECTION_TIMEOUT_MIN_MS", "raftMinTimeout", "80"),
    Option("--election-timeout-max-ms", "ENGINE_ELECTION_TIMEOUT_MAX_MS", "raftMaxTimeout", "160"),
    Option(
        "--append-entries-period-ms",
        "ENGINE_APPEND_ENTRIES_PERIOD_MS",
        "appendEntriesPeriod (heartbeat)",
        "10",
    ),
    Option("--tick-ms", "ENGINE_TICK_MS", "autoTickPeriod", "2"),
    Option(
        "--leader-fallback-timeout-ms",
        "ENGINE_LEADER_FALLBACK_TIMEOUT_MS",
        "an isolated leader steps down after this long",
        "1000",
    ),
    Option(
        "--leader-stickiness-ms",
        "ENGINE_LEADER_STICKINESS_MS",
        "refuse pre-votes this long after a leader was heard from; empty: the minimum "
        "election timeout",
        "",
    ),
    Option(
        "--checkpoint-min-commands",
        "ENGINE_CHECKPOINT_MIN_COMMANDS",
        "append a checkpoint record of the state's changes once this many commands were "
        "applied since the last one; 0: never",
        "1000",
    ),
    Option(
        "--commit-timeout-ms",
        "ENGINE_COMMIT_TIMEOUT_MS",
        "how long a command waits for commit before answering unknown",
        "2000",
    ),
)


@dataclass(frozen=True)
class EngineSettings:
    node: NodeConfig
    http_address: tuple[str, int]
    kafka: str
    topic: str
    commit_timeout_s: float
    bugs: frozenset[str] = frozenset()  # deliberate bugs, from HFTCHAOS_REFERENCE_BUGS only


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _fail(message)


def _bind_error(address: str) -> str:
    """Why the Raft server could not bind, asked again as PySyncObj asks (it keeps the error
    to itself): the errno is what tells a held port from, say, an address not on this host."""
    host, _, port = address.rpartition(":")
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, int(port)))
    except (OSError, ValueError) as error:
        return str(error)
    finally:
        probe.close()
    return "it binds now: something held it while PySyncObj tried"


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    print(f"{PROGRAM}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def parse_settings(argv: list[str] | None = None) -> EngineSettings:
    parser = _OneLineParser(prog=f"python -m targets.reference.{PROGRAM}", description=__doc__)
    for option in OPTIONS:
        default = os.environ.get(option.env, option.default)
        parser.add_argument(option.flag, default=default, help=f"{option.help} [{option.env}]")
    values = {
        option.flag: getattr(parser.parse_args(argv), option.flag[2:].replace("-", "_"))
        for option in OPTIONS
    }
    missing = [f"{o.flag} ({o.env})" for o in OPTIONS if values[o.flag] is None]
    if missing:
        _fail(f"missing required {', '.join(missing)}")
    return _build_settings(values)


def _build_settings(values: dict[str, str]) -> EngineSettings:
    timings = RaftTimings(
        election_timeout_min_s=_milliseconds(values, "--election-timeout-min-ms"),
        election_timeout_max_s=_milliseconds(values, "--election-timeout-max-ms"),
        append_entries_period_s=_milliseconds(values, "--append-entries-period-ms"),
        tick_s=_milliseconds(values, "--tick-ms"),
        leader_fallback_timeout_s=_milliseconds(values, "--leader-fallback-timeout-ms"),
        leader_stickiness_s=(
            _milliseconds(values, "--leader-stickiness-ms")
            if values["--leader-stickiness-ms"].strip()
            else None
        ),
    )
    problems = timings.problems()
    if problems:
        _fail("; ".join(problems))
    node_id = values["--node-id"].strip()
    if not node_id:
        _fail("--node-id must not be empty")
    raft_address = _address(values["--raft"], "--raft")
    peers = _peers(values["--peers"])
    if node_id in peers or raft_address in peers.values():
        _fail(f"--peers must list the other members only, not {node_id} itself")
    host, port = _split_address(values["--http"], "--http")
    try:
        bugs = active_bugs()
    except UnknownBugError as error:
        _fail(str(error))
    return EngineSettings(
        node=NodeConfig(
            node_id=node_id,
            raft_address=raft_address,
            peers=peers,
            data_dir=Path(values["--data-dir"]),
            timings=timings,
            checkpoint_min_commands=_count(values, "--checkpoint-min-commands"),
        ),
        http_address=(host, port),
        kafka=values["--kafka"].strip(),
        topic=values["--topic"],
        commit_timeout_s=_milliseconds(values, "--commit-timeout-ms"),
        bugs=bugs,
    )


def _milliseconds(values: dict[str, str], flag: str) -> float:
    try:
        milliseconds = float(values[flag])
    except ValueError:
        _fail(f"{flag}: expected milliseconds, got {values[flag]!r}")
    if milliseconds <= 0:
        _fail(f"{flag}: must be positive, got {values[flag]}")
    return milliseconds / 1000


def _count(values: dict[str, str], flag: str) -> int:
    text = values[flag].strip()
    if not text.isdigit():
        _fail(f"{flag}: expected a whole number, 0 or more, got {values[flag]!r}")
    return int(text)


def _split_address(text: str, flag: str) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        _fail(f"{flag}: expected host:port, got {text!r}")
    return host, int(port)


def _address(text: str, flag: str) -> str:
    host, port = _split_address(text, flag)
    return f"{host}:{port}"


def _peers(text: str) -> dict[str, str]:
    peers: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node_id, separator, address = item.partition("=")
        if not separator or not node_id:
            _fail(f"--peers: expected n2=host:port,n3=host:port, got {item!r}")
        peers[node_id] = _address(address, f"--peers {node_id}")
    if not peers:
        _fail("--peers: at least one other member is needed")
    return peers


def run(settings: EngineSettings) -> int:
    stop = threading.Event()

    def request_stop(_signal: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    gc_log.install(f"engine {settings.node.node_id}")
    heap.freeze_survivors()  # no full collections of the history (heap.py)
    bugs = settings.bugs
    if bugs:
        print(f"BUGS {settings.node.node_id} {','.join(sorted(bugs))}", file=sys.stderr, flush=True)
    members = [settings.node.node_id, *settings.node.peers]
    diverge = "diverge_replica" in bugs and settings.node.node_id == max(members)
    node = EngineNode(settings.node, ReplicatedEngine(bugs, diverge), bugs)
    try:
        node.waitBinded()
    except SyncObjException:
        node.destroy_synchronous()
        address = settings.node.raft_address
        _fail(f"cannot bind the Raft address {address}: {_bind_error(address)}", EXIT_START_FAILED)
    try:
        http = EngineHttpServer(settings.http_address, node, settings.commit_timeout_s)
    except OSError as error:
        node.destroy_synchronous()
        _fail(f"cannot serve HTTP on {settings.http_address}: {error}", EXIT_START_FAILED)
    http_thread = threading.Thread(
        target=http.serve_forever, kwargs={"poll_interval": 0.05}, name="http", daemon=True
    )
    http_thread.start()
    publisher = None
    if settings.kafka:
        kafka = settings.kafka
        skip = SKIPPED_AFTER_FAILOVER if "skip_publish_after_failover" in bugs else 0
        publisher = ExecutionPublisher(node, settings.topic, lambda: kafka_producer(kafka), skip)
        node.engine.on_new_executions = publisher.wake
        publisher.start()

    # PySyncObj's tick thread stops when the thread that created the node ends: stay here.
    while not stop.wait(0.5):
        pass

    http.shutdown()
    http.server_close()
    if publisher is not None:
        publisher.stop(PRODUCER_FLUSH_S)
    node.destroy_synchronous()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run(parse_settings(argv))


if __name__ == "__main__":
    sys.exit(main())
