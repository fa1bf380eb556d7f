"""One topology, two realizations: the local one (host paths, one loopback address) and
Docker's (paths in the images, peers by name, the harness through 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.backends.docker.realization import PYTHON, SERVICE_DIR, docker_realization
from harness.errors import TopologyError
from harness.paths import REFERENCE_TOPOLOGY
from harness.toolchain import Toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan

WriteYaml = Callable[..., Path]

TWO_SIDES = """\
name: sides
services:
  proxy:
    role: toxiproxy
    ports: [api]
    command: ["${toolchain.toxiproxy_server}", -host, "${self.host}", -port, "${self.port.api}"]
    health: {http: "http://${self.address.api}/version"}
  server:
    host: 127.0.0.21
    ports: [http]
    command: ["${python}", -m, http.server, -b, "${self.host}", "${self.port.http}",
              -d, "${self.dir}", "${self.harness.address.http}"]
    health: {http: "http://${self.address.http}/"}
    raft: {url: "http://${self.address.http}/status"}
  client:
    depends_on: [server]
    command: [echo, "${links.client-server.address}", "${services.server.address.http}"]
links:
  client-server: {from: client, to: server, port: http}
"""


def test_docker_plan_splits_where_peers_and_the_harness_reach_a_service(
    write_yaml: WriteYaml, fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    loaded = load_topology(write_yaml(TWO_SIDES))
    plan = make_plan(loaded, tmp_path / "run", fake_toolchain, docker_realization())
    try:
        server, client = plan.services["server"], plan.services["client"]
        port = server.ports["http"]
        link = plan.links["client-server"]
        assert plan.backend == "docker"
        # In its command, a service binds and dials by name on the run's network ...
        assert server.command[:6] == [PYTHON, "-m", "http.server", "-b", "server", str(port)]
        assert server.command[6:] == ["-d", SERVICE_DIR, f"127.0.0.1:{port}"]
        assert client.command == ["echo", f"proxy:{link.listen[1]}", f"server:{port}"]
        assert link.upstream == ("server", port)
        # ... while what the harness calls goes through the published port.
        assert server.health is not None and server.health.http == f"http://127.0.0.1:{port}/"
        assert server.raft_status_url == f"http://127.0.0.1:{port}/status"
        assert server.address("http") == f"127.0.0.1:{port}"
        assert server.peer_host == "server"
        assert all(host == "127.0.0.1" for host, _port in plan.all_ports)
    finally:
        plan.reservations.release_all()


def test_local_plan_sees_one_address_from_both_sides(
    write_yaml: WriteYaml, fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    plan = make_plan(load_topology(write_yaml(TWO_SIDES)), tmp_path / "run", fake_toolchain)
    try:
        server = plan.services["server"]
        port = server.ports["http"]
        assert server.command[4:6] == ["127.0.0.21", str(port)]
        assert server.command[-1] == f"127.0.0.21:{port}"
        assert server.command[-2] == str(tmp_path / "run" / "services" / "server")
        assert server.peer_host == server.host == "127.0.0.21"
    finally:
        plan.reservations.release_all()


def test_a_host_path_placeholder_that_docker_lacks_is_named(
    write_yaml: WriteYaml, fake_toolchain: Toolchain, tmp_path: Path
) -> None:
    text = "name: t\nservices:\n  one:\n    command: [cat, '${run_dir}/x']\n"
    with pytest.raises(TopologyError, match=r"services\.one\.command\.1.*run_dir.*docker"):
        make_plan(load_topology(write_yaml(text)), tmp_path, fake_toolchain, docker_realization())


def test_the_reference_topology_plans_on_docker(fake_toolchain: Toolchain, tmp_path: Path) -> None:
    plan = make_plan(
        load_topology(REFERENCE_TOPOLOGY), tmp_path, fake_toolchain, docker_realization()
    )
    try:
        assert all(service.build or service.image for service in plan.services.values())
        n1 = plan.services["n1"]
        assert f"n1:{n1.ports['raft']}" in n1.command
    finally:
        plan.reservations.release_all()
