"""JUnit XML for CI: one <testcase> per scenario run. The shape is the common subset Jenkins
and GitLab both read: <testsuites><testsuite> with counts, suite-level <properties>, and per
case <failure> (the system broke an SLO or check) or <error> (the harness could not run or
judge it), the details as text and the run directory in <system-out>."""

from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from harness.store.atomic import write_atomically
from harness.suite.outcome import CaseState, RunOutcome
from harness.suite.runner import SuiteResult

# A failure's message attribute is a one-line summary; the full list is its text.
MESSAGE_LIMIT = 500


def _message(lines: list[str]) -> str:
    text = "; ".join(lines) or "not valid"
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def _testcase(suite_name: str, outcome: RunOutcome, results_root: Path) -> ElementTree.Element:
    case = ElementTree.Element(
        "testcase",
        classname=suite_name,
        name=outcome.case_name,
        time=f"{outcome.duration_s:.3f}",
    )
    if outcome.state is CaseState.ERROR:
        error = ElementTree.SubElement(
            case, "error", message=_message([outcome.error or "harness error"]), type="harness"
        )
        error.text = "\n".join(outcome.failures)
    elif outcome.state is CaseState.FAILED:
        failure = ElementTree.SubElement(
            case, "failure", message=_message(outcome.failures), type=outcome.verdict
        )
        failure.text = "\n".join(outcome.failures) or f"verdict {outcome.verdict}"
    if outcome.run_dir is not None:
        output = ElementTree.SubElement(case, "system-out")
        relative = os.path.relpath(outcome.run_dir, results_root)
        output.text = f"run directory: {outcome.run_dir}\nrelative to the results root: {relative}"
    return case


def junit_document(result: SuiteResult, suite_dir: Path, results_root: Path) -> ElementTree.Element:
    outcomes = result.outcomes
    counts = {
        state: sum(1 for o in outcomes if o.state is state)
        for state in (CaseState.FAILED, CaseState.ERROR)
    }
    total_time = f"{sum(o.duration_s for o in outcomes):.3f}"
    root = ElementTree.Element(
        "testsuites",
        name=result.name,
        tests=str(len(outcomes)),
        failures=str(counts[CaseState.FAILED]),
        errors=str(counts[CaseState.ERROR]),
        time=total_time,
    )
    suite = ElementTree.SubElement(
        root,
        "testsuite",
        name=result.name,
        tests=str(len(outcomes)),
        failures=str(counts[CaseState.FAILED]),
        errors=str(counts[CaseState.ERROR]),
        skipped="0",
        time=total_time,
        timestamp=result.started_at.removesuffix("Z"),
        hostname=socket.gethostname(),
    )
    properties = ElementTree.SubElement(suite, "properties")
    for name, value in (
        ("release", result.release or ""),
        ("suite_file", str(result.loaded.file.resolve())),
        ("suite_dir", str(suite_dir)),
        ("status", result.status),
        ("verdict", result.verdict.value),
    ):
        ElementTree.SubElement(properties, "property", name=name, value=value)
    for outcome in outcomes:
        if outcome.run_dir is not None:
            ElementTree.SubElement(
                properties,
                "property",
                name=f"run_dir.{outcome.case_name}",
                value=os.path.relpath(outcome.run_dir, results_root),
            )
    suite.extend(_testcase(result.name, outcome, results_root) for outcome in outcomes)
    return root


def write_junit(result: SuiteResult, path: Path, suite_dir: Path, results_root: Path) -> Path:
    document = junit_document(result, suite_dir, results_root)
    ElementTree.indent(document)
    data = ElementTree.tostring(document, encoding="utf-8", xml_declaration=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda temporary: temporary.write_bytes(data + b"\n"))
    return path
