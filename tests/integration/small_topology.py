"""A small topology for tests that need a harness of their own per case: Toxiproxy, three
engine nodes without Kafka (each on its own loopback address, so kernel rules can single one
out) and the gateway, every gateway-engine connection through a Toxiproxy link. Up in
seconds, where the reference topology's Kafka takes far longer. With `images=True` each
service also names the image it runs in on the Docker backend (`build:`). `engine_flags` adds
command-line flags to a node's engine (its own Raft timings, say); the others keep the
engine's defaults."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

TOPOLOGY = """
name: heal-small
services:
  toxiproxy:
    role: toxiproxy%(toxiproxy_build)s
    ports: [api]
    command: ["${toolchain.toxiproxy_server}", -host, "${self.host}", -port, "${self.port.api}"]
    env: {LOG_LEVEL: info}
    health: {http: "http://${self.address.api}/version", timeout_s: 15}
%(engines)s
  gateway:
    role: gateway%(build)s
    ports: [http]
    depends_on: [n1, n2, n3]
    command: ["${python}", -m, targets.reference.gateway, --http, "${self.address.http}",
              --engines, "%(gateway_engines)s"]
    health: {http: "http://${self.address.http}/health", timeout_s: 20}
links:
  gateway-n1: {from: gateway, to: n1, port: http}
  gateway-n2: {from: gateway, to: n2, port: http}
  gateway-n3: {from: gateway, to: n3, port: http}
"""
ENGINE = """
  %(node)s:
    role: engine%(build)s
    group: engines
    host: 127.0.0.%(host)d
    ports: [raft, http]
    command: ["${python}", -m, targets.reference.engine, --node-id, %(node)s,
              --raft, "${self.address.raft}", --http, "${self.address.http}",
              --peers, "%(peers)s", --data-dir, "${self.dir}", --kafka, ""%(flags)s]
    health: {http: "http://${self.address.http}/status", timeout_s: 20}
    raft: {url: "http://${self.address.http}/status"}
"""
NODES = ("n1", "n2", "n3")


def small_topology(
    directory: Path,
    images: bool = False,
    engine_flags: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    def peers(node: str) -> str:
        return ",".join(
            f"{peer}=${{services.{peer}.address.raft}}" for peer in NODES if peer != node
        )

    def flags(node: str) -> str:
        return "".join(f', "{flag}"' for flag in (engine_flags or {}).get(node, ()))

    build = "\n    build: reference" if images else ""
    engines = "".join(
        ENGINE
        % {
            "node": node,
            "host": 11 + index,
            "peers": peers(node),
            "build": build,
            "flags": flags(node),
        }
        for index, node in enumerate(NODES)
    )
    gateway_engines = ",".join(f"{node}=${{links.gateway-{node}.address}}" for node in NODES)
    path = directory / "heal-small.yaml"
    path.write_text(
        TOPOLOGY
        % {
            "engines": engines,
            "gateway_engines": gateway_engines,
            "build": build,
            "toxiproxy_build": "\n    build: toxiproxy" if images else "",
        }
    )
    return path
