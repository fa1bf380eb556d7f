from __future__ import annotations

import io

import pytest

from harness.consoles import UNWRAPPED_WIDTH, make_console


def test_outside_a_terminal_lines_are_not_wrapped_at_80_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr("sys.stdout", io.StringIO())  # not a terminal, as in a CI log
    console = make_console()
    assert console.width == UNWRAPPED_WIDTH
    path = "results/leader-kill/20261201T104414.576087Z/" + "x" * 90
    with console.capture() as captured:
        console.print(f"verdict: valid  results: {path}")
    assert captured.get().count("\n") == 1


def test_columns_still_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert make_console().width == 120
