"""The pure parts of reading a proxy's socket counters: the parse of `ss -Htinp` output, the
difference of two readings, and the filters that pick the proxy's sockets whatever form its
addresses take (an address, a wildcard, a container's network name). The real readings, on
the host and inside a container's namespace, are in tests/integration."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.backends.docker.realization import docker_realization
from harness.faults.effects_toxics import ProxySockets, entry_selectors, host_resolver
from harness.faults.socket_counters import bytes_between, endpoint_selector, parse_socket_bytes
from harness.paths import REFERENCE_TOPOLOGY
from harness.toolchain import Toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan

LOCAL = """\
0      0      127.0.0.1:7001 127.0.0.41:50000 users:(("toxiproxy-serv",pid=77,fd=9))
\t cubic wscale:10,10 rto:204 bytes_sent:50 bytes_acked:50 bytes_received:100 segs_out:2
0      0      127.0.0.1:7001 127.0.0.41:50002 users:(("python",pid=78,fd=3))
\t cubic bytes_sent:7 bytes_acked:7 bytes_received:9 segs_out:1
"""
# Recorded inside a Toxiproxy container's namespace on the Docker backend (`nsenter -t PID -n
# ss -Htinp state established`, the host's /proc): two of its 104 connections, one from the
# gateway to a proxy's listen address, one from the proxy to Kafka; the owner is the host pid.
CONTAINER = (Path(__file__).parents[1] / "data" / "ss-toxiproxy-container.txt").read_text()
CLIENT_SIDE = ("172.30.0.2:29640", "172.30.0.7:46468")
UPSTREAM_SIDE = ("172.30.0.2:47300", "172.30.0.3:22679")


def test_socket_byte_counters_of_one_process_by_connection() -> None:
    assert parse_socket_bytes(LOCAL, 77) == {("127.0.0.1:7001", "127.0.0.41:50000"): 100}
    assert len(parse_socket_bytes(LOCAL, None)) == 2


def test_a_containers_sockets_count_for_the_proxys_host_pid_only() -> None:
    assert parse_socket_bytes(CONTAINER, 22973) == {CLIENT_SIDE: 770, UPSTREAM_SIDE: 53430}
    assert parse_socket_bytes(CONTAINER, 1) == {}  # pid 1 of the container is not the proxy


def test_bytes_between_two_readings_count_new_connections_whole() -> None:
    before = {("l", "p:1"): 50, ("l", "p:2"): 100}
    after = {("l", "p:1"): 80, ("l", "p:2"): 100, ("l", "p:3"): 5}
    assert bytes_between(before, after) == 35
    # The same ports on a new connection with smaller counters: counted whole.
    assert bytes_between(before, {("l", "p:1"): 4}) == 4


def nobody(_host: str) -> str | None:
    return None


def test_selectors_for_addresses_wildcards_and_names() -> None:
    assert endpoint_selector("src", "127.0.0.1:7001", nobody) == ["src", "127.0.0.1:7001"]
    assert endpoint_selector("dst", "[::1]:7001", nobody) == ["dst", "[::1]:7001"]
    # Accepted sockets carry the real local address, never the wildcard: match the port.
    assert endpoint_selector("src", "0.0.0.0:7001", nobody) == ["sport", "=", ":7001"]
    assert endpoint_selector("src", "[::]:7001", nobody) == ["sport", "=", ":7001"]
    resolve = {"kafka": "172.30.0.3"}.get
    assert endpoint_selector("dst", "kafka:22679", resolve) == ["dst", "172.30.0.3:22679"]
    # A name nobody knows, or no port: no filter rather than one the host would resolve.
    assert endpoint_selector("dst", "n9:20001", resolve) is None
    assert endpoint_selector("dst", "kafka", resolve) is None
    with pytest.raises(ValueError):
        endpoint_selector("both", "127.0.0.1:1", nobody)


def test_entry_selectors_follow_the_streams() -> None:
    resolve = {"kafka": "172.30.0.3"}.get
    up, down = entry_selectors(
        "172.30.0.2:29640", "kafka:22679", ["upstream", "downstream"], resolve
    )
    assert up == ["src", "172.30.0.2:29640"] and down == ["dst", "172.30.0.3:22679"]
    assert entry_selectors("a:1", "kafka:22679", ["downstream"], resolve) == [down]


class RecordedTable:
    """Answers with recorded `ss` output and remembers what it was asked (a unit-test fake)."""

    def __init__(self, output: str | None, addresses: dict[str, str]) -> None:
        self.output, self.addresses = output, addresses
        self.asked: list[tuple[str, list[str]]] = []

    def established_sockets(self, name: str, selector: Sequence[str]) -> str | None:
        self.asked.append((name, list(selector)))
        return self.output

    def network_address(self, name: str) -> str:
        return self.addresses[name]


def test_a_docker_plans_link_names_resolve_to_the_services_container_addresses(
    fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    plan = make_plan(
        load_topology(REFERENCE_TOPOLOGY), tmp_path, fake_toolchain, docker_realization()
    )
    plan.reservations.release_all()
    table = RecordedTable(CONTAINER, {"kafka": "172.30.0.3", "toxiproxy": "172.30.0.2"})
    resolve = host_resolver(plan, table)
    upstream_host = plan.links["n1-kafka"].upstream[0]
    assert upstream_host == "kafka" and resolve(upstream_host) == "172.30.0.3"
    assert resolve("toxiproxy") == "172.30.0.2" and resolve("example.com") is None
    sockets = ProxySockets(table, "toxiproxy", 22973, resolve)
    assert sockets.read(["src", "172.30.0.2:29640"]) == {CLIENT_SIDE: 770, UPSTREAM_SIDE: 53430}
    assert table.asked == [("toxiproxy", ["src", "172.30.0.2:29640"])]
    assert sockets.read(None) is None and len(table.asked) == 1
    assert ProxySockets(RecordedTable(None, {}), "toxiproxy", 1, nobody).read(["x"]) is None


def test_a_shared_upstream_is_not_counted_for_the_link() -> None:
    """Two proxies dialling one upstream: its sockets cannot be told apart by address."""
    resolve = {"kafka": "172.30.0.3"}.get
    streams = ["upstream", "downstream"]
    both = entry_selectors("172.30.0.2:29640", "kafka:22679", streams, resolve, shared=True)
    assert both == [["src", "172.30.0.2:29640"]]
    alone = entry_selectors("172.30.0.2:29640", "kafka:22679", ["downstream"], resolve, True)
    assert alone == [None]  # nothing left to count by: unverified, never effective
