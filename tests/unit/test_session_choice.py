"""`hftchaos status` and `down` without --name: the one topology that is up."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.local.backend import STATE_FILE
from harness.errors import BackendError
from harness.running_topologies import chosen_topology, topologies_up


@pytest.fixture
def supervisor() -> Iterator[int]:
    """A real process whose command line reads like an `up` supervisor's."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "hftchaos"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def up(home: Path, name: str, pid: int) -> None:
    folder = home / "up" / name
    folder.mkdir(parents=True)
    (folder / STATE_FILE).write_text(json.dumps({"supervisor_pid": pid, "services": {}}))


def test_the_one_topology_up_is_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, supervisor: int
) -> None:
    monkeypatch.setenv("HFTCHAOS_HOME", str(tmp_path))
    assert topologies_up() == [] and chosen_topology(None) == "reference"
    up(tmp_path, "nats-jetstream", supervisor)
    up(tmp_path, "stale", 2**22 + 12345)  # its supervisor is gone: not up
    (tmp_path / "up" / "Not A Name").mkdir()
    assert topologies_up() == ["nats-jetstream"]
    assert chosen_topology(None) == "nats-jetstream"
    assert chosen_topology("reference") == "reference"  # --name always wins
    up(tmp_path, "other", supervisor)
    with pytest.raises(BackendError, match=r"2 topologies are up \(nats-jetstream, other\)"):
        chosen_topology(None)
