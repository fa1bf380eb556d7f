"""The worked examples run real third-party systems for minutes: `nox -s examples` runs them
(it sets HFTCHAOS_EXAMPLES=1); the CI `tests` session does not collect them."""

from __future__ import annotations

import os

import pytest

collect_ignore_glob = [] if os.environ.get("HFTCHAOS_EXAMPLES") == "1" else ["test_*.py"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/examples" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
