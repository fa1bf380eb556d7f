from __future__ import annotations

from pathlib import Path

import pytest

from harness.toolchain import Toolchain


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
