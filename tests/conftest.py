from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from harness.toolchain import Toolchain

# The unit tests run on every core in CI (pytest-xdist); its workers get COLUMNS=80, which
# rich obeys, where the tests expect what a pipe gets from the harness: unwrapped lines.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.pop("COLUMNS", None)

# Property-based tests (tests/unit/test_hostile_fuzz.py). "ci", the default, is bounded and
# repeatable: 20 examples for each of its 10 properties, always the same ones, nothing saved.
# `nox -s fuzz` sets HFTCHAOS_HYPOTHESIS_PROFILE=fuzz: 100 times as many, new ones each time,
# failures kept in .hypothesis/ and replayed first on the next run. Each example is itself
# held to a time bound by the tests, so the deadline is only a backstop against a hang.
PROFILE_VARIABLE = "HFTCHAOS_HYPOTHESIS_PROFILE"
_SLOW_INPUT_IS_THE_POINT = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "ci",
    max_examples=20,
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=10),
    suppress_health_check=_SLOW_INPUT_IS_THE_POINT,
)
settings.register_profile(
    "fuzz",
    max_examples=2000,
    deadline=timedelta(seconds=10),
    suppress_health_check=_SLOW_INPUT_IS_THE_POINT,
    print_blob=True,
)
settings.load_profile(os.environ.get(PROFILE_VARIABLE, "ci"))


@pytest.fixture
def fake_toolchain(tmp_path: Path) -> Toolchain:
    """Paths only: for planning tests that never start anything."""
    return Toolchain(
        toxiproxy_server=tmp_path / "toxiproxy-server",
        kafka_libs=tmp_path / "kafka-libs",
        libfaketime=tmp_path / "libfaketime.so.1",
        java=tmp_path / "java",
    )


@pytest.fixture
def write_yaml(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "file.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
