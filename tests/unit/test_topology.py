from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest

from harness.errors import TopologyError
from harness.paths import REFERENCE_TOPOLOGY
from harness.toolchain import Toolchain
from harness.topology import plan as plan_module
from harness.topology.loader import load_topology, start_order
from harness.topology.plan import allocate_ports, ephemeral_port_floor, make_plan

WriteYaml = Callable[..., Path]

MINIMAL = """\
name: mini
services:
  proxy:
    role: toxiproxy
    ports: [api]
    command: ["${toolchain.toxiproxy_server}", -port, "${self.port.api}"]
  server:
    host: 127.0.0.21
    ports: [http]
    command: ["${python}", -m, http.server, "${self.port.http}"]
    health: {http: "http://${self.address.http}/"}
  client:
    depends_on: [server]
    command: [echo, "${links.client-server.address}", "${services.server.address.http}"]
links:
  client-server: {from: client, to: server, port: http}
"""


def test_reference_topology_loads_and_orders_dependencies_first() -> None:
    loaded = load_topology(REFERENCE_TOPOLOGY)
    order = start_order(loaded.topology)
    assert order[0] == "toxiproxy"
    assert order.index("kafka") < order.index("kafka-topics") < order.index("n1")
    assert order.index("n3") < order.index("gateway")
    assert sorted(loaded.topology.services_with_role("engine")) == ["n1", "n2", "n3"]


