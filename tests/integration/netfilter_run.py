"""A run id for tests that add real iptables rules, registered and swept like a harness's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.faults import netfilter, stale
from harness.faults.journal import FaultJournal


@contextmanager
def netfilter_run(directory: Path, run: str) -> Iterator[str]:
    """Registered as a live run with a journal, like a harness's: a run elsewhere on the
    machine heals the rules of runs it does not know to be alive (seen: a concurrent run swept
    a test's). Swept on the way out, whatever happened, and checked gone."""
    netfilter.require_netfilter()
    stale.register_run(run, FaultJournal.start(directory, run).path)
    try:
        yield run
    finally:
        stale.unregister_run(run)
        netfilter.sweep(run)
        assert netfilter.list_rules(run) == []
