"""Version-1 summaries (the hand-built dictionary of earlier harnesses, no schema_version) are
read into the current model with nothing they held lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.errors import SummaryError
from harness.store.summary import SUMMARY_FILE, Bound, RunStatus, load_summary
from harness.store.summary_v1 import bound_of
from harness.verdicts import Verdict
from tests.summaries import DATA

STAMP = "20261201T095032.690198Z"


def run_with(tmp_path: Path, fixture: str) -> Path:
    run_dir = tmp_path / "process-faults" / STAMP
    run_dir.mkdir(parents=True)
    shutil.copy(DATA / fixture, run_dir / SUMMARY_FILE)
    return run_dir


def old_document(fixture: str) -> dict[str, Any]:
    document = json.loads((DATA / fixture).read_text())
    assert isinstance(document, dict) and "schema_version" not in document
    return document


def held(old: Any, new: Any) -> bool:
    """Everything in `old` is in `new` with the same value; what `new` adds is empty (None, an
    empty list, or 0 for the warm-up's requests, which version 1 wrote only when there were
    some)."""
    if isinstance(old, dict) and isinstance(new, dict):
        added = set(new) - set(old)
        return all(k in new and held(v, new[k]) for k, v in old.items()) and all(
            new[k] is None or new[k] == 0 or new[k] == [] for k in added
        )
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(map(held, old, new))
    return bool(old == new)


@pytest.mark.parametrize("fixture", ["v1-process-faults.json", "v1-leader-kill.json"])
def test_nothing_a_version_1_summary_held_is_lost(tmp_path: Path, fixture: str) -> None:
    """Every field of the old file comes back with the same value, under the same name; the
    SLO's display text is kept as bound_text, next to the bound it now also carries."""
    old = old_document(fixture)
    summary = load_summary(run_with(tmp_path, fixture))
    assert summary.schema_version == 2
    upgraded = json.loads(summary.model_dump_json())
    old["slos"] = [
        {**{k: v for k, v in slo.items() if k != "limit"}, "bound_text": slo["limit"]}
        for slo in old["slos"]
    ]
    for slo in upgraded["slos"]:
        del slo["bound"]
    for key, value in old.items():
        assert held(value, upgraded[key]), key
    # What version 1 did not record is empty, not made up.
    assert summary.faults == [] and summary.recovery is None and summary.load is None
    assert all(failover.injected_ns is None for failover in summary.failovers)


def test_a_real_version_1_summary_reads_as_typed_fields(tmp_path: Path) -> None:
    """tests/data/summaries/v1-process-faults.json is the summary.json of an integration run
    of commit 7331893 (three process faults against the reference topology)."""
    summary = load_summary(run_with(tmp_path, "v1-process-faults.json"))
    assert (summary.scenario, summary.status, summary.verdict) == (
        "process-faults",
        RunStatus.FINISHED,
        Verdict.VALID,
    )
    assert summary.records.warmup_requests == 300
    assert [f.estimator for f in summary.failovers] == ["role_age", "role_age"]
    assert summary.metric("recovery_from_heal_ms") == 9.727073
    assert summary.latency_by_phase is not None and summary.latency_by_phase.during.count == 818
    assert [check.name for check in summary.checks][:2] == ["no_lost_acks", "no_double_fills"]
    assert summary.rig is not None and summary.rig.services_cpu_pct_mean["n3"] == 17.3
    assert summary.steady_state[0].rig is not None and not summary.steady_state[0].rig.saturated
    assert [step.action for step in summary.schedule] == ["apply", "heal", "apply", "heal", "apply"]


def test_version_1_bounds_become_numbers(tmp_path: Path) -> None:
    slos = load_summary(run_with(tmp_path, "v1-leader-kill.json")).slos
    bounds = {slo.metric: slo.bound for slo in slos}
    assert bounds["failover_ms"] == Bound(max=800.0)
    assert bounds["error_rate"] == Bound(min=0.0, max=0.01)
    assert [slo.verdict for slo in slos][:3] == [Verdict.INVALID, Verdict.VALID, Verdict.INVALID]


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        ("<= 800", Bound(max=800.0)),
        (">= 0.99", Bound(min=0.99)),
        (">= 0 and <= 5.5", Bound(min=0.0, max=5.5)),
        ("", Bound()),
        ("<= x", Bound()),
    ],
)
def test_bound_text_as_version_1_wrote_it(text: str, bound: Bound) -> None:
    assert bound_of(text) == bound


def test_an_aborted_version_1_run_has_no_judgement(tmp_path: Path) -> None:
    summary = load_summary(run_with(tmp_path, "v1-aborted.json"))
    assert (summary.status, summary.verdict) == (RunStatus.ABORTED, Verdict.UNKNOWN)
    assert summary.errors == ["BackendError: kafka did not start"]
    assert summary.metrics is None and summary.slos == [] and summary.latency_by_phase is None
    assert (summary.harness.commit, summary.harness.dirty) == (None, None)


def test_the_oldest_summaries_are_filled_in_from_the_run_directory(tmp_path: Path) -> None:
    """Early harnesses wrote fewer fields; the old readers fell back on the directory's names."""
    run_dir = tmp_path / "leader-kill" / "20261124T185624.336660Z"
    run_dir.mkdir(parents=True)
    (run_dir / SUMMARY_FILE).write_text(
        json.dumps({"verdict": "valid", "rig": {"samples": 3}, "metrics": {"gone_ms": 1.0}})
    )
    summary = load_summary(run_dir)
    assert (summary.scenario, summary.started_at) == ("leader-kill", "2026-11-24T18:56:24Z")
    assert summary.status is RunStatus.FINISHED and summary.verdict is Verdict.VALID
    assert summary.rig is None  # no host figure: nothing to say about the rig
    assert summary.metrics is not None and summary.metric("failover_ms") is None


def test_a_version_1_file_that_is_not_a_summary_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "leader-kill" / STAMP
    run_dir.mkdir(parents=True)
    (run_dir / SUMMARY_FILE).write_text(json.dumps({"slos": "none", "verdict": "valid"}))
    with pytest.raises(SummaryError, match="not a valid run summary: slos"):
        load_summary(run_dir)
