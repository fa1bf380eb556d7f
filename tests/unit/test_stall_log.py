"""The engine's tick-stall log (targets/reference/stall_log.py)."""

from __future__ import annotations

import time

import pytest

from targets.reference import stall_log


def test_no_watch_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(stall_log.ENVIRONMENT_VARIABLE, raising=False)
    assert stall_log.tick_watch("engine n1") is None


def test_only_a_gap_over_the_threshold_is_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(stall_log.ENVIRONMENT_VARIABLE, "30")
    tick = stall_log.tick_watch("engine n1")
    assert tick is not None
    tick()  # the first tick has no gap before it
    tick()
    assert capsys.readouterr().err == ""
    time.sleep(0.05)
    tick()
    line = capsys.readouterr().err
    assert line.startswith("STALL engine n1 tick_gap_ms=")
    assert float(line.split("tick_gap_ms=")[1].split()[0]) >= 30
