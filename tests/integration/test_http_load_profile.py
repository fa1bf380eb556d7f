"""A declarative HTTP load profile and the read-back check on a real server process (a small
key-value server, tests/integration/programs/kv_server.py), through the whole run pipeline:
every request is recorded with its intended, start and end instants and classified by the
profile's rules; the read-back finds every acknowledged write, and catches a server that
acknowledges writes it does not store, or stores one twice."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas
import pytest

from harness.records import Outcome
from harness.runner import run_scenario
from harness.store.summary import load_summary

pytestmark = pytest.mark.integration

PROGRAM = Path(__file__).parent / "programs" / "kv_server.py"

TOPOLOGY = f"""\
name: kvtest
services:
  kv:
    role: kv
    host: 127.0.0.1
    ports: [http]
    command: ["{sys.executable}", "{PROGRAM}", "${{self.host}}", "${{self.port.http}}" BUG]
    health: {{tcp: "${{self.address.http}}", timeout_s: 10}}
"""

SCENARIO = """\
name: kv-read-back
topology: topology.yaml
checks: []
settle_s: 0.5
steady_state: {window_s: 1}
load:
  rate_per_s: 100
  duration_s: 3
  warmup_s: 0.5
  target: {service: kv, port: http}
  http:
    requests:
      - name: put
        weight: 4
        path: /put
        id: "{{ run }}-{{ n }}"
        body: '{"key": {{ id | json }}, "value": "{{ value }}"}'
        fields: {n: {sequence: {start: 1}}, value: {random: {length: 6}}}
        outcome: {acked: {status: [200], json: {path: ok, equals: "true"}}}
        write: true
      - name: bad
        path: /nowhere
read_back:
"""
PER_WRITE = """\
  per_write:
    path: /get
    body: '{"key": {{ id | json }}}'
    count: {path: count}
"""
RANGE = """\
  range:
    path: /range
    body: '{"prefix": {{ run | json }}}'
    ids: {path: keys.*}
"""


def _run(tmp_path: Path, bug: str, read: str) -> tuple[Path, dict[str, object]]:
    (tmp_path / "topology.yaml").write_text(TOPOLOGY.replace(" BUG", bug))
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO + read)
    result = run_scenario(scenario, None, report=print)
    summary = load_summary(result.run_dir)
    [check] = [c for c in summary.checks if c.name == "read_back"]
    return result.run_dir, {"verdict": check.verdict.value, "counts": check.counts,
                            "explanation": check.explanation}  # fmt: skip


def test_profile_records_every_request_and_read_back_passes(tmp_path: Path) -> None:
    run_dir, check = _run(tmp_path, "", PER_WRITE)
    rows = pandas.read_parquet(run_dir / "requests.parquet").to_dict("records")
    kinds = {row["kind"] for row in rows}
    assert kinds == {"put", "bad"}, kinds
    assert 250 <= len(rows) <= 310  # 100/s for 3 s
    for row in rows:
        assert row["intended_ns"] <= row["start_ns"] <= row["end_ns"]
    outcomes = {(row["kind"], row["outcome"]) for row in rows}
    assert outcomes == {("put", Outcome.ACKED.value), ("bad", Outcome.REJECTED.value)}
    print(check)
    assert check["verdict"] == "valid", check
    assert json.loads((run_dir / "read_back.json").read_text())["counts"]


@pytest.mark.parametrize(
    ("bug", "read", "counted"),
    [
        (', "--lose-every", "7"', PER_WRITE, "missing"),
        (', "--lose-every", "7"', RANGE, "missing"),
        (', "--double-every", "9"', RANGE, "duplicated"),
        (', "--double-every", "9"', PER_WRITE, "duplicated"),
    ],
)
def test_read_back_catches_lost_and_doubled_writes(
    tmp_path: Path, bug: str, read: str, counted: str
) -> None:
    _, check = _run(tmp_path, bug, read)
    print(check)
    assert check["verdict"] == "invalid", check
    counts = check["counts"]
    assert isinstance(counts, dict) and counts[counted] > 0
