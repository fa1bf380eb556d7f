"""Turn SIGTERM and SIGHUP into an exception, so `finally` blocks heal and tear down.

Ctrl-C already raises KeyboardInterrupt; a nightly job is more often stopped with SIGTERM,
which by default kills Python without running any cleanup at all.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Interrupted(BaseException):
    """The harness was asked to stop (SIGTERM, SIGHUP or Ctrl-C)."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signal_number).name}")
        self.signal_number = signal_number


def _raise_interrupted(signal_number: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal_number)


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Interrupted` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        number: signal.signal(number, _raise_interrupted)
        for number in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
