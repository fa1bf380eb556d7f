"""A container's output, appended to the service's log file in the run directory while it
runs, so the file holds the same as a local service's log (and survives the container)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any


class LogFollower:
    """Follows one start of a container: from `since` (a Unix time) until it stops."""

    def __init__(self, container: Any, log_file: Path, since: float) -> None:
        self._container = container
        self._log_file = log_file
        self._since = since
        self._thread = threading.Thread(
            target=self._follow, name=f"logs-{container.name}", daemon=True
        )

    def start(self) -> None:
        self._log_file.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def _follow(self) -> None:
        import docker.errors
        import requests.exceptions

        try:
            stream = self._container.logs(stream=True, follow=True, since=self._since)
            with self._log_file.open("ab") as log:
                for chunk in stream:
                    log.write(chunk)
                    log.flush()
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError):
            return  # the container is gone: what it wrote is in the file already

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
