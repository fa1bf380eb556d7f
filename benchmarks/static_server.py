"""A static HTTP answer on loopback (nginx, one worker process): the load path's counterpart.

The answer is what a gateway says to an acked resting order, so the harness's worker parses
it and records it as it would a real one; nginx answers it from memory in microseconds, so the
figures measured against it are the load generator's, not the server's. nginx comes from
Debian (`nginx-light`); the bench installs it with apt-get when it is missing and we are root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ToolchainError
from harness.toolchain._process import run

ANSWER = '{"status":"acked","order":{"status":"new","filled":0},"executions":[]}'
DEBIAN_PACKAGE = "nginx-light"
READY_TIMEOUT_S = 10.0
CONFIG = """
worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path {directory}/body;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type application/json;
            return 200 '{answer}';
        }}
    }}
}}
"""


@dataclass(frozen=True, slots=True)
class StaticServer:
    address: str  # host:port
    version: str


def ensure_nginx() -> Path:
    """nginx on PATH (or in /usr/sbin), installed from Debian's packages when missing."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found:
        return Path(found)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ToolchainError(f"nginx not found: install it (apt-get install -y {DEBIAN_PACKAGE})")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "RUNLEVEL": "1"}
    run(["apt-get", "update", "-qq"], timeout_s=300, env=environment)
    # RUNLEVEL=1: the package's scripts must not start a system nginx on port 80.
    run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", DEBIAN_PACKAGE],
        timeout_s=600,
        env=environment,
    )
    found = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    if not found:
        raise ToolchainError(f"apt-get installed {DEBIAN_PACKAGE} but no nginx binary is there")
    return Path(found)


def nginx_version(binary: Path) -> str:
    # nginx prints "nginx version: nginx/1.22.1" on stderr; run() merges it.
    return run([binary, "-v"], timeout_s=10).strip().rpartition("/")[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def static_server() -> Iterator[StaticServer]:
    """nginx answering every request with ANSWER on a free loopback port, stopped on exit."""
    binary = ensure_nginx()
    with tempfile.TemporaryDirectory(prefix="hftchaos-nginx-") as scratch:
        port = free_port()
        config = Path(scratch) / "nginx.conf"
        config.write_text(CONFIG.format(directory=scratch, port=port, answer=ANSWER))
        process = subprocess.Popen(
            [str(binary), "-c", str(config), "-p", scratch],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_listening(port, process)
            yield StaticServer(f"127.0.0.1:{port}", nginx_version(binary))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ToolchainError(f"nginx exited with code {process.returncode} at start")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise ToolchainError(f"nginx did not listen on 127.0.0.1:{port} in {READY_TIMEOUT_S:.0f}s")
