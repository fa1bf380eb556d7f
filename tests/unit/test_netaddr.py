"""`host: "::1"` in URLs: bracketed where a URL is built, unchanged elsewhere."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

from harness.netaddr import url_address, url_host
from harness.toolchain import Toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan
from harness.toxiproxy import ToxiproxyClient


@pytest.mark.parametrize(
    ("address", "in_url"),
    [("::1:8474", "[::1]:8474"), ("127.0.0.1:8474", "127.0.0.1:8474"), ("[::1]:80", "[::1]:80")],
)
def test_an_address_goes_into_a_url_that_parses_back(address: str, in_url: str) -> None:
    assert url_address(address) == in_url
    parsed = urllib.parse.urlsplit(f"http://{url_address(address)}/status")
    assert (parsed.hostname, parsed.port) == (
        address.rpartition(":")[0].strip("[]"),
        int(in_url.rpartition(":")[2]),
    )


def test_the_toxiproxy_client_brackets_an_ipv6_api() -> None:
    assert ToxiproxyClient("::1:8474").api == "http://[::1]:8474"
    assert ToxiproxyClient("http://[::1]:8474").api == "http://[::1]:8474"
    assert ToxiproxyClient("127.0.0.1:8474").api == "http://127.0.0.1:8474"
    assert url_host("localhost") == "localhost"


IPV6_TOPOLOGY = """\
name: six
services:
  engine:
    role: engine
    host: "::1"
    ports: [http]
    command: [serve, "--listen", "${self.address.http}", "--host", "${self.host}"]
    health: {http: "http://${self.address.http}/health"}
    raft:
      url: "http://[${self.host}]:${self.port.http}/status"
"""


def test_placeholders_in_a_url_are_bracketed_and_nowhere_else(
    tmp_path: Path, fake_toolchain: Toolchain
) -> None:
    file = tmp_path / "topology.yaml"
    file.write_text(IPV6_TOPOLOGY)
    engine = make_plan(load_topology(file), tmp_path / "run", fake_toolchain).services["engine"]
    port = engine.ports["http"]
    assert engine.health is not None and engine.health.http == f"http://[::1]:{port}/health"
    assert engine.raft_status_url == f"http://[::1]:{port}/status"  # written bracketed: kept
    assert engine.command == ["serve", "--listen", f"::1:{port}", "--host", "::1"]
    assert urllib.parse.urlsplit(engine.health.http).port == port
