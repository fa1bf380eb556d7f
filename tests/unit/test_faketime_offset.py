"""The text the harness writes to libfaketime's timestamp file (harness/faults/clock.py)."""

from __future__ import annotations

import pytest

from harness.errors import BackendError
from harness.faults.clock import faketime_offset_text


@pytest.mark.parametrize(
    ("offset_ms", "text"),
    [
        (5000, "+5.000000\n"),
        (-750, "-0.750000\n"),
        (0, "+0.000000\n"),
        (-0.0, "+0.000000\n"),
        (0.0004, "+0.000000\n"),
        (3_600_000, "+3600.000000\n"),
        (-0.25, "-0.000250\n"),
    ],
)
def test_offset_text_is_signed_seconds_without_unit_letters(offset_ms: float, text: str) -> None:
    assert faketime_offset_text(offset_ms) == text


@pytest.mark.parametrize("offset_ms", [float("nan"), float("inf")])
def test_offset_must_be_finite(offset_ms: float) -> None:
    with pytest.raises(BackendError):
        faketime_offset_text(offset_ms)
