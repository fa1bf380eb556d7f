from __future__ import annotations

import pytest

from harness.backends.registry import BACKEND_VARIABLE, chosen_backend
from harness.errors import InputError


def test_the_flag_wins_then_the_environment_then_the_topology_then_local(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(BACKEND_VARIABLE, raising=False)
    assert chosen_backend(None) == "local"
    assert chosen_backend(None, "local") == "local"
    monkeypatch.setenv(BACKEND_VARIABLE, "nowhere")
    assert chosen_backend("local", "elsewhere") == "local"
    known = "known backends are docker, local"
    with pytest.raises(InputError, match=f"unknown backend 'nowhere': {known}"):
        chosen_backend(None, "local")


def test_an_unknown_backend_in_the_topology_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(BACKEND_VARIABLE, raising=False)
    with pytest.raises(InputError, match="'k8s'"):
        chosen_backend(None, "k8s")
