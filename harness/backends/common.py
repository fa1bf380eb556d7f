"""What the local and Docker backends share beyond the start-order rules (`bringup.py`):
the context-manager shape, the health wait with its deadline, and the LogAccess ability
over the run directory (a container's output is collected there, its directory mounted)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

from harness.backends.files import inside
from harness.backends.health import check_health
from harness.backends.port_holders import port_holders
from harness.errors import BackendError, HealthTimeoutError
from harness.topology.plan import Plan, PlannedHealth


def log_tail(log_file: Path, lines: int = 15) -> str:
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class BackendCommon:
    plan: Plan

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.teardown()

    def teardown(self) -> None:
        raise NotImplementedError

    def start(self, name: str) -> None:
        raise NotImplementedError

    def stop(self, name: str) -> None:
        raise NotImplementedError

    def wait_healthy(self, name: str, timeout_s: float | None = None) -> None:
        raise NotImplementedError

    def restart(self, name: str) -> None:
        """Stop, start again and wait healthy: the same on every backend."""
        self.stop(name)
        self.start(name)
        self.wait_healthy(name)

    def _make_run_directories(self) -> None:
        for directory in ("logs", "services"):
            (self.plan.run_dir / directory).mkdir(parents=True, exist_ok=True)

    def read_log(self, name: str) -> str:
        return self.plan.services[name].log_file.read_text(errors="replace")

    def read_file(self, name: str, relative: str) -> bytes:
        return inside(self.plan.services[name].directory, relative).read_bytes()

    def _require_clock_control(self, name: str) -> None:
        if not self.plan.services[name].clock_control:
            raise BackendError(
                f"{name} was not started with clock_control: true, so its clock cannot move"
            )

    def _wait_until_healthy(
        self,
        name: str,
        timeout_s: float | None,
        gone: Callable[[], str | None],
        healthy: Callable[[PlannedHealth], bool] = check_health,
    ) -> None:
        """Poll `healthy` until it holds, `gone()` says why the service ended, or the
        deadline passes; both failures carry the last lines of the service's log."""
        service = self.plan.services[name]
        if service.health is None:
            return
        limit = timeout_s or service.health.timeout_s
        deadline = time.monotonic() + limit
        while True:
            ended = gone()
            if ended is not None:
                holders = port_holders(service.host, service.ports.values())
                held = f"; its ports are held by: {', '.join(holders)}" if holders else ""
                raise BackendError(
                    f"{name} {ended} before it became healthy{held}; last lines of "
                    f"{service.log_file}:\n{self._last_lines(name)}"
                )
            if healthy(service.health):
                return
            if time.monotonic() > deadline:
                raise HealthTimeoutError(
                    f"{name} not healthy after {limit:.0f}s; last lines of "
                    f"{service.log_file}:\n{self._last_lines(name)}"
                )
            time.sleep(service.health.interval_s)

    def _job_timed_out(self, name: str) -> BackendError:
        """The error for a job still running at its deadline (the caller has ended it)."""
        timeout_s = self.plan.services[name].job_timeout_s
        return BackendError(f"job {name} did not finish within {timeout_s:.0f}s")

    def _check_job_exit(self, name: str, code: int) -> None:
        if code != 0:
            raise BackendError(
                f"job {name} failed with exit code {code}; last lines of "
                f"{self.plan.services[name].log_file}:\n{self._last_lines(name)}"
            )

    def _last_lines(self, name: str) -> str:
        return log_tail(self.plan.services[name].log_file)
