"""Suite files: mistakes name file:line and field and exit 2; fault classes are derived from
the scenarios' faults unless stated; the nightly suite covers the whole library."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import EXIT_BAD_INPUT
from harness.suite import SuiteError, load_suite

REPOSITORY = Path(__file__).resolve().parents[2]
SCENARIOS = REPOSITORY / "scenarios"

GOOD = f"""\
name: small
release: rc1
scenarios:
  - file: {SCENARIOS}/leader-kill.yaml
    repeat: 2
  - file: {SCENARIOS}/rolling-restart.yaml
  - {{file: {SCENARIOS}/leader-isolation.yaml, fault_class: leader_loss}}
  - file: {SCENARIOS}/kafka-broker-kill.yaml
availability:
  annual_downtime_budget_s: 9000
  incidents_per_year: {{leader_loss: 24, network: 52}}
"""

CASES = {
    "unknown top-level key": (
        GOOD.replace("release: rc1\n", "release: rc1\ncolour: red\n"),
        [":3: colour: unknown key 'colour'; valid keys here:", "scenarios"],
    ),
    "share_topology not a boolean": (
        GOOD.replace("release: rc1\n", "release: rc1\nshare_topology: sometimes\n"),
        [":3: share_topology: Input should be a valid boolean"],
    ),
    "repeat zero": (
        GOOD.replace("repeat: 2", "repeat: 0"),
        [":5: scenarios.0.repeat: Input should be greater than or equal to 1"],
    ),
    "unknown entry key": (
        GOOD.replace("    repeat: 2\n", "    repeat: 2\n    times: 3\n"),
        [":6: scenarios.0.times: unknown key 'times'; valid keys here: file, repeat, fault_class"],
    ),
    "missing availability": (
        GOOD.split("availability:")[0],
        [":1: availability: required but missing"],
    ),
    "negative frequency": (
        GOOD.replace("network: 52", "network: -1"),
        [":11: availability.incidents_per_year.network: Input should be greater than or equal"],
    ),
    "bad class name": (
        GOOD.replace("fault_class: leader_loss", "fault_class: Leader Loss"),
        [":7: scenarios.2.fault_class: String should match pattern"],
    ),
    "no budget": (
        GOOD.replace("  annual_downtime_budget_s: 9000\n", ""),
        [":9: availability.annual_downtime_budget_s: required but missing"],
    ),
    "missing scenario file": (
        GOOD.replace("rolling-restart.yaml", "rolling-restrat.yaml"),
        [":6: scenarios.1.file: no such file", "rolling-restrat.yaml"],
    ),
    "listed twice": (
        GOOD.replace("kafka-broker-kill.yaml", "leader-kill.yaml"),
        [":8: scenarios.3.file: scenario 'leader-kill' is listed twice; use 'repeat'"],
    ),
    "not yaml": ("name: [unclosed\n", [":2: not valid YAML"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_suite_names_line_and_field(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    file = tmp_path / "suite.yaml"
    file.write_text(text)
    with pytest.raises(SuiteError) as raised:
        load_suite(file)
    message = str(raised.value)
    assert message.startswith(str(file))
    for part in expected:
        assert part in message, message


def test_an_invalid_scenario_is_reported_through_the_suite(tmp_path: Path) -> None:
    scenario = tmp_path / "broken.yaml"
    scenario.write_text("name: broken\nload: {rate_per_s: fast, duration_s: 10}\n")
    suite = tmp_path / "suite.yaml"
    suite.write_text(GOOD.replace(f"{SCENARIOS}/rolling-restart.yaml", "broken.yaml"))
    with pytest.raises(SuiteError) as raised:
        load_suite(suite)
    message = str(raised.value)
    assert f"{suite}:6: scenarios.1.file: the scenario is not valid" in message
    assert f"{scenario}:2: load.rate_per_s" in message


def test_fault_classes_are_derived_or_stated(tmp_path: Path) -> None:
    file = tmp_path / "suite.yaml"
    file.write_text(GOOD)
    loaded = load_suite(file)
    classes = {planned.name: planned.fault_class for planned in loaded.scenarios}
    assert classes == {
        "leader-kill": "leader_loss",
        "rolling-restart": "maintenance",
        "leader-isolation": "leader_loss",  # stated; its partition alone would say network
        "kafka-broker-kill": "broker",
    }
    assert loaded.total_runs == 5
    assert loaded.suite.release == "rc1"
    assert loaded.suite.share_topology is False  # runs are independent unless asked
    assert loaded.scenarios[0].load_duration_s == 14


def test_scenario_files_are_relative_to_the_suite_file(tmp_path: Path) -> None:
    suites = tmp_path / "suites"
    suites.mkdir()
    (tmp_path / "leader-kill.yaml").write_text((SCENARIOS / "leader-kill.yaml").read_text())
    file = suites / "suite.yaml"
    file.write_text(
        "name: relative\nscenarios: [{file: ../leader-kill.yaml}]\n"
        "availability: {annual_downtime_budget_s: 60}\n"
    )
    assert load_suite(file).scenarios[0].file == tmp_path / "leader-kill.yaml"


def test_the_nightly_suite_runs_the_whole_library() -> None:
    loaded = load_suite(SCENARIOS / "suites" / "nightly.yaml")
    library = {path.stem for path in SCENARIOS.glob("*.yaml")}
    assert {planned.name for planned in loaded.scenarios} == library
    assert loaded.suite.release == "nightly"
    assert loaded.suite.availability.annual_downtime_budget_s == 9000
    measured_classes = {planned.fault_class for planned in loaded.scenarios}
    assert measured_classes <= set(loaded.suite.availability.incidents_per_year)


def test_the_command_exits_2_with_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "suite.yaml"
    file.write_text(GOOD.replace("repeat: 2", "repeat: many"))
    assert main(["suite", str(file)]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert f"{file}:5: scenarios.0.repeat" in " ".join(error.split())
    assert "Traceback" not in error
