"""The Python packages the reference image installs, fetched on the host as wheels.

Inside `docker build` the machine's TLS-intercepting proxy is not trusted (pip fails with
CERTIFICATE_VERIFY_FAILED), while the host's pip is set up for it. So the wheels are made
here, once (`pip wheel` for the pure-Python sdist, `pip download` of the manylinux build
for CPython 3.11, Debian bookworm's Python), and the image installs them with `--no-index`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.errors import ToolchainError
from harness.paths import remove_tree
from harness.toolchain import cache_home

# Keep in step with pyproject.toml's dependencies.
REQUIREMENTS = ("pysyncobj>=0.3.12,<0.4", "confluent-kafka>=2.3,<3")
TIMEOUT_S = 300
DONE_FILE = "requirements.txt"


def wheels_directory() -> Path:
    """The wheels directory, filled unless it holds the wheels of REQUIREMENTS already."""
    directory = cache_home() / "docker" / "wheels"
    done = directory / DONE_FILE
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if done.is_file() and done.read_text() == wanted:
        return directory
    if directory.exists():
        remove_tree(directory, cache_home())
    directory.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "wheel", "--no-deps", "-w", str(directory), REQUIREMENTS[0]])
    platforms = ["--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64"]
    binary = ["--only-binary=:all:", "--python-version", "3.11", *platforms]
    _run([*pip, "download", *binary, "-d", str(directory), *REQUIREMENTS[1:]])
    done.write_text(wanted)
    return directory


def _run(command: list[str]) -> None:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"pip did not finish within {TIMEOUT_S} s") from None
    if result.returncode != 0:
        tail = " ".join(result.stderr.split()[-30:])
        raise ToolchainError(f"fetching wheels for the reference image failed: {tail}")