def test_plan_resolves_placeholders_and_gives_distinct_free_ports(
    write_yaml: WriteYaml, fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    plan = make_plan(load_topology(write_yaml(MINIMAL)), tmp_path / "run", fake_toolchain)
    server, client = plan.services["server"], plan.services["client"]
    link = plan.links["client-server"]
    assert server.command == [sys.executable, "-m", "http.server", str(server.ports["http"])]
    assert client.command == ["echo", link.listen_address, f"127.0.0.21:{server.ports['http']}"]
    assert link.upstream == ("127.0.0.21", server.ports["http"])
    assert server.health is not None
    assert server.health.http == f"http://127.0.0.21:{server.ports['http']}/"
    ports = [port for _host, port in plan.all_ports]
    assert len(set(ports)) == len(ports)
    assert plan.services["proxy"].command[0] == str(fake_toolchain.toxiproxy_server)


def test_allocated_ports_can_all_listen_at_once_each_on_its_own_host() -> None:
    hosts = ["127.0.0.1", "127.0.0.22", "127.0.0.22", "127.0.0.1"]
    ports = allocate_ports(hosts)
    assert len(ports) == len(hosts) and len(set(ports)) == len(ports)
    with ExitStack() as stack:
        for host, port in zip(hosts, ports, strict=True):
            listener = stack.enter_context(socket.socket())
            listener.bind((host, port))  # raises if the port was not free on that host
            listener.listen()


HOSTS = ["127.0.0.1", "127.0.0.22"]


class _Unshuffled:
    def shuffle(self, items: list[int]) -> None:
        pass


def _free_on(hosts: list[str], port: int) -> bool:
    with ExitStack() as stack:
        try:
            for host in hosts:
                stack.enter_context(socket.socket()).bind((host, port))
        except OSError:
            return False
    return True


def test_a_port_taken_on_the_requested_host_is_never_handed_out_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A port free on 127.0.0.1 but taken on 127.0.0.22 must be skipped for .22 only.
    Unshuffled, the allocator tries ports from the top of its range down."""
    top = next(p for p in range(ephemeral_port_floor() - 1, 1024, -1) if _free_on(HOSTS, p))
    monkeypatch.setattr(plan_module, "ephemeral_port_floor", lambda: top + 1)
    monkeypatch.setattr(plan_module.random, "SystemRandom", _Unshuffled)
    with socket.socket() as taken:
        taken.bind(("127.0.0.22", top))
        taken.listen()
        assert allocate_ports(["127.0.0.1"]) == [top]
        assert allocate_ports(["127.0.0.22"]) != [top]


def _error(write_yaml: WriteYaml, text: str) -> str:
    with pytest.raises(TopologyError) as caught:
        load_topology(write_yaml(text))
    return str(caught.value)


def test_unknown_key_names_file_line_field_and_valid_keys(write_yaml: WriteYaml) -> None:
    message = _error(write_yaml, MINIMAL.replace("    role: toxiproxy\n", "    rol: toxiproxy\n"))
    assert "file.yaml:4: services.proxy.rol: unknown key 'rol'" in message
    assert "valid keys here:" in message and "role" in message


def test_wrong_type_and_non_loopback_host(write_yaml: WriteYaml) -> None:
    message = _error(write_yaml, MINIMAL.replace("127.0.0.21", "10.0.0.5"))
    assert "file.yaml:8: services.server.host:" in message
    assert "not a loopback address" in message
    message = _error(write_yaml, MINIMAL.replace("ports: [http]", "ports: http"))
    assert "services.server.ports" in message and "valid list" in message


def test_unknown_dependency_and_link_port(write_yaml: WriteYaml) -> None:
    message = _error(write_yaml, MINIMAL.replace("depends_on: [server]", "depends_on: [sever]"))
    assert "file.yaml:13: services.client.depends_on: unknown service 'sever'" in message
    message = _error(write_yaml, MINIMAL.replace("port: http}", "port: grpc}"))
    assert "links.client-server.port: service 'server' has no port 'grpc'" in message


def test_dependency_cycle_is_reported(write_yaml: WriteYaml) -> None:
    text = MINIMAL.replace("    ports: [http]\n", "    ports: [http]\n    depends_on: [client]\n")
    assert "dependency cycle" in _error(write_yaml, text)


def test_unknown_placeholder_points_at_the_line(
    write_yaml: WriteYaml, fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    loaded = load_topology(write_yaml(MINIMAL.replace('${self.port.http}"]', '${self.port.htp}"]')))
    with pytest.raises(TopologyError, match=r"file.yaml:\d+: services.server.command.3: unknown"):
        make_plan(loaded, tmp_path, fake_toolchain)


def test_yaml_syntax_error_and_duplicate_key(write_yaml: WriteYaml) -> None:
    assert "not valid YAML" in _error(write_yaml, "name: [unclosed\n")
    assert "file.yaml:3: duplicate key 'name'" in _error(
        write_yaml, "name: a\nservices: {}\nname: b\n"
    )


def test_service_ports_come_from_below_the_ephemeral_range() -> None:
    ports = allocate_ports(["127.0.0.1"] * 50)
    assert len(set(ports)) == 50
    assert all(1024 <= port < ephemeral_port_floor() for port in ports)


def test_three_broker_topology_plans_a_quorum_and_a_proxy_per_client_and_broker(
    fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    plan = make_plan(
        load_topology(REFERENCE_TOPOLOGY.parent / "topology-kafka3.yaml"), tmp_path, fake_toolchain
    )
    brokers = [plan.services[f"kafka{k}"] for k in (1, 2, 3)]
    quorum = ",".join(
        f"{k}@{broker.host}:{broker.ports['controller']}" for k, broker in enumerate(brokers, 1)
    )
    for k, broker in enumerate(brokers, 1):
        command = broker.command
        assert command[command.index("--node-id") + 1] == str(k)
        assert command[command.index("--quorum-voters") + 1] == quorum
        # Each broker advertises, to engine n1, the proxy n1 reaches it through.
        link = plan.links[f"n1-kafka{k}"]
        assert f"ENGINE_N1:{broker.ports['n1']}:{link.listen_address}" in command
        assert link.upstream == (broker.host, broker.ports["n1"])
    n1 = plan.services["n1"].command
    assert n1[n1.index("--kafka") + 1] == ",".join(
        plan.links[f"n1-kafka{k}"].listen_address for k in (1, 2, 3)
    )
    order = plan.order
    assert max(order.index(f"kafka{k}") for k in (1, 2, 3)) < order.index("kafka-topics")


def test_clock_control_is_added_to_the_named_services_only() -> None:
    topology = load_topology(REFERENCE_TOPOLOGY).topology
    skewable = topology.with_clock_control(topology.services_with_role("engine"))
    chosen = {name for name, service in skewable.services.items() if service.clock_control}
    assert chosen == {"n1", "n2", "n3"}
    assert not any(service.clock_control for service in topology.services.values())


def test_a_plans_ports_stay_reserved_until_the_backend_starts_each_service(
    fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    from harness.backends.fakes import FakeBackend
    from harness.topology.plan import link_owner, service_owner

    plan = make_plan(load_topology(REFERENCE_TOPOLOGY), tmp_path, fake_toolchain)
    n1, link = plan.services["n1"], next(iter(plan.links.values()))

    def can_bind(host: str, port: int) -> bool:
        with socket.socket() as intruder:
            try:
                intruder.bind((host, port))
            except OSError:
                return False
            return True

    assert not can_bind(n1.host, n1.ports["raft"])  # another program cannot take it meanwhile
    assert not can_bind(*link.listen)
    plan.reservations.release(service_owner("n1"))
    assert can_bind(n1.host, n1.ports["raft"])
    assert not can_bind(*link.listen)  # the others are still held
    plan.reservations.release(link_owner(link.name))
    assert can_bind(*link.listen)
    FakeBackend(plan).teardown()  # a backend's teardown frees whatever it never started
    assert plan.reservations.holding() == []
    assert all(can_bind(host, port) for host, port in plan.all_ports)


def test_no_port_number_is_planned_twice_even_on_two_hosts() -> None:
    # A service binding the wildcard address would collide with another host's same number.
    ports = allocate_ports(["127.0.0.1", "127.0.0.22"] * 40)
    assert len(set(ports)) == len(ports)
