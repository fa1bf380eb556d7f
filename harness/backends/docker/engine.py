"""The connection to the Docker engine, and the one line said when none answers."""

from __future__ import annotations

from typing import Any

from harness.errors import RuntimeEnvironmentError

HOW_TO_START = (
    "start one with `dockerd > /var/log/dockerd.log 2>&1 &` (no systemd here), or run "
    "`hftchaos setup --docker`, which installs docker.io when missing and starts it"
)


def engine_client() -> Any:
    """A Docker SDK client that has answered a ping; exit 3 with one line when none does."""
    import docker
    import docker.errors

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except docker.errors.DockerException as error:
        first = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise RuntimeEnvironmentError(
            f"no Docker engine answers ({first}): {HOW_TO_START}"
        ) from None
    return client


def engine_version(client: Any) -> str:
    version = client.version()
    return f"{version.get('Version', '?')} (API {version.get('ApiVersion', '?')})"
