"""Writing a run to disk: results/<scenario>/<UTC stamp>/ with the scenario as run, the raw
history as Parquet and the services' logs; summary.json is harness/store/summary.py's.

A run directory without summary.json is not a finished run: the summary is written last and
atomically, and `latest` links move only after it exists.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.clock_anchor import ClockAnchor
from harness.history import History
from harness.records import Outcome, RequestRecord
from harness.request_log import as_log
from harness.store.atomic import point_link, write_atomically, write_text_atomically
from harness.store.request_parquet import write_requests
from harness.store.summary import GitFacts, HostFacts

if TYPE_CHECKING:
    import pyarrow as pa

REPOSITORY = Path(__file__).resolve().parents[1]


def _record_columns(records: list[Any]) -> dict[str, list[Any]]:
    """Records as one list per field: a dict per record would cost ~1 KB each (a 10-minute
    run has ~170,000 probe samples)."""
    if not records:
        return {}
    columns: dict[str, list[Any]] = {}
    for name in (f.name for f in dataclasses.fields(records[0])):
        columns[name] = [_stored(getattr(record, name)) for record in records]
    return columns


def _stored(value: Any) -> Any:
    if isinstance(value, Outcome):
        return value.value
    if isinstance(value, dict | tuple | list):
        return json.dumps(value, default=str)
    return value


# Columns that hold instants on the run's monotonic clock: each gets a UTC twin.
INSTANT_COLUMNS = ("intended_ns", "start_ns", "end_ns", "arrival_ns", "sent_ns", "at_ns")


def write_history(
    run_dir: Path,
    history: History,
    warmup_requests: Sequence[RequestRecord] | None = None,
    anchor: ClockAnchor | None = None,
) -> dict[str, int]:
    """One Parquet file per kind of record (the warm-up's requests in their own file);
    returns the row counts. With an anchor, every instant column `X_ns` has a twin
    `X_utc_ns` (nanoseconds since the epoch, UTC) next to it."""
    counts = {}
    shift = anchor.utc_ns - anchor.monotonic_ns if anchor is not None else None
    logs = [("requests", as_log(history.requests))]
    if warmup_requests:
        logs.append(("warmup_requests", as_log(warmup_requests)))
    for name, log in logs:
        write_atomically(
            run_dir / f"{name}.parquet", partial(write_requests, log=log, utc_shift_ns=shift)
        )
        counts[name] = len(log)
    kinds: list[tuple[str, list[Any]]] = [
        ("probes", history.probes),
        ("faults", history.faults),
        ("phases", history.phases),
        ("metrics", history.metrics),
    ]
    for name, records in kinds:
        table = _records_table(list(records), shift)
        write_atomically(run_dir / f"{name}.parquet", partial(_write_table, table))
        counts[name] = table.num_rows
    return counts


def _records_table(records: list[Any], utc_shift_ns: int | None) -> pa.Table:
    """Records as an Arrow table made from one list per field, not through pandas: a long
    run's probe samples (~170,000) cost ~125 MB in flight as a DataFrame, ~15 MB this way."""
    # Imported here, when a run has records to write: a command refusing a bad file at once
    # (`run`, `suite`) does not pay for it.
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = {name: pa.array(values) for name, values in _record_columns(records).items()}
    if utc_shift_ns is not None:
        for name in INSTANT_COLUMNS:
            if name in columns:  # nulls stay null: sent_ns is missing on some probe samples
                twin = pc.add(columns[name].cast(pa.int64()), utc_shift_ns)
                columns[name.removesuffix("_ns") + "_utc_ns"] = twin
    return pa.table(columns)


def _write_table(table: pa.Table, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path)


def write_scenario(run_dir: Path, source_file: Path, resolved: dict[str, Any]) -> None:
    write_text_atomically(run_dir / "scenario.source.yaml", source_file.read_text())
    write_text_atomically(run_dir / "scenario.yaml", yaml.safe_dump(resolved, sort_keys=False))


def point_latest(results_root: Path, run_dir: Path) -> None:
    """`results/latest` and `results/<scenario>/latest` -> this run (relative links)."""
    for link in (results_root / "latest", run_dir.parent / "latest"):
        point_link(link, run_dir)


def git_facts(directory: Path = REPOSITORY) -> GitFacts:
    def git(*arguments: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", "-C", str(directory), *arguments],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitFacts(commit=commit, dirty=bool(status) if status is not None else None)


def host_facts() -> HostFacts:
    return HostFacts(
        hostname=platform.node(),
        platform=platform.platform(),
        python=sys.version.split()[0],
        cpus=os.cpu_count(),
    )
