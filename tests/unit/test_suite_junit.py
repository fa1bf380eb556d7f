"""JUnit XML: one testcase per scenario run, failures carry the broken SLOs and checks,
harness errors are <error>, counts add up; parsed back with xml.etree as CI would."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from harness.suite import SuiteResult, load_suite
from harness.suite.junit import write_junit
from harness.suite.outcome import RunOutcome

SUITE = Path(__file__).resolve().parents[1] / "data" / "suites" / "two.yaml"


def outcome(repeat: int, verdict: str, failures: list[str], error: str | None = None) -> RunOutcome:
    return RunOutcome(
        scenario="leader-kill",
        repeat=repeat,
        fault_class="leader_loss",
        run_dir=Path("/results/leader-kill") / f"2026111{repeat}T000000Z",
        verdict=verdict,
        duration_s=20.0 + repeat,
        load_duration_s=14,
        failures=failures,
        error=error,
        metrics={"downtime_ms": 100.0 * repeat},
    )


def suite_result() -> SuiteResult:
    result = SuiteResult(
        loaded=load_suite(SUITE),
        release="rc1",
        started_at="2026-11-24T19:00:00Z",
        finished_at="2026-11-24T19:02:00Z",
    )
    broken = [
        "SLO failover_ms = 912.5 (limit <= 800): invalid: 912.500 breaks the limit 800",
        "check no_lost_acks: invalid: order <x&y> acked but lost",
    ]
    result.outcomes += [
        outcome(1, "valid", []),
        outcome(2, "invalid", broken),
        outcome(
            3, "unknown", ["harness error: engine n2 did not start"], "engine n2 did not start"
        ),
    ]
    return result


def parse(tmp_path: Path) -> ElementTree.Element:
    path = write_junit(suite_result(), tmp_path / "junit.xml", tmp_path, Path("/results"))
    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ElementTree.parse(path).getroot()


def test_one_testcase_per_run_with_counts(tmp_path: Path) -> None:
    root = parse(tmp_path)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    for element in (root, suite):
        assert (element.get("tests"), element.get("failures"), element.get("errors")) == (
            "3",
            "1",
            "1",
        )
    assert suite.get("name") == "two"
    assert suite.get("time") == "66.000"
    assert suite.get("timestamp") == "2026-11-24T19:00:00"
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name"), c.get("time")) for c in cases] == [
        ("two", "leader-kill[1]", "21.000"),
        ("two", "leader-kill[2]", "22.000"),
        ("two", "leader-kill[3]", "23.000"),
    ]


def test_failure_and_error_texts(tmp_path: Path) -> None:
    passed, failed, errored = parse(tmp_path).iter("testcase")
    assert passed.find("failure") is None and passed.find("error") is None
    failure = failed.find("failure")
    assert failure is not None
    assert failure.get("type") == "invalid"
    assert (failure.get("message") or "").startswith("SLO failover_ms = 912.5")
    assert (failure.text or "").splitlines() == [
        "SLO failover_ms = 912.5 (limit <= 800): invalid: 912.500 breaks the limit 800",
        "check no_lost_acks: invalid: order <x&y> acked but lost",  # escaped and read back
    ]
    assert failed.find("error") is None
    error = errored.find("error")
    assert error is not None
    assert error.get("message") == "engine n2 did not start"
    assert errored.find("failure") is None
    output = failed.findtext("system-out") or ""
    assert "relative to the results root: leader-kill/20261112T000000Z" in output


def test_properties_carry_release_and_run_directories(tmp_path: Path) -> None:
    suite = parse(tmp_path).find("testsuite")
    assert suite is not None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["release"] == "rc1"
    assert properties["suite_dir"] == str(tmp_path)
    assert properties["verdict"] == "invalid"
    assert properties["run_dir.leader-kill[2]"] == "leader-kill/20261112T000000Z"
    # Suite-level <properties> come before the test cases, as the JUnit schema wants.
    assert [child.tag for child in suite][:2] == ["properties", "testcase"]


def test_a_long_failure_message_is_cut_but_the_text_is_whole(tmp_path: Path) -> None:
    result = suite_result()
    many = [f"check c{n}: invalid: " + "x" * 100 for n in range(20)]
    result.outcomes[:] = [outcome(1, "invalid", many)]
    path = write_junit(result, tmp_path / "junit.xml", tmp_path, Path("/results"))
    failure = ElementTree.parse(path).getroot().find("testsuite/testcase/failure")
    assert failure is not None
    assert len(failure.get("message") or "") == 500
    assert (failure.text or "").splitlines() == many
