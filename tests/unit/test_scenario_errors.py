"""Malformed scenario files: `hftchaos validate` and `hftchaos run` name file:line and field,
say what would be valid, exit 2, and never print a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.scenario.schema import SCHEMA_FILE, scenario_schema

GOOD = """\
name: ok
load: {rate_per_s: 50, duration_s: 10}
faults:
  - type: kill
    at_s: 3
    target: {role: engine, select: leader}
    restart_after_s: 2
slo:
  failover_ms: {max: 800}
"""

CASES = {
    "unknown key": (
        GOOD.replace("    restart_after_s: 2\n", "    restart_after_s: 2\n    colour: red\n"),
        [":8: faults.0.colour: unknown key 'colour'; valid keys here:", "restart_after_s"],
    ),
    "wrong type": (
        GOOD.replace("rate_per_s: 50", "rate_per_s: fast"),
        [":2: load.rate_per_s: Input should be a valid number"],
    ),
    "negative duration": (
        GOOD.replace("restart_after_s: 2", "restart_after_s: -2"),
        [":7: faults.0.restart_after_s: Input should be greater than or equal to 0"],
    ),
    "unknown fault": (
        GOOD.replace("type: kill", "type: meteor"),
        [":4: faults.0: unknown type 'meteor'; valid: 'bandwidth', 'clock_skew', 'kill'"],
    ),
    "unknown service": (
        GOOD.replace("target: {role: engine, select: leader}", "target: n9"),
        [":6: faults.0.target: unknown service 'n9'; services:", "n1"],
    ),
    "unknown selector": (
        GOOD.replace("select: leader", "select: emperor"),
        [":6: faults.0.target", "'leader'", "'random-follower'"],
    ),
    "unknown role": (
        GOOD.replace("role: engine", "role: matcher"),
        [":6: faults.0.target: no service has role 'matcher'; roles:", "engine"],
    ),
    "unknown metric": (
        GOOD.replace("failover_ms:", "failover_time:"),
        [":9: slo.failover_time: unknown metric; valid: failover_ms"],
    ),
    "not yaml": ("name: [unclosed\n", [":2: not valid YAML"]),
    "abort limit out of range": (
        GOOD + "abort:\n  error_rate: {above: 2, for_s: 1}\n",
        [":11: abort.error_rate.above: Input should be less than 1"],
    ),
    "abort probe unknown": (
        GOOD + "abort:\n  probe_failing: {probe: nope, for_s: 1}\n",
        [":11: abort.probe_failing.probe: Input should be 'leader', 'http' or"],
    ),
    "abort key misspelt": (
        GOOD + "abort:\n  max_duraton_s: 3\n",
        [":11: abort.max_duraton_s: unknown key 'max_duraton_s'; valid keys here:"],
    ),
}


def hftchaos(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_scenario_is_reported_with_exit_code_2(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    file = tmp_path / "broken.yaml"
    file.write_text(text)
    for command in ("validate", "run"):
        result = hftchaos(command, str(file))
        output = result.stdout + result.stderr
        assert result.returncode == 2, output
        assert "Traceback" not in output
        for fragment in expected:
            assert fragment in " ".join(output.split()), f"{fragment!r} not in {output}"
        assert str(file) in " ".join(output.split())


def test_good_file_validates(tmp_path: Path) -> None:
    file = tmp_path / "ok.yaml"
    file.write_text(GOOD)
    assert hftchaos("validate", str(file)).returncode == 0


def test_every_library_scenario_validates() -> None:
    files = sorted(str(p) for p in (Path(__file__).parents[2] / "scenarios").glob("*.yaml"))
    assert len(files) >= 10
    result = hftchaos("validate", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_published_json_schema_is_current() -> None:
    import json

    assert json.loads(SCHEMA_FILE.read_text()) == json.loads(
        json.dumps(scenario_schema(), sort_keys=True)
    ), "scenarios/scenario.schema.json is stale: run `hftchaos schema`"
