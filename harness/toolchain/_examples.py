"""Third-party systems for the worked examples in targets/examples/, built from their Go
modules into the cache (no release downloads on this machine): `hftchaos setup --example NAME`.

The harness never runs them by itself: a topology names the binary with
`${toolchain.home}/examples/NAME/bin/PROGRAM`. Built into a staging directory and renamed into
place once its version is checked, like the Toxiproxy server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ToolchainError
from harness.toolchain._paths import cache_home, staging_root
from harness.toolchain._process import find_program, is_executable, run

BUILD_TIMEOUT_S = 20 * 60


@dataclass(frozen=True)
class Example:
    name: str
    module: str  # Go package path to `go install`
    version: str
    program: str  # the binary's name as `go install` writes it
    version_flag: str
    version_text: str  # the first line `program version_flag` prints for the right build
    # Built inside a throwaway module that requires it: a module whose go.mod has replace
    # directives (etcd's server) cannot be `go install`ed by version.
    in_wrapper: bool = False

    def binary(self, home: Path) -> Path:
        return home / "examples" / self.name / "bin" / self.program


EXAMPLES = {
    "nats": Example(
        name="nats",
        module="github.com/nats-io/nats-server/v2",
        version="2.15.2",
        program="nats-server",
        version_flag="--version",
        version_text="nats-server: v2.15.2",
    ),
    "etcd": Example(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version="3.7.3",
        program="etcd",
        version_flag="--version",
        version_text="etcd Version: 3.7.3",
        in_wrapper=True,
    ),
}
WRAPPER_GO_MOD = "module hftchaos.example/build\n\ngo 1.26.0\n"


def example(name: str) -> Example:
    if name not in EXAMPLES:
        raise ToolchainError(f"no example {name!r}; examples: {', '.join(sorted(EXAMPLES))}")
    return EXAMPLES[name]


def is_current(chosen: Example, binary: Path) -> bool:
    if not is_executable(binary):
        return False
    output = run([binary, chosen.version_flag], timeout_s=30).strip()
    return output.splitlines()[:1] == [chosen.version_text]


def ensure_example(name: str) -> tuple[Path, bool]:
    """The example's binary in the cache, built when missing or stale: (path, built now)."""
    chosen = example(name)
    home = cache_home()
    target = chosen.binary(home)
    if is_current(chosen, target):
        return target, False
    go = find_program("go")
    staging_root(home).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=staging_root(home)))
    try:
        _build(go, chosen, staging)
        built = staging / chosen.program
        if not is_current(chosen, built):
            raise ToolchainError(f"the built {chosen.program} is not {chosen.version_text}")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(built, target)  # same file system: atomic
        return target, True
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build(go: Path, chosen: Example, staging: Path) -> None:
    if not chosen.in_wrapper:
        run(
            [go, "install", f"{chosen.module}@v{chosen.version}"],
            env={**os.environ, "GOBIN": str(staging)},
            timeout_s=BUILD_TIMEOUT_S,
        )
        return
    wrapper = staging / "module"
    wrapper.mkdir()
    (wrapper / "go.mod").write_text(WRAPPER_GO_MOD)
    # The local toolchain, never a download of the one the module's go.mod suggests.
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    run([go, "get", f"{chosen.module}@v{chosen.version}"], env=env, cwd=wrapper,
        timeout_s=BUILD_TIMEOUT_S)  # fmt: skip
    run([go, "build", "-o", str(staging / chosen.program), chosen.module], env=env, cwd=wrapper,
        timeout_s=BUILD_TIMEOUT_S)  # fmt: skip
