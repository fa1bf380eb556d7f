"""Launch one Kafka broker (KRaft, combined broker + controller) of the reference topology.

    python -m targets.reference.kafka.broker --data-dir DIR --controller-port 9093 \\
        --listener CLIENT:9092 --listener ENGINE_N1:9094:127.0.0.1:20001 ...

Writes `server.properties` and `log4j.properties` into DIR, formats the KRaft storage the first
time, then replaces itself (os.execv) with the JVM, so the pid a supervisor holds IS the broker
and its signals reach Kafka directly. Logs go to stdout (below WARN) and stderr (WARN and up).

Each `--listener NAME:PORT[:ADVERTISED_HOST:ADVERTISED_PORT]` binds HOST:PORT and tells clients
to reconnect to the advertised address. Advertising a Toxiproxy proxy keeps every client that
bootstraps through it on its own link, so a fault on one client's link affects that client only.
The first listener carries inter-broker traffic.

Jars: $HFTCHAOS_KAFKA_LIBS, else the toolchain's (`hftchaos setup`). Java: $JAVA_HOME or PATH.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

LIBS_VARIABLE = "HFTCHAOS_KAFKA_LIBS"
CONTROLLER_LISTENER = "CONTROLLER"
LISTENER_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
HEAP = ("-Xms256m", "-Xmx512m")
# Not the G1 flags of Kafka's kafka-run-class.sh: that suits a broker with cores of its own. Here
# it shares 2 cores with the whole topology, and every run starts a fresh JVM, so the JIT never
# finished warming: the C2 compiler thread alone averaged 87 ms of CPU per second of load (151
# in the seconds before latency stalls) and Kafka 278 ms/s in all. The client-only JIT (C1) and
# the serial collector (no concurrent or parallel GC threads) brought Kafka to ~170 ms/s; a few
# hundred messages a second need neither C2's code nor G1's pause goals.
JVM_FLAGS = (
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Djava.awt.headless=true",
)
LOG4J_PROPERTIES = """\
# Written by targets.reference.kafka.broker: INFO to stdout, WARN and above to stderr.
log4j.rootLogger=INFO, stdout, stderr
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.Target=System.out
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.appender.stdout.filter.1=org.apache.log4j.varia.LevelRangeFilter
log4j.appender.stdout.filter.1.LevelMax=INFO
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.Threshold=WARN
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.authorizer.logger=WARN
log4j.logger.state.change.logger=WARN
"""


@dataclass(frozen=True)
class Listener:
    name: str
    port: int
    advertised_host: str | None = None
    advertised_port: int | None = None


@dataclass(frozen=True)
class Voter:
    node_id: int
    host: str
    port: int


def parse_listener(text: str) -> Listener:
    """NAME:PORT or NAME:PORT:ADVERTISED_HOST:ADVERTISED_PORT."""
    parts = text.split(":")
    if len(parts) not in (2, 4):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected NAME:PORT or NAME:PORT:ADVERTISED_HOST:ADVERTISED_PORT"
        )
    name = parts[0]
    if not LISTENER_NAME.fullmatch(name) or name == CONTROLLER_LISTENER:
        raise argparse.ArgumentTypeError(
            f"{text!r}: listener name must be upper case letters, digits and _ "
            f"(and not {CONTROLLER_LISTENER})"
        )
    port = _port(parts[1], text)
    if len(parts) == 2:
        return Listener(name, port)
    if not parts[2]:
        raise argparse.ArgumentTypeError(f"{text!r}: advertised host is empty")
    return Listener(name, port, parts[2], _port(parts[3], text))


def parse_voters(text: str) -> tuple[Voter, ...]:
    """ID@HOST:PORT,ID@HOST:PORT,..."""
    voters = []
    for item in text.split(","):
        match = re.fullmatch(r"(\d+)@([^:@,]+):(\d+)", item.strip())
        if match is None:
            raise argparse.ArgumentTypeError(f"{item!r}: expected ID@HOST:PORT")
        voters.append(Voter(int(match[1]), match[2], _port(match[3], item)))
    return tuple(voters)


def _port(text: str, context: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{context!r}: {text!r} is not a port (1-65535)")
    return int(text)


def default_cluster_id(voters: Sequence[Voter]) -> str:
    """Every node of one quorum must format with the same id: derive it from the quorum."""
    quorum = ",".join(f"{v.node_id}@{v.host}:{v.port}" for v in voters)
    attempt = 0
    while True:
        digest = hashlib.sha256(f"{quorum}#{attempt}".encode()).digest()[:16]
        cluster_id = base64.urlsafe_b64encode(digest).decode().rstrip("=")  # Kafka's Uuid text
        # Like Kafka's own Uuid.randomUuid: an id starting with "-" reads as an option to
        # kafka-storage ("--cluster-id: expected one argument"); one quorum in 64 hit that.
        if not cluster_id.startswith("-"):
            return cluster_id
        attempt += 1


@dataclass(frozen=True)
class BrokerConfig:
    data_dir: Path
    node_id: int
    host: str
    controller_port: int
    voters: tuple[Voter, ...]
    listeners: tuple[Listener, ...]

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "kafka-logs"

    def server_properties(self) -> str:
        replicas = min(3, len(self.voters))
        binds = [f"{item.name}://{self.host}:{item.port}" for item in self.listeners]
        advertised = [
            f"{item.name}://{item.advertised_host or self.host}:{item.advertised_port or item.port}"
            for item in self.listeners
        ]
        names = [item.name for item in self.listeners] + [CONTROLLER_LISTENER]
        voters = ",".join(f"{v.node_id}@{v.host}:{v.port}" for v in self.voters)
        settings = {
            "process.roles": "broker,controller",
            "node.id": self.node_id,
            "controller.quorum.voters": voters,
            "controller.listener.names": CONTROLLER_LISTENER,
            "listeners": ",".join(
                [*binds, f"{CONTROLLER_LISTENER}://{self.host}:{self.controller_port}"]
            ),
            "advertised.listeners": ",".join(advertised),
            "listener.security.protocol.map": ",".join(f"{name}:PLAINTEXT" for name in names),
            "inter.broker.listener.name": self.listeners[0].name,
            "log.dirs": self.log_dir,
            # Small and quick: tests start brokers often and topics are created explicitly.
            "num.partitions": 1,
            "default.replication.factor": replicas,
            # With three brokers an acks=all write needs two replicas: one broker may die
            # without losing an acknowledged execution or stopping the stream.
            "min.insync.replicas": min(2, replicas),
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min(2, replicas),
            "transaction.state.log.num.partitions": 1,
            "group.initial.rebalance.delay.ms": 0,
            # A dead broker keeps leading its partitions until the controller fences it when
            # its heartbeats stop (default 9 s); a trading system wants to know in 3 s.
            "broker.session.timeout.ms": 3000,
            "broker.heartbeat.interval.ms": 500,
            "auto.create.topics.enable": "false",
            "num.network.threads": 2,
            "num.io.threads": 4,
        }
        lines = [f"{key}={value}" for key, value in settings.items()]
        return "# Written by targets.reference.kafka.broker\n" + "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> tuple[BrokerConfig, str | None]:
    parser = argparse.ArgumentParser(
        prog="python -m targets.reference.kafka.broker", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="config, logs and data")
    parser.add_argument("--node-id", type=int, default=1)
    parser.add_argument("--host", default="127.0.0.1", help="address every listener binds")
    parser.add_argument("--controller-port", type=int, required=True)
    parser.add_argument(
        "--quorum-voters",
        type=parse_voters,
        help="ID@HOST:PORT,... of every controller (default: this node alone)",
    )
    parser.add_argument(
        "--listener",
        type=parse_listener,
        action="append",
        required=True,
        metavar="NAME:PORT[:ADVERTISED_HOST:ADVERTISED_PORT]",
        help="a client listener; repeat; the first also carries inter-broker traffic",
    )
    parser.add_argument("--cluster-id", help="KRaft cluster id (default: derived from the quorum)")
    args = parser.parse_args(argv)
    voters: tuple[Voter, ...] = args.quorum_voters or (
        Voter(args.node_id, args.host, args.controller_port),
    )
    listeners: list[Listener] = args.listener
    problem = _check(args.node_id, args.host, args.controller_port, voters, listeners)
    if problem:
        parser.error(problem)
    config = BrokerConfig(
        args.data_dir.resolve(), args.node_id, args.host, args.controller_port, voters,
        tuple(listeners),
    )  # fmt: skip
    return config, args.cluster_id


def _check(
    node_id: int,
    host: str,
    controller_port: int,
    voters: Sequence[Voter],
    listeners: Sequence[Listener],
) -> str | None:
    names = [item.name for item in listeners]
    ports = [item.port for item in listeners] + [controller_port]
    if len(set(names)) != len(names):
        return f"listener names repeat: {', '.join(names)}"
    if len(set(ports)) != len(ports):
        return f"listener and controller ports must all differ: {ports}"
    me = [voter for voter in voters if voter.node_id == node_id]
    if not me:
        return f"--node-id {node_id} is not among --quorum-voters"
    if (me[0].host, me[0].port) != (host, controller_port):
        return (
            f"--quorum-voters puts node {node_id} at {me[0].host}:{me[0].port}, "
            f"but --host and --controller-port say {host}:{controller_port}"
        )
    return None


def kafka_libs() -> Path:
    configured = os.environ.get(LIBS_VARIABLE, "").strip()
    if configured:
        return Path(configured)
    from harness.toolchain import locate_toolchain

    return locate_toolchain().kafka_libs


def find_java() -> Path:
    from harness.toolchain import find_java as locate_java

    return locate_java()


def java_command(java: Path, libs: Path, log4j: Path) -> list[str]:
    return [
        str(java),
        *HEAP,
        *JVM_FLAGS,
        f"-Dlog4j.configuration=file:{log4j}",
        "-cp",
        f"{libs}/*",
    ]


def format_storage(command: list[str], config: BrokerConfig, cluster_id: str) -> None:
    """`kafka-storage format`, unless this data directory already holds a formatted log dir."""
    if (config.log_dir / "meta.properties").exists():
        return
    properties = config.data_dir / "server.properties"
    format_command = [
        *command,
        "kafka.tools.StorageTool",
        "format",
        "--cluster-id",
        cluster_id,
        "--config",
        str(properties),
        "--ignore-formatted",
    ]
    completed = subprocess.run(format_command, stdin=subprocess.DEVNULL, check=False)
    if completed.returncode != 0:
        raise SystemExit(
            f"kafka broker: formatting {config.log_dir} failed with exit code "
            f"{completed.returncode} (see the output above)"
        )


def main(argv: Sequence[str] | None = None) -> None:
    config, cluster_id = parse_args(argv)
    try:
        libs, java = kafka_libs(), find_java()
    except HarnessError as error:
        raise SystemExit(f"kafka broker: {error}") from None
    config.data_dir.mkdir(parents=True, exist_ok=True)
    properties = config.data_dir / "server.properties"
    log4j = config.data_dir / "log4j.properties"
    properties.write_text(config.server_properties(), encoding="utf-8")
    log4j.write_text(LOG4J_PROPERTIES, encoding="utf-8")

    command = java_command(java, libs, log4j)
    format_storage(command, config, cluster_id or default_cluster_id(config.voters))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(java, [*command, "kafka.Kafka", str(properties)])


if __name__ == "__main__":
    main()
