"""A user's own Locust `User` class as the load, on a real server process through the whole
run pipeline (real Locust master and workers): every task call is one record with its intended,
start and end instants, classified by the Locust request events it fired, and a read-back finds
every acknowledged write by the request id the task was given."""

from __future__ import annotations

from pathlib import Path

import pandas
import pytest

from harness.records import Outcome
from harness.runner import run_scenario
from harness.store.summary import load_summary
from tests.integration.test_http_load_profile import TOPOLOGY

pytestmark = pytest.mark.integration

PROGRAMS = Path(__file__).parent / "programs"

# The same small key-value server as the declarative profile's test.
SCENARIO = """\
name: kv-user-class
topology: topology.yaml
checks: []
settle_s: 0.5
steady_state: {window_s: 1}
load:
  rate_per_s: 100
  duration_s: 3
  warmup_s: 0
  target: {service: kv, port: http}
  user_class: {file: kv_user.py, name: KvUser}
read_back:
  kinds: [put]
  per_write:
    path: /get
    body: '{"key": {{ id | json }}}'
    count: {path: count}
"""


def _run(tmp_path: Path, bug: str) -> tuple[list[dict[str, object]], str]:
    (tmp_path / "topology.yaml").write_text(TOPOLOGY.replace(" BUG", bug))
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    # The user's file beside the scenario, named relative to it, as users keep theirs.
    (tmp_path / "kv_user.py").write_text((PROGRAMS / "kv_user.py").read_text())
    result = run_scenario(scenario, None, report=print)
    assert result.errors == [], result.errors
    rows = pandas.read_parquet(result.run_dir / "requests.parquet").to_dict("records")
    [check] = [c for c in load_summary(result.run_dir).checks if c.name == "read_back"]
    return rows, check.verdict.value


def test_a_users_locust_class_is_the_load_and_its_writes_read_back(tmp_path: Path) -> None:
    rows, verdict = _run(tmp_path, "")
    assert 250 <= len(rows) <= 310  # 100/s for 3 s, one record per task call
    for row in rows:
        assert row["intended_ns"] <= row["start_ns"] <= row["end_ns"]
    outcomes = {(row["kind"], row["outcome"]) for row in rows}
    assert outcomes == {("put", Outcome.ACKED.value), ("nowhere", Outcome.REJECTED.value)}
    puts = sum(row["kind"] == "put" for row in rows)
    assert 0.65 <= puts / len(rows) <= 0.95  # the class's own weights, 4:1
    assert verdict == "valid"


def test_the_read_back_of_a_users_writes_catches_a_lost_one(tmp_path: Path) -> None:
    _, verdict = _run(tmp_path, ', "--lose-every", "7"')
    assert verdict == "invalid"
