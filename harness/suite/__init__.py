"""Suites: run scenarios in order with repeats, then JUnit XML, suite.json and a suite report
with availability and a projected annual downtime. See scenarios/README.md ("Suites")."""

from harness.suite.loader import LoadedSuite, PlannedScenario, SuiteError, load_suite
from harness.suite.runner import SuiteResult, run_suite

__all__ = [
    "LoadedSuite",
    "PlannedScenario",
    "SuiteError",
    "SuiteResult",
    "load_suite",
    "run_suite",
]
