"""Whether Docker's userland proxy carries the harness's traffic to the run's containers.

With the proxy on (Docker's default), each connection the harness makes to a port published
on 127.0.0.1 is accepted and copied by a `docker-proxy` process; the load, the probes and the
health checks all go through it (one more process hop, its CPU on the same cores). With
`--userland-proxy=false` the kernel's NAT forwards them.
The proxy is a daemon option that the API does not report, so its processes are looked for.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import psutil

PROXY_NAME = "docker-proxy"


def _host_port(arguments: list[str]) -> int | None:
    for flag, value in itertools.pairwise(arguments):
        if flag == "-host-port" and value.isdigit():
            return int(value)
    return None


def proxied_ports(ports: Iterable[int]) -> list[int]:
    """Those of `ports` that a docker-proxy process listens on for the engine."""
    wanted = set(ports)
    found = set()
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.info["name"] != PROXY_NAME:
            continue
        port = _host_port(process.info["cmdline"] or [])
        if port in wanted:
            found.add(port)
    return sorted(found)


def proxy_warning(ports: Iterable[int]) -> str | None:
    proxied = proxied_ports(ports)
    if not proxied:
        return None
    return (
        f"the Docker engine's userland proxy (docker-proxy) carries the harness's traffic to "
        f"{len(proxied)} published ports of the run, which adds to every latency measured; "
        "start dockerd with --userland-proxy=false (`hftchaos setup --docker` does)"
    )
