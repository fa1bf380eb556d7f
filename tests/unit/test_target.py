"""A topology's `target:`: loaded by object path when the topology is, a bad path reported as
file:line with exit 2 and no traceback, a user's own checks next to their topology, and a run
judged through whichever target its topology names (no processes: a fake target)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.checks import GENERIC, GENERIC_PATH, load_target
from harness.commands import replay
from harness.errors import ScenarioError, TargetError, TopologyError
from harness.runner import ScenarioRun, _facts
from harness.scenario.loader import load_scenario
from harness.store.summary import RunStatus, TargetFacts, write_summary
from harness.toolchain import Toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan
from harness.verdicts import Verdict
from tests.summaries import a_summary

TOPOLOGY = """\
name: own
services:
  engine:
    role: engine
    ports: [http]
    command: ["${python}", -m, http.server, "${self.port.http}"]
"""
# A user's target, as targets/README.md ("Your own checks") describes it: its final state is
# a dict, one check is its own and one is named like a reference check.
USER_TARGET = """\
from pathlib import Path

from harness.checks import judged


def status_ok(history, final):
    violations = [] if final["status"] == "ok" else [f"status {final['status']}"]
    return judged("no_lost_acks", violations, [], {}, "status read")


def crashes(history, final):
    return final["missing"]


class Own:
    name = "own"
    checks = {"no_lost_acks": status_ok, "monotonic_timestamps": crashes}
    fail = False

    def collect(self, plan, logs):
        if self.fail:
            raise ConnectionError("engine did not answer")
        return {"status": "ok", "engines": sorted(plan.services)}

    def save_final_state(self, run_dir, final):
        Path(run_dir, "own_state.txt").write_text(final["status"])

    def load_final_state(self, run_dir):
        return {"status": Path(run_dir, "own_state.txt").read_text()}


TARGET = Own()
NOT_A_TARGET = 42
"""
SCENARIO = """\
name: own-run
topology: topology.yaml
load: {rate_per_s: 10, duration_s: 5}
checks: [no_lost_acks, monotonic_timestamps, kafka_gap_free]
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module with a target in the topology's folder, under a name no other test uses."""
    name = f"own_checks_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(USER_TARGET)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader may append the folder
    yield name
    sys.modules.pop(name, None)


def topology_with(tmp_path: Path, target: str | None) -> Path:
    file = tmp_path / "topology.yaml"
    file.write_text(TOPOLOGY + (f"target: {target}\n" if target is not None else ""))
    return file


def test_a_topology_without_target_gets_the_generic_target(tmp_path: Path) -> None:
    loaded = load_topology(topology_with(tmp_path, None))
    assert loaded.topology.target is None
    assert loaded.target() is GENERIC
    assert load_target(GENERIC_PATH) is GENERIC
    assert not GENERIC.checks


def test_a_users_target_next_to_the_topology_is_loaded(tmp_path: Path, user_module: str) -> None:
    loaded = load_topology(topology_with(tmp_path, f"{user_module}:TARGET"))
    target = loaded.target()
    assert target.name == "own"
    assert set(target.checks) == {"no_lost_acks", "monotonic_timestamps"}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("targets.reference.checks", "is not an object path; write package.module:NAME"),
        ("targets/reference:TARGET", "is not an object path"),
        ("no_such_package_here.checks:TARGET", "cannot import no_such_package_here.checks: "),
        ("{module}:MISSING", "module {module} has no 'MISSING'"),
        ("{module}:NOT_A_TARGET", "is not a target: this int has no name, checks, collect"),
    ],
)
def test_a_bad_target_names_the_file_line_and_what_is_wrong(
    tmp_path: Path, user_module: str, path: str, expected: str
) -> None:
    file = topology_with(tmp_path, path.format(module=user_module))
    with pytest.raises(TopologyError) as caught:
        load_topology(file)
    message = str(caught.value)
    assert message.startswith(f"{file}:7: target: "), message
    assert expected.format(module=user_module) in message


def test_a_module_that_fails_to_import_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    name = f"broken_checks_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("raise RuntimeError('half-written')\n")
    with pytest.raises(TargetError, match=f"cannot import {name}: RuntimeError: half-written"):
        load_target(f"{name}:TARGET", tmp_path)


