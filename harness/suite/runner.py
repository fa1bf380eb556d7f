"""Run a suite: every repeat of every scenario, in order, each a fresh run. A failed SLO,
a failed check or a harness error in one run becomes that run's outcome and the suite goes
on; only an interruption, a missing toolchain or harness errors run after run stop it, and
what finished is kept either way."""

from __future__ import annotations

import datetime
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.markup import escape

from harness.errors import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK, HarnessError, ToolchainError
from harness.lifecycle import Interrupted
from harness.paths import results_root, utc_stamp
from harness.runner import RunResult
from harness.store.summary import RunStatus
from harness.suite.loader import LoadedSuite, PlannedScenario
from harness.suite.outcome import CaseState, RunOutcome, failures_from_summary
from harness.verdicts import Verdict

# Runs one repeat (1-based) of a scenario; the command passes harness.runner.run_scenario
# with its live view, tests pass fakes.
RunOne = Callable[[PlannedScenario, int], RunResult]
Progress = Callable[[str], None]

# This many harness errors in a row means the machine, not one scenario, is broken.
CONSECUTIVE_ERRORS_TO_STOP = 3


def iso_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SuiteResult:
    loaded: LoadedSuite
    release: str | None
    started_at: str
    finished_at: str = ""
    outcomes: list[RunOutcome] = field(default_factory=list)
    stopped_by: str | None = None  # a harness error that ended the suite early
    interrupted_by: BaseException | None = None  # Ctrl-C or SIGTERM; re-raised after writing

    @property
    def name(self) -> str:
        return self.loaded.suite.name

    @property
    def status(self) -> str:
        if self.interrupted_by is not None:
            return "interrupted"
        return "stopped" if self.stopped_by else "finished"

    @property
    def verdict(self) -> Verdict:
        verdicts = [
            Verdict.UNKNOWN if outcome.error else Verdict(outcome.verdict)
            for outcome in self.outcomes
        ]
        if len(self.outcomes) < self.loaded.total_runs:
            verdicts.append(Verdict.UNKNOWN)  # not everything ran
        return Verdict.worst(verdicts)

    @property
    def exit_code(self) -> int:
        if self.stopped_by:
            return EXIT_ENVIRONMENT
        if all(outcome.state is CaseState.PASSED for outcome in self.outcomes):
            return EXIT_OK if len(self.outcomes) == self.loaded.total_runs else EXIT_FAILED
        return EXIT_FAILED


def outcome_of(planned: PlannedScenario, repeat: int, result: RunResult, took: float) -> RunOutcome:
    summary = result.summary
    error = "; ".join(result.errors) if result.errors else None
    if summary is None:  # _finish always writes one; a RunResult made elsewhere may not
        error = error or "the run has no summary"
    return RunOutcome(
        scenario=planned.name,
        repeat=repeat,
        fault_class=planned.fault_class,
        run_dir=result.run_dir,
        verdict=result.verdict.value,
        status=summary.status.value if summary else RunStatus.ABORTED.value,
        duration_s=took,
        load_duration_s=planned.load_duration_s,
        failures=failures_from_summary(summary) if summary else [f"harness error: {error}"],
        error=error,
        metrics=summary.metrics.by_name() if summary and summary.metrics else {},
        downtime_budget_ms=planned.downtime_budget_ms,
    )


def _run_dir_since(scenario: str, stamp: str) -> Path | None:
    """The run directory a run that raised had made: run_scenario names it by its UTC stamp,
    which sorts as text, so it is the newest one at or after `stamp`."""
    parent = results_root() / scenario
    if not parent.is_dir():
        return None
    made = sorted(
        d for d in parent.iterdir() if d.is_dir() and not d.is_symlink() and d.name >= stamp
    )
    return made[-1] if made else None


def errored_outcome(
    planned: PlannedScenario, repeat: int, message: str, took: float, run_dir: Path | None
) -> RunOutcome:
    return RunOutcome(
        scenario=planned.name,
        repeat=repeat,
        fault_class=planned.fault_class,
        run_dir=run_dir,
        verdict=Verdict.UNKNOWN.value,
        status=RunStatus.ABORTED.value,
        duration_s=took,
        load_duration_s=planned.load_duration_s,
        failures=[f"harness error: {message}"],
        error=message,
        downtime_budget_ms=planned.downtime_budget_ms,
    )


def _run_once(
    planned: PlannedScenario, repeat: int, run_one: RunOne, result: SuiteResult
) -> RunOutcome:
    stamp = utc_stamp()
    started = time.monotonic()
    try:
        run = run_one(planned, repeat)
    except (KeyboardInterrupt, Interrupted) as stop:
        took = time.monotonic() - started
        result.interrupted_by = stop
        message = f"interrupted ({stop or 'Ctrl-C'})"
        return errored_outcome(planned, repeat, message, took, _run_dir_since(planned.name, stamp))
    except ToolchainError as error:
        result.stopped_by = f"the toolchain is not usable: {error}"
        message = str(error)
    except HarnessError as error:
        message = str(error)
    except Exception as error:  # a bug in the harness: this run errs, the suite goes on
        last = traceback.format_exception(error)[-1].strip()
        message = f"internal error (a bug in hftchaos): {last}"
    else:
        return outcome_of(planned, repeat, run, time.monotonic() - started)
    took = time.monotonic() - started
    return errored_outcome(planned, repeat, message, took, _run_dir_since(planned.name, stamp))


def _consecutive_errors(outcomes: list[RunOutcome]) -> int:
    count = 0
    for outcome in reversed(outcomes):
        if outcome.state is not CaseState.ERROR:
            break
        count += 1
    return count


def run_suite(
    loaded: LoadedSuite, release: str | None, run_one: RunOne, progress: Progress
) -> SuiteResult:
    """Never raises for a run's sake; an interruption is kept in `interrupted_by` for the
    caller to re-raise once it has written what finished."""
    result = SuiteResult(loaded=loaded, release=release, started_at=iso_now())
    try:
        _run_all(result, run_one, progress)
    except (KeyboardInterrupt, Interrupted) as stop:  # between runs, not inside one
        result.interrupted_by = stop
    finally:
        result.finished_at = iso_now()
    return result


def _run_all(result: SuiteResult, run_one: RunOne, progress: Progress) -> None:
    total = result.loaded.total_runs
    for planned in result.loaded.scenarios:
        for repeat in range(1, planned.repeat + 1):
            number = len(result.outcomes) + 1
            progress(escape(f"[{number}/{total}] {planned.name}[{repeat}] ({planned.fault_class})"))
            outcome = _run_once(planned, repeat, run_one, result)
            result.outcomes.append(outcome)
            progress(_outcome_line(outcome))
            if result.interrupted_by is not None or result.stopped_by:
                return
            if _consecutive_errors(result.outcomes) >= CONSECUTIVE_ERRORS_TO_STOP:
                result.stopped_by = (
                    f"{CONSECUTIVE_ERRORS_TO_STOP} runs in a row ended in a harness error; "
                    f"the last: {outcome.error}"
                )
                return


def _outcome_line(outcome: RunOutcome) -> str:
    downtime = outcome.downtime_ms
    figure = f", downtime {downtime:.0f} ms" if downtime is not None else ""
    text = {
        CaseState.PASSED: "[green]passed[/]",
        CaseState.FAILED: f"[bold red]failed[/] ({outcome.verdict})",
        CaseState.ERROR: f"[bold red]error[/]: {escape(outcome.error or '')}",
    }[outcome.state]
    return f"{escape(outcome.case_name)}: {text} in {outcome.duration_s:.1f} s{figure}"
