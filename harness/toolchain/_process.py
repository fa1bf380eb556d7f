"""Finding prerequisite programs and running provisioning commands, with errors for people."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.errors import ToolchainError

# What to tell a person when a program is missing: how to get it, or how to do without it.
HOW_TO_GET = {
    "java": (
        "install OpenJDK 17 (apt-get install -y openjdk-17-jre-headless) "
        "or set JAVA_HOME to a Java 17+ installation"
    ),
    "mvn": (
        "install Maven (apt-get install -y maven) "
        "or set KAFKA_HOME to an unpacked Kafka 3.9 distribution"
    ),
    "go": (
        "install Go 1.23 or newer so that `go` is on PATH "
        "or set TOXIPROXY_BIN to a toxiproxy-server 2.12 binary"
    ),
}
OUTPUT_TAIL_LINES = 20


def find_program(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """The program `name` on PATH, or ToolchainError saying how to get it."""
    environ = os.environ if environ is None else environ
    found = shutil.which(name, path=environ.get("PATH", os.defpath))
    if found is None:
        raise ToolchainError(f"{name} not found: {HOW_TO_GET.get(name, 'install it')}")
    return Path(found)


def find_java(environ: Mapping[str, str] | None = None) -> Path:
    """$JAVA_HOME/bin/java when JAVA_HOME is set, else java on PATH."""
    environ = os.environ if environ is None else environ
    java_home = environ.get("JAVA_HOME", "").strip()
    if java_home:
        java = Path(java_home) / "bin" / "java"
        if not is_executable(java):
            raise ToolchainError(f"JAVA_HOME={java_home} has no bin/java: {HOW_TO_GET['java']}")
        return java
    return find_program("java", environ)


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def run(
    command: Sequence[str | Path],
    *,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run a command to completion; its combined output, or ToolchainError with its tail.

    The command gets its own process group, and the whole group is killed if we stop waiting
    (timeout, Ctrl-C), so no compiler or JVM it started keeps writing into a staging directory.
    """
    printable = shlex.join(str(part) for part in command)
    try:
        process = subprocess.Popen(
            [str(part) for part in command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as error:
        raise ToolchainError(f"cannot run `{printable}`: {error.strerror}") from None
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        output = _kill_group(process)
        raise ToolchainError(
            f"`{printable}` did not finish within {timeout_s:.0f}s{_tail(output)}"
        ) from None
    except BaseException:
        _kill_group(process)
        raise
    if process.returncode != 0:
        raise ToolchainError(
            f"`{printable}` failed with exit code {process.returncode}{_tail(output)}"
        )
    return output


def _kill_group(process: subprocess.Popen[str]) -> str:
    """SIGKILL the command's process group; whatever it printed until then."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    output, _ = process.communicate()
    return output


def _tail(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        return " and printed nothing"
    return "; last lines of its output:\n" + "\n".join(lines[-OUTPUT_TAIL_LINES:])
