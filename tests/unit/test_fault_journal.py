"""The run-state journal, the pid guardrail and `hftchaos heal`, on real processes (sleep)
and real files; no topology. The kernel-rule and Toxiproxy steps are exercised by
tests/integration/test_heal_after_sigkill.py."""

from __future__ import annotations

import dataclasses
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.backends.base import ServiceFacts
from harness.backends.fakes import FakeBackend
from harness.cli import main
from harness.errors import GuardrailError
from harness.faults import journal_heal
from harness.faults.base import FaultContext, HealRegistry
from harness.faults.journal import (
    ContinueProcesses,
    FaultJournal,
    JournalState,
    RemoveToxics,
    ResetClocks,
    RunStarted,
    read_journal,
)
from harness.faults.journal_heal import HealOutcome, heal_crashed_run
from harness.faults.kinds.kill import KillFault
from harness.faults.kinds.kill import inject as inject_kill
from harness.faults.kinds.pause import PauseFault
from harness.faults.kinds.pause import inject as inject_pause
from harness.faults.owned import OwnedProcess, ProcessGuard, own
from harness.faults.stale import entries, register_run, unfinished
from harness.paths import REFERENCE_TOPOLOGY
from harness.toolchain import Toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan


@pytest.fixture(autouse=True)
def _own_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HFTCHAOS_RUN_REGISTRY", str(tmp_path / "registry"))


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def _dead_owner() -> OwnedProcess:
    """A harness that has ended: a real process, started and reaped."""
    process = subprocess.Popen(["true"])
    owned = own("(harness)", process.pid)
    process.wait()
    return owned


def _crashed_journal(run_dir: Path, run_id: str = "crashed01") -> FaultJournal:
    journal = FaultJournal(run_dir / "journal.jsonl")
    journal.write(RunStarted(run_id=run_id, run_dir=str(run_dir), owner=_dead_owner()))
    register_run(run_id, journal.path)
    return journal


def _stopped(process: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 5
    while psutil.Process(process.pid).status() != psutil.STATUS_STOPPED:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_lines_read_back_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    journal = FaultJournal.start(tmp_path, "run1")
    journal.intend(2, "clock_skew", ["n1"], [ResetClocks(files=["/x"])])
    journal.intend(1001, "pause", ["n2"], [ContinueProcesses(processes=[])])
    journal.healed(2)
    with journal.path.open("a") as file:
        file.write('{"entry": "fault", "key": 5, "ki')  # SIGKILL mid-write
    state = read_journal(journal.path)
    assert state.run is not None and state.run.run_id == "run1"
    assert [fault.key for fault in state.unhealed] == [1001]
    assert state.closed is None


def test_a_bad_line_before_the_last_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"entry": "nonsense"}\n{"entry": "healed", "key": 1}\n')
    with pytest.raises(ValueError):
        read_journal(path)


def test_the_guard_refuses_a_pid_it_did_not_record(sleeper: subprocess.Popen[bytes]) -> None:
    guard = ProcessGuard()
    guard.record("n1", sleeper.pid)
    assert guard.check("n1", sleeper.pid).pid == sleeper.pid
    with pytest.raises(GuardrailError, match="pid 1 is not the process this run started"):
        guard.check("n1", 1)
    with pytest.raises(GuardrailError, match="n9 was not started by this run"):
        guard.check("n9", sleeper.pid)


def test_the_guard_refuses_a_reused_pid(sleeper: subprocess.Popen[bytes]) -> None:
    """The recorded pid is now another process: its start time differs from the record."""
    guard = ProcessGuard()
    recorded = guard.record("n1", sleeper.pid)
    guard._owned["n1"] = recorded.model_copy(update={"started_tick": recorded.started_tick - 30})
    with pytest.raises(GuardrailError, match="now belongs to another process"):
        guard.check("n1", sleeper.pid)


