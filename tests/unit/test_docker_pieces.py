"""The pure parts of the Docker backend: which rule goes into which namespace, what makes an
image new, the order of builds, the messages for what is missing, and how the engine's
userland proxy is recognised (on a real process under its name)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends.docker import netns
from harness.backends.docker.leftovers import HARNESS_HOST_LABEL, HARNESS_PID_LABEL, _harness_alive
from harness.errors import BackendError, RuntimeEnvironmentError
from harness.images import base as base_module
from harness.images.build import content_hash
from harness.images.catalog import BASE, BUILDS, build_order

N1 = netns.Namespace("n1", 101, "172.30.0.11")
N2 = netns.Namespace("n2", 102, "172.30.0.12")
N3 = netns.Namespace("n3", 103, "172.30.0.13")
TAG = netns.make_tag("run1", 4)


def test_packet_loss_drops_arrivals_in_the_target_and_its_packets_in_each_peer() -> None:
    rules = netns.random_loss_rules(TAG, N1, [N2, N3], 0.3)
    by_space = {rule.namespace.service: rule.spec for rule in rules}
    assert set(by_space) == {"n1", "n2", "n3"}
    assert "-s" not in by_space["n1"]  # everything arriving at n1
    assert by_space["n2"][:2] == ("-s", "172.30.0.11/32")  # what n1 sends to n2
    for spec in by_space.values():
        assert spec[-2:] == ("-j", "DROP") and TAG in spec and "0.30000000000" in spec
        lo = spec.index("lo")
        assert spec[lo - 2 : lo + 1] == ("!", "-i", "lo")  # the namespace's own loopback is spared


def test_partition_cuts_every_pair_across_groups_and_none_within() -> None:
    rules = netns.partition_rules(TAG, [[N1], [N2, N3]])
    pairs = {(rule.namespace.service, rule.spec[1]) for rule in rules}
    assert pairs == {
        ("n1", "172.30.0.12/32"),
        ("n1", "172.30.0.13/32"),
        ("n2", "172.30.0.11/32"),
        ("n3", "172.30.0.11/32"),
    }


def test_a_probability_out_of_range_is_refused() -> None:
    with pytest.raises(BackendError, match="probability"):
        netns.random_loss_rules(TAG, N1, [], 1.5)


def test_builds_come_after_the_build_they_start_from() -> None:
    order = build_order({"reference-kafka", "toxiproxy"})
    assert order.index("reference") < order.index("reference-kafka")
    assert all(BUILDS[name].base in (BASE, *order[: order.index(name)]) for name in order)


def test_the_content_hash_changes_with_a_byte_a_mode_or_the_base(tmp_path: Path) -> None:
    file = tmp_path / "a.py"
    file.write_text("x = 1\n")
    files = [("src/a.py", file)]
    first = content_hash(files, "sha256:base1")
    assert content_hash(files, "sha256:base1") == first  # same content: the image is reused
    assert content_hash(files, "sha256:base2") != first
    file.chmod(0o755)
    assert content_hash(files, "sha256:base1") != first
    file.chmod(0o644)
    file.write_text("x = 2\n")
    assert content_hash(files, "sha256:base1") != first


def test_making_the_base_image_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base_module.shutil, "which", lambda _name: None)
    monkeypatch.setattr(base_module.os, "geteuid", lambda: 1000)
    with pytest.raises(RuntimeEnvironmentError) as raised:
        base_module._require_debootstrap()
    message = str(raised.value)
    assert "root" in message and "apt-get install debootstrap" in message
    assert "--base debian:bookworm-slim" in message


def test_leftovers_belong_to_a_dead_harness_only_on_this_host() -> None:
    import socket

    here = socket.gethostname()
    assert _harness_alive({HARNESS_HOST_LABEL: here, HARNESS_PID_LABEL: str(os.getpid())})
    assert not _harness_alive({HARNESS_HOST_LABEL: here, HARNESS_PID_LABEL: str(2**22 + 7)})
    assert _harness_alive({HARNESS_HOST_LABEL: "elsewhere", HARNESS_PID_LABEL: "1"})


def harness_imports_outside(copied: set[str]) -> set[str]:
    """Harness modules imported by the services' code (and the copied modules) but not in
    `copied`."""
    import ast

    from harness.paths import REPO_ROOT

    harness, reference = REPO_ROOT / "harness", REPO_ROOT / "targets" / "reference"
    files = [harness / name for name in copied if name.endswith(".py")]
    files += list((harness / "toolchain").glob("*.py"))
    files += [path for path in reference.rglob("*.py") if "checks" not in path.parts]
    found = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "harness"
            ):
                continue
            module = str(node.module)
            tops = [a.name for a in node.names] if module == "harness" else [module.split(".")[1]]
            found |= {top for top in tops if top not in copied and f"{top}.py" not in copied}
    return found


def test_the_image_holds_every_harness_module_its_services_import() -> None:
    """A module the services reach that is not copied into the image fails only inside the
    container: seen when harness.toolchain began to import harness.settings."""
    from harness.images.catalog import SERVICE_HARNESS_MODULES

    assert harness_imports_outside(set(SERVICE_HARNESS_MODULES)) == set()
    assert harness_imports_outside(set(SERVICE_HARNESS_MODULES) - {"settings.py"}) == {"settings"}


def test_a_docker_proxy_process_serving_a_port_of_the_run_is_found(tmp_path: Path) -> None:
    """A real process named docker-proxy (a Python under that name), with the engine's
    arguments: its host port is found, other ports are not, and without it nothing is."""
    from harness.backends.docker.userland_proxy import proxied_ports, proxy_warning

    proxy = tmp_path / "docker-proxy"
    proxy.symlink_to(sys.executable)
    arguments = ["-proto", "tcp", "-host-ip", "127.0.0.1", "-host-port", "34567"]
    child = subprocess.Popen(
        [str(proxy), "-c", "import time; time.sleep(30)", *arguments, "-container-port", "80"]
    )
    try:
        deadline = time.monotonic() + 10
        while not proxied_ports([34567]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxied_ports([34567, 80, 1]) == [34567]
        assert proxy_warning([34567]) is not None
    finally:
        child.kill()
        child.wait()
    assert proxied_ports([34567]) == []
    assert proxy_warning([34567]) is None
