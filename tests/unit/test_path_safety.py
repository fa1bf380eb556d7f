"""A topology's name becomes a folder that `hftchaos up` empties: no name may reach outside.

Each hostile name from the hardening audit is tried three ways: the topology file is refused
(exit 2 with the field named), the path helpers refuse it, and `hftchaos up`/`down`/`status`
run as a user would leave a victim folder next to the cache untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import EXIT_BAD_INPUT, TopologyError
from harness.paths import UnsafePathError, remove_tree, up_dir
from harness.topology.loader import load_topology

HOSTILE_NAMES = ["../../victim", "/", "", "..", ".", "a/../../victim", "x" * 300, "[red]x"]

TOPOLOGY = """\
name: {name}
services:
  server:
    command: [sleep, "60"]
"""


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A folder beside the harness's cache that nothing may ever remove."""
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    return folder


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cache" / "hftchaos"
    home.mkdir(parents=True)
    monkeypatch.setenv("HFTCHAOS_HOME", str(home))
    return home


def _quoted(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_topology_whose_name_is_a_path_is_refused(name: str, tmp_path: Path) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text(TOPOLOGY.format(name=_quoted(name)))
    with pytest.raises(TopologyError, match=r"topology\.yaml:1.*name"):
        load_topology(path)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_up_dir_refuses_every_name_that_is_not_an_identifier(
    name: str, isolated_home: Path
) -> None:
    with pytest.raises(UnsafePathError):
        up_dir(name)


def test_remove_tree_refuses_the_root_itself_and_anything_outside(
    tmp_path: Path, victim: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for outside in (root, root / ".." / "victim", victim, Path("/")):
        with pytest.raises(UnsafePathError):
            remove_tree(outside, root)
    assert (victim / "precious.txt").read_text() == "keep me"


def test_remove_tree_removes_a_symlink_inside_the_root_but_never_its_target(
    tmp_path: Path, victim: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(victim)
    remove_tree(root / "link", root)
    assert not (root / "link").exists()
    assert (victim / "precious.txt").read_text() == "keep me"
    # A folder inside the root that is reached through a link pointing out is refused.
    (root / "escape").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        remove_tree(root / "escape" / "victim", root)
    assert (victim / "precious.txt").exists()


def test_remove_tree_removes_a_folder_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "mine" / "deep").mkdir(parents=True)
    remove_tree(root / "mine", root)
    assert not (root / "mine").exists() and root.is_dir()


def _hftchaos(*arguments: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "HFTCHAOS_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *arguments],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", ["../../victim", "/", ""])
def test_hftchaos_up_with_a_hostile_name_exits_2_and_removes_nothing(
    name: str, tmp_path: Path, victim: Path, isolated_home: Path
) -> None:
    # The cache is tmp/cache/hftchaos, so 'up/../../victim' would be tmp/cache/victim:
    # put a victim there as well as at the tmp root.
    near_victim = isolated_home.parent / "victim"
    near_victim.mkdir()
    (near_victim / "precious.txt").write_text("keep me")
    (isolated_home / "up" / "other").mkdir(parents=True)
    topology = tmp_path / "evil.yaml"
    topology.write_text(TOPOLOGY.format(name=_quoted(name)))
    result = _hftchaos("up", "--topology", str(topology), home=isolated_home, cwd=tmp_path)
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "name" in result.stderr + result.stdout
    assert (victim / "precious.txt").read_text() == "keep me"
    assert (near_victim / "precious.txt").read_text() == "keep me"
    assert (isolated_home / "up" / "other").is_dir()


@pytest.mark.parametrize("command", ["down", "status"])
def test_down_and_status_refuse_a_hostile_name(
    command: str, tmp_path: Path, victim: Path, isolated_home: Path
) -> None:
    result = _hftchaos(command, "--name", "../../victim", home=isolated_home, cwd=tmp_path)
    assert result.returncode == EXIT_BAD_INPUT, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert (victim / "precious.txt").read_text() == "keep me"
