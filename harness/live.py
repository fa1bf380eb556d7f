"""The live console view of a run: one more listener on the event stream."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from harness.history import Record
from harness.records import FaultEvent, Outcome, PhaseMark, RequestBatch, RequestRecord

NS = 1_000_000_000
_AVAILABLE_VALUES = frozenset((Outcome.ACKED.value, Outcome.REJECTED.value))


class LiveView:
    def __init__(self, console: Console, title: str, leader: Callable[[], str | None]) -> None:
        self._console = console
        self._title = title
        self._leader = leader
        self._lock = threading.Lock()
        self._started_ns = time.monotonic_ns()
        self._phase = "starting"
        self._outcomes: collections.Counter[str] = collections.Counter()
        self._recent: collections.deque[tuple[int, bool, float]] = collections.deque()
        self._active: dict[tuple[int, int], str] = {}
        self._fault_log: collections.deque[str] = collections.deque(maxlen=6)
        self._live: Live | None = None

    def listen(self, record: Record) -> None:
        with self._lock:
            match record:
                case RequestBatch():
                    for row in record.rows:  # fields as RequestRecord's, outcome as its value
                        self._outcomes[row[5]] += 1
                        ok = row[5] in _AVAILABLE_VALUES
                        self._recent.append((row[4], ok, (row[4] - row[2]) / 1e6))
                case RequestRecord():
                    self._outcomes[record.outcome.value] += 1
                    latency_ms = record.latency_ns / 1e6
                    ok = record.outcome is Outcome.ACKED or record.outcome is Outcome.REJECTED
                    self._recent.append((record.end_ns, ok, latency_ms))
                case PhaseMark():
                    if record.name == "load":
                        self._started_ns = record.at_ns  # offsets match the scenario's at_s
                    self._phase = record.name
                    self._print_when_not_live(f"phase {record.name}")
                case FaultEvent():
                    self._on_fault(record)
                    self._print_when_not_live(self._fault_log[-1])

    def _on_fault(self, event: FaultEvent) -> None:
        key = (event.fault_index, event.repeat)
        elapsed = (event.at_ns - self._started_ns) / NS
        targets = ",".join(event.targets) or "-"
        if event.phase == "applied":
            self._active[key] = f"{event.fault_type} on {targets}"
        else:
            self._active.pop(key, None)
        self._fault_log.append(f"at {elapsed:6.2f}s {event.phase:8} {event.fault_type} {targets}")

    def _print_when_not_live(self, line: str) -> None:
        """Without a terminal (CI logs) there is no live panel: print the milestones."""
        if self._live is None:
            elapsed = (time.monotonic_ns() - self._started_ns) / NS
            self._console.print(f"[dim]{elapsed:7.2f}s[/] {escape(line)}", highlight=False)

    def render(self) -> RenderableType:
        now = time.monotonic_ns()
        with self._lock:
            while self._recent and self._recent[0][0] < now - NS:
                self._recent.popleft()
            last_second = list(self._recent)
            outcomes = dict(self._outcomes)
            active = list(self._active.values())
            log = list(self._fault_log)
            phase = self._phase
        ok_latencies = sorted(latency for _, ok, latency in last_second if ok)
        p99 = ok_latencies[int(len(ok_latencies) * 0.99)] if ok_latencies else 0.0
        table = Table.grid(padding=(0, 2))
        table.add_row("phase", Text(phase, style="bold"))
        table.add_row("elapsed", f"{(now - self._started_ns) / NS:.1f} s")
        table.add_row("leader", Text(self._leader() or "none", style="bold green"))
        table.add_row("last second", f"{len(last_second)} answers, p99 {p99:.1f} ms")
        table.add_row("totals", " ".join(f"{k}={v}" for k, v in sorted(outcomes.items())) or "-")
        table.add_row("active faults", Text(", ".join(active) or "none", style="red"))
        parts: list[RenderableType] = [Text(self._title, style="bold"), table]
        parts.extend(Text(line, style="dim") for line in log)
        return Group(*parts)

    def __enter__(self) -> LiveView:
        if self._console.is_terminal:
            self._live = Live(
                get_renderable=self.render,
                console=self._console,
                refresh_per_second=4,
                transient=True,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
