"""The run-state journal: what a run did to the machine and how to undo it, on disk before
it is done.

One JSON document per line in `<run dir>/journal.jsonl`, each line flushed and fsynced
before the action it describes: the run's owner (pid and start time), every process it
started, every fault (what it targets and the undo steps: rule tags, toxic and proxy names,
clock offset files, paused pids) *before* it is applied, the namespace network of a
`network: namespaces` topology before it is made, each heal, and finally who healed the run.
A journal whose last line is not `run_healed` and whose owner is gone belongs to a harness
that died mid-run: `harness/faults/journal_heal.py` undoes what it left.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from harness.faults.owned import OwnedProcess, alive, own

JOURNAL_FILE = "journal.jsonl"


class _Line(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- how to undo one fault, in terms that survive the harness -----------------------------


class RemoveRules(_Line):
    """Kernel rules carrying the tag `hftchaos:<run_id>:<key>` (the rule texts for the
    record: the kernel reads some specs back changed, so rules are found by tag)."""

    action: Literal["remove_rules"] = "remove_rules"
    run_id: str
    key: str
    rules: list[str]


class RemoveToxics(_Line):
    action: Literal["remove_toxics"] = "remove_toxics"
    api: str
    server: OwnedProcess | None  # the Toxiproxy process; its toxics die with it
    links: list[str]
    toxics: list[str]


class EnableProxies(_Line):
    action: Literal["enable_proxies"] = "enable_proxies"
    api: str
    server: OwnedProcess | None
    links: list[str]


class ResetClocks(_Line):
    action: Literal["reset_clocks"] = "reset_clocks"
    files: list[str]  # libfaketime offset files: "+0" is true time


class ContinueProcesses(_Line):
    action: Literal["continue_processes"] = "continue_processes"
    processes: list[OwnedProcess]


class NothingLeft(_Line):
    """A fault whose effect ends with the run's processes (kill, restart): after a crash
    they are ended with every other process of the run."""

    action: Literal["nothing_left"] = "nothing_left"
    why: str


Undo = Annotated[
    RemoveRules | RemoveToxics | EnableProxies | ResetClocks | ContinueProcesses | NothingLeft,
    Field(discriminator="action"),
]


class RemoveNetwork(_Line):
    """A run's namespace network (`network: namespaces`): its names, and the tag of the host
    rule that lets its bridge forward."""

    action: Literal["remove_network"] = "remove_network"
    run_id: str
    key: str
    bridge: str
    namespaces: list[str]
    veths: list[str]


# -- the lines ----------------------------------------------------------------------------


class RunStarted(_Line):
    entry: Literal["run"] = "run"
    run_id: str
    run_dir: str
    owner: OwnedProcess  # the harness process; the run is unfinished once it is gone


class ProcessStarted(_Line):
    entry: Literal["process"] = "process"
    process: OwnedProcess


class FaultIntended(_Line):
    entry: Literal["fault"] = "fault"
    key: int
    kind: str
    targets: list[str]
    undo: list[Undo]


class FaultHealed(_Line):
    entry: Literal["healed"] = "healed"
    key: int


class NetworkIntended(_Line):
    entry: Literal["network"] = "network"
    undo: RemoveNetwork


class NetworkRemoved(_Line):
    entry: Literal["network_removed"] = "network_removed"
    bridge: str


class RunHealed(_Line):
    entry: Literal["run_healed"] = "run_healed"
    by: str  # "the harness" at the end of its run, or "hftchaos heal (...)" after a crash
    errors: list[str]  # what could not be undone (empty: nothing was left behind)


JournalLine = Annotated[
    RunStarted
    | ProcessStarted
    | FaultIntended
    | FaultHealed
    | NetworkIntended
    | NetworkRemoved
    | RunHealed,
    Field(discriminator="entry"),
]
_LINE: TypeAdapter[JournalLine] = TypeAdapter(JournalLine)


class JournalState(BaseModel):
    """A journal read back: what is still to undo."""

    path: Path
    run: RunStarted | None = None
    processes: list[OwnedProcess] = Field(default_factory=list)
    faults: dict[int, FaultIntended] = Field(default_factory=dict)
    healed: set[int] = Field(default_factory=set)
    networks: dict[str, RemoveNetwork] = Field(default_factory=dict)  # by bridge, not removed
    closed: RunHealed | None = None

    @property
    def unhealed(self) -> list[FaultIntended]:
        """Faults journaled but not healed, newest first (the order to undo them in)."""
        return [self.faults[key] for key in sorted(set(self.faults) - self.healed, reverse=True)]

    @property
    def cleanly_healed(self) -> bool:
        return self.closed is not None and not self.closed.errors

    def add(self, line: JournalLine) -> None:
        if isinstance(line, RunStarted):
            self.run = line
        elif isinstance(line, ProcessStarted):
            self.processes.append(line.process)
        elif isinstance(line, FaultIntended):
            self.faults[line.key] = line
            self.healed.discard(line.key)
        elif isinstance(line, FaultHealed):
            self.healed.add(line.key)
        elif isinstance(line, NetworkIntended):
            self.networks[line.undo.bridge] = line.undo
        elif isinstance(line, NetworkRemoved):
            self.networks.pop(line.bridge, None)
        else:
            self.closed = line


def read_journal(path: Path) -> JournalState:
    """Every complete line of the journal; a line the harness was killed while writing (the
    last one, unterminated) is skipped, any other bad line is an error."""
    state = JournalState(path=path)
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            state.add(_LINE.validate_json(line))
        except ValidationError:
            if number == len(lines):
                break  # torn by the crash: the action it announced never began
            raise
    return state


class FaultJournal:
    """Appends lines to one run's journal, each on disk before the call returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        _sync_directory(path.parent)  # the file's name must survive a crash, too

    @classmethod
    def start(cls, run_dir: Path, run_id: str) -> FaultJournal:
        journal = cls(run_dir / JOURNAL_FILE)
        owner = own("(harness)", os.getpid())
        journal.write(RunStarted(run_id=run_id, run_dir=str(run_dir.resolve()), owner=owner))
        return journal

    def write(self, line: JournalLine) -> None:
        with self._lock:
            self._file.write(line.model_dump_json() + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())

    def process(self, owned: OwnedProcess) -> None:
        self.write(ProcessStarted(process=owned))

    def intend(self, key: int, kind: str, targets: list[str], undo: list[Undo]) -> None:
        self.write(FaultIntended(key=key, kind=kind, targets=targets, undo=undo))

    def network(self, undo: RemoveNetwork) -> None:
        self.write(NetworkIntended(undo=undo))

    def network_removed(self, bridge: str) -> None:
        self.write(NetworkRemoved(bridge=bridge))

    def healed(self, key: int) -> None:
        self.write(FaultHealed(key=key))

    def close(self, by: str, errors: list[str]) -> None:
        self.write(RunHealed(by=by, errors=errors))
        with self._lock, contextlib.suppress(OSError):
            self._file.close()

    def state(self) -> JournalState:
        return read_journal(self.path)


def owner_alive(run: RunStarted) -> bool:
    """Whether the harness that owns the run still runs (same pid, same start tick)."""
    return alive(run.owner)


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
