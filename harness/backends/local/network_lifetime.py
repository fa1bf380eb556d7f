"""A run's namespace network from journal to removal: its names go into the run's journal
before anything is made, so `hftchaos heal` (or the next command) removes them after a
SIGKILLed harness; teardown removes them and journals that.

The journal is the run's own when the runner opened one in the run directory; otherwise
(`hftchaos up`, a test that drives a backend directly) the network opens, registers and
closes a journal of its own, so a crash is healed just the same.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.backends.local import namespaces, subnet_reservations
from harness.faults import netfilter
from harness.faults.journal import (
    JOURNAL_FILE,
    FaultJournal,
    RemoveNetwork,
    RunStarted,
    read_journal,
)
from harness.faults.owned import own
from harness.topology.network import NamespaceNetwork

FORWARD_KEY = "network"  # the key in the tag of the bridge's FORWARD rule


def remove_recorded(step: RemoveNetwork) -> list[str]:
    """Remove what a journal line names, as far as it still exists; returns the failures."""
    failures = []
    try:
        netfilter.remove_tag(step.run_id, step.key)
    except Exception as error:  # keep removing the rest, report after
        failures.append(f"the FORWARD rule of bridge {step.bridge}: {error}")
    return failures + namespaces.remove(step.bridge, step.namespaces, step.veths)


class NamespaceLifetime:
    def __init__(self, network: NamespaceNetwork, run_dir: Path) -> None:
        self.network = network
        self._run_dir = run_dir
        self._journal: FaultJournal | None = None
        self._own_journal = False
        self._step: RemoveNetwork | None = None

    def create(self) -> None:
        journal, run_id = self._open_journal()
        nodes = list(self.network.nodes.values())
        self._step = RemoveNetwork(
            run_id=run_id,
            key=FORWARD_KEY,
            bridge=self.network.bridge,
            namespaces=[node.namespace for node in nodes],
            veths=[node.host_veth for node in nodes],
        )
        journal.network(self._step)
        try:
            namespaces.create(self.network)
            netfilter.accept_forwarding(run_id, FORWARD_KEY, self.network.bridge)
        except BaseException:
            self.remove()
            raise

    def remove(self) -> list[str]:
        """Remove the network (a no-op the second time); returns what could not be removed."""
        if self._step is None or self._journal is None:
            return []
        step, self._step = self._step, None
        failures = remove_recorded(step)
        subnet_reservations.release(self.network.subnet)  # a bridge left over still shows
        if not failures:
            self._journal.network_removed(step.bridge)
        if self._own_journal:
            from harness.faults.stale import unregister_run

            self._journal.close("the harness", failures)
            if not failures:
                unregister_run(step.run_id)
        return failures

    def _open_journal(self) -> tuple[FaultJournal, str]:
        path = self._run_dir / JOURNAL_FILE
        if path.exists():
            state = read_journal(path)
            if state.run is not None and state.closed is None:
                self._journal = FaultJournal(path)
                return self._journal, state.run.run_id
        from harness.faults.stale import register_run

        run_id = f"net{self.network.token}"
        # In a folder of its own, but naming the run directory: a heal finds the services'
        # leftovers by the run marker of that directory.
        self._journal = FaultJournal(self._run_dir / "network" / JOURNAL_FILE)
        owner = own("(harness)", os.getpid())
        run_dir = str(self._run_dir.resolve())
        self._journal.write(RunStarted(run_id=run_id, run_dir=run_dir, owner=owner))
        self._own_journal = True
        register_run(run_id, self._journal.path)
        return self._journal, run_id