def test_a_recorded_process_stays_itself_when_the_boot_time_moves(
    sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel recomputes /proc/stat's btime from the wall clock; in CI it moved by a whole
    second mid-run and every live service was refused as a reused pid."""
    guard = ProcessGuard()
    guard.record("n1", sleeper.pid)
    moved = psutil.boot_time() + 1.0
    monkeypatch.setattr(psutil._pslinux, "boot_time", lambda: moved)
    psutil.Process(sleeper.pid).create_time()  # psutil now reports a start a second later
    assert guard.check("n1", sleeper.pid).pid == sleeper.pid


@dataclasses.dataclass
class PidBackend(FakeBackend):
    """A fake that reports pids: the ones a test says the services have now."""

    pids: dict[str, int] = dataclasses.field(default_factory=dict)

    def facts(self, name: str) -> ServiceFacts:
        return dataclasses.replace(super().facts(name), pid=self.pids.get(name))


def _context(backend: PidBackend, guard: ProcessGuard, journal: FaultJournal) -> FaultContext:
    return FaultContext(backend, backend.plan, "run1", guard=guard, journal=journal)


def test_a_kill_aimed_at_a_process_the_run_did_not_start_is_refused(
    fake_toolchain: Toolchain, tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    plan = make_plan(load_topology(REFERENCE_TOPOLOGY), tmp_path, fake_toolchain)
    backend = PidBackend(plan)
    backend.up()
    guard = ProcessGuard()
    guard.record("n2", sleeper.pid)
    backend.pids["n2"] = 1  # something else now answers for n2
    journal = FaultJournal.start(tmp_path, "run1")
    with pytest.raises(GuardrailError, match="n2: pid 1 is not the process"):
        inject_kill(
            KillFault(type="kill", at_s=0, target="n2"), 1, _context(backend, guard, journal)
        )
    assert ("kill", "n2") not in backend.calls
    assert read_journal(journal.path).faults == {}, "nothing refused is journaled"


def test_a_fault_is_journaled_before_it_is_applied_and_its_heal_after(
    fake_toolchain: Toolchain, tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    plan = make_plan(load_topology(REFERENCE_TOPOLOGY), tmp_path, fake_toolchain)
    journal = FaultJournal.start(tmp_path, "run1")

    class Watching(PidBackend):
        def pause(self, name: str) -> None:
            # At the moment of the action, the journal already holds its undo.
            assert read_journal(journal.path).unhealed[0].kind == "pause"
            super().pause(name)

    backend = Watching(plan, pids={"n2": sleeper.pid})
    backend.up()
    guard = ProcessGuard()
    guard.record("n2", sleeper.pid)
    registry = HealRegistry(journal=journal)
    fault = PauseFault(type="pause", at_s=0, duration_s=1, target="n2")
    registry.add(7, inject_pause(fault, 7, _context(backend, guard, journal)))
    undo = read_journal(journal.path).faults[7].undo
    assert undo == [ContinueProcesses(processes=[guard.check("n2", sleeper.pid)])]
    registry.heal(7)
    assert read_journal(journal.path).unhealed == []


def test_heal_of_a_crashed_run_resets_clocks_continues_and_ends_its_processes(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    clock = tmp_path / "services" / "n1" / "faketime.offset"
    clock.parent.mkdir(parents=True)
    clock.write_text("+5.000000\n")
    journal = _crashed_journal(tmp_path)
    owned = own("n2", sleeper.pid)
    journal.process(owned)
    journal.intend(1, "clock_skew", ["n1"], [ResetClocks(files=[str(clock)])])
    sleeper.send_signal(19)  # SIGSTOP, as the pause fault did
    assert _stopped(sleeper)
    journal.intend(2, "pause", ["n2"], [ContinueProcesses(processes=[owned])])
    assert [entry.run_id for entry in unfinished(entries())] == ["crashed01"]

    assert main(["heal"]) == 0
    printed = capsys.readouterr().out
    assert "healed run crashed01" in printed and "fault 2 (pause)" in printed
    assert float(clock.read_text()) == 0
    assert sleeper.wait(timeout=5) == -9  # continued, then ended: it was the run's
    state = read_journal(journal.path)
    assert state.unhealed == [] and state.closed is not None and state.closed.errors == []
    assert unfinished(entries()) == []
    assert main(["heal"]) == 0
    assert "nothing to heal" in capsys.readouterr().out


def test_heal_names_what_it_could_not_undo_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Toxiproxy whose process is unknown and whose API does not answer: not healed."""
    journal = _crashed_journal(tmp_path)
    undo = RemoveToxics(api="http://127.0.0.1:9", server=None, links=["l1"], toxics=["t"])
    journal.intend(3, "latency", ["l1"], [undo])
    assert main(["heal"]) == 3
    assert "fault 3 (latency): remove_toxics failed" in capsys.readouterr().err
    assert [entry.run_id for entry in unfinished(entries())] == ["crashed01"], "kept to retry"


def test_a_heal_does_not_end_a_process_whose_pid_was_reused(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    journal = _crashed_journal(tmp_path)
    recorded = own("n2", sleeper.pid)
    journal.process(recorded.model_copy(update={"started_tick": recorded.started_tick - 30}))
    outcome = heal_crashed_run(read_journal(journal.path), "test")
    assert outcome.healed and outcome.ended == []
    assert sleeper.poll() is None, "an unrelated process with a recorded pid was signalled"


def test_a_live_owner_is_not_healed(tmp_path: Path) -> None:
    journal = FaultJournal.start(tmp_path, "alive01")  # this test's own process owns it
    register_run("alive01", journal.path)
    assert unfinished(entries()) == []


def test_a_registry_that_cannot_be_written_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("HFTCHAOS_RUN_REGISTRY", str(blocker / "registry"))
    from harness.errors import RuntimeEnvironmentError

    with pytest.raises(RuntimeEnvironmentError, match="cannot register the run in"):
        register_run("run1", tmp_path / "journal.jsonl")


class ReapedOnDeath:
    """A listed process as psutil shows it when init reaps it the instant it dies (as it
    reaps a dead harness's services): once killed, nothing about it can be read."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.pid, self._real = process.pid, psutil.Process(process.pid)

    def name(self) -> str:
        try:
            self._real.wait(timeout=0.2)  # reaps it if it has been killed
        except psutil.TimeoutExpired:
            return str(self._real.name())  # alive
        raise psutil.NoSuchProcess(self.pid)


def test_a_marked_process_that_ends_while_the_heal_ends_the_others_is_skipped(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's marked processes are listed, then ended one by one: one gone by its turn
    (its group's SIGKILL took it, or it ended by itself) is nothing left to end, and one the
    heal has just killed is named from before the kill, not read back from a /proc entry
    already gone (seen in CI as NoSuchProcess crashing a Docker run's `hftchaos heal`)."""
    gone = subprocess.Popen(["true"])
    listed_gone = psutil.Process(gone.pid)
    gone.wait()
    listed = [listed_gone, ReapedOnDeath(sleeper)]
    monkeypatch.setattr(journal_heal, "processes_of_run", lambda _run: listed)
    state = JournalState(
        path=tmp_path / "journal.jsonl",
        run=RunStarted(run_id="r1", run_dir=str(tmp_path), owner=_dead_owner()),
    )
    outcome = HealOutcome("r1")
    journal_heal.end_processes(state, outcome)
    assert outcome.ended == [f"sleep (pid {sleeper.pid}, by its run marker)"]
    assert sleeper.wait(timeout=5) == -9
