"""Start groups on real processes: three members of a stand-in quorum system
(programs/quorum_member.py) whose health endpoint answers 200 only once a majority of them
run. Started one at a time, the first waits for the others forever (the deadlock a new user
hit with an HTTP health check); in one `group`, they start together and come up."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from harness.backends.local import LocalBackend
from harness.errors import BackendError
from harness.faults.owned import start_tick
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan

PROGRAM = Path(__file__).parent / "programs" / "quorum_member.py"
TOPOLOGY = """\
name: quorum
services:
  member:
    members: 3
    host: "127.0.0.${{member.index+90}}"
{group}    ports: [peer, http]
    command: ["${{python}}", "{program}", --peer, "${{self.address.peer}}",
              --http, "${{self.address.http}}", --lifetime-s, "120",
              --peers, "{peers}"]
    health: {{http: "http://${{self.address.http}}/health", timeout_s: {timeout_s}}}
"""


def quorum_backend(tmp_path: Path, group: bool, timeout_s: float) -> LocalBackend:
    file = tmp_path / "quorum.yaml"
    file.write_text(
        TOPOLOGY.format(
            group="    group: quorum\n" if group else "",
            program=PROGRAM,
            peers=",".join(f"${{services.member-{i}.address.peer}}" for i in (1, 2, 3)),
            timeout_s=timeout_s,
        )
    )
    plan = make_plan(load_topology(file), tmp_path / "run", locate_toolchain())
    return LocalBackend(plan)


def test_a_group_starts_together_and_its_quorum_health_checks_pass(tmp_path: Path) -> None:
    with quorum_backend(tmp_path, group=True, timeout_s=20) as backend:
        assert backend.plan.start_steps == [["member-1", "member-2", "member-3"]]
        backend.up()
        pids = [backend.facts(f"member-{index}").pid for index in (1, 2, 3)]
        assert all(pid is not None and psutil.pid_exists(pid) for pid in pids), pids
        ticks = [start_tick(pid) for pid in pids if pid is not None]
        # All three were started before any was waited for: within a fraction of a second
        # (clock ticks are 10 ms), where one at a time each waits for the one before.
        assert max(ticks) - min(ticks) <= 50, ticks


def test_one_at_a_time_the_first_member_never_becomes_healthy(tmp_path: Path) -> None:
    with quorum_backend(tmp_path, group=False, timeout_s=3) as backend:
        assert backend.plan.start_steps == [["member-1"], ["member-2"], ["member-3"]]
        with pytest.raises(BackendError, match="member-1"):
            backend.up()
        assert backend.facts("member-2").pid is None, "member-2 started before member-1 was up"