def test_validate_and_run_refuse_a_bad_target_with_exit_2_and_no_traceback(
    tmp_path: Path,
) -> None:
    topology_with(tmp_path, "no_such_package_here:TARGET")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    for command in ("validate", "run"):
        result = subprocess.run(
            [sys.executable, "-m", "harness.cli", command, str(scenario)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = " ".join((result.stdout + result.stderr).split())
        assert result.returncode == 2, output
        assert "Traceback" not in output
        assert f"{tmp_path / 'topology.yaml'}:7: target: cannot import no_such_package_here" in (
            output
        )


def test_a_scenario_may_list_its_targets_own_checks_and_no_typo(
    tmp_path: Path, user_module: str
) -> None:
    topology_with(tmp_path, f"{user_module}:TARGET")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO.replace("kafka_gap_free", "status_fine"))
    (tmp_path / user_module).with_suffix(".py").write_text(
        USER_TARGET.replace('"no_lost_acks": status_ok', '"status_fine": status_ok')
    )
    assert load_scenario(scenario).scenario.checks[2] == "status_fine"  # its own name
    scenario.write_text(SCENARIO.replace("kafka_gap_free", "no_lost_ack"))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(scenario)
    assert f"{scenario}:4: checks.2: unknown check 'no_lost_ack'; target 'own' provides: " in (
        str(caught.value)
    )


def run_judged_by(
    tmp_path: Path, target: str | None, fake_toolchain: Toolchain, fail: bool = False
) -> ScenarioRun:
    """A scenario run through collect and judge, with no process started: the history is empty,
    so only the checks decide anything."""
    topology_with(tmp_path, target)
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    run = ScenarioRun(load_scenario(tmp_path / "scenario.yaml"), None, lambda _: None)
    if fail:
        run.target.fail = True  # type: ignore[attr-defined]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    plan = make_plan(run.loaded.topology, run_dir, fake_toolchain)
    run._collect_final_state(plan, run_dir, None)
    return run


def test_a_run_is_judged_by_the_checks_its_target_provides(
    tmp_path: Path, user_module: str, fake_toolchain: Toolchain
) -> None:
    run = run_judged_by(tmp_path, f"{user_module}:TARGET", fake_toolchain)
    assert run.final == {"status": "ok", "engines": ["engine"]}
    assert (tmp_path / "run" / "own_state.txt").read_text() == "ok"
    verdict, *_, checks = run.judge()
    assert [(c.name, c.verdict) for c in checks] == [
        ("no_lost_acks", Verdict.VALID),
        ("monotonic_timestamps", Verdict.UNKNOWN),  # it raised: unknown, never valid
        ("kafka_gap_free", Verdict.NOT_APPLICABLE),
    ]
    assert verdict is Verdict.UNKNOWN
    facts = _facts(run, 0.0, RunStatus.FINISHED, {})
    assert facts.target.object_path == f"{user_module}:TARGET"  # what `replay` will ask


def test_a_failed_collection_makes_the_targets_checks_unknown(
    tmp_path: Path, user_module: str, fake_toolchain: Toolchain
) -> None:
    run = run_judged_by(tmp_path, f"{user_module}:TARGET", fake_toolchain, fail=True)
    verdict, *_, checks = run.judge()
    assert [(c.name, c.verdict) for c in checks] == [
        ("no_lost_acks", Verdict.UNKNOWN),
        ("monotonic_timestamps", Verdict.UNKNOWN),
        ("kafka_gap_free", Verdict.NOT_APPLICABLE),
    ]
    assert checks[0].explanation == "ConnectionError: engine did not answer"
    assert verdict is Verdict.UNKNOWN


def test_a_run_without_target_has_no_failing_check(
    tmp_path: Path, fake_toolchain: Toolchain
) -> None:
    run = run_judged_by(tmp_path, None, fake_toolchain)
    assert run.final is None  # nothing to collect for checks nobody provides
    verdict, *_, checks = run.judge()
    assert {c.verdict for c in checks} == {Verdict.NOT_APPLICABLE}
    assert verdict is Verdict.VALID
    assert _facts(run, 0.0, RunStatus.FINISHED, {}).target.object_path == GENERIC_PATH


def test_replay_says_in_one_line_when_the_target_cannot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_summary(run_dir, a_summary(target=TargetFacts(name="own", object_path=GENERIC_PATH)))
    code = replay.run(replay_arguments(run_dir))
    assert code == 2
    assert (
        capsys.readouterr().err.strip() == "error: target generic has no replay: nothing to compare"
    )


def replay_arguments(run_dir: Path, target: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(run_dir=str(run_dir), target=target)
