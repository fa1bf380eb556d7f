"""Kernel rules outlive a harness that was SIGKILLed: nothing of it runs to remove them.

Each run registers its id with its pid; any later run (or `hftchaos sweep`) removes the rules
of runs whose harness is gone. Services and Toxiproxy need no such care: they die with the
harness (parent-death signal), and toxics and clock offsets die with them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import psutil

from harness import settings

REGISTRY = Path(settings.RUN_REGISTRY.value())


def register_run(run_id: str) -> Path:
    REGISTRY.mkdir(parents=True, exist_ok=True)
    entry = REGISTRY / run_id
    entry.write_text(f"{os.getpid()} {psutil.Process().create_time()}\n")
    return entry


def unregister_run(run_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (REGISTRY / run_id).unlink()


def _alive(entry: Path) -> bool:
    try:
        pid_text, started_text = entry.read_text().split()
        process = psutil.Process(int(pid_text))
        return abs(process.create_time() - float(started_text)) < 1.0
    except (OSError, ValueError, psutil.Error):
        return False


def sweep_dead_runs() -> list[str]:
    """Remove the kernel rules of every run whose harness process is gone; returns their ids."""
    from harness.faults.netfilter import list_rules, parse_tag, sweep

    entries = REGISTRY.glob("*") if REGISTRY.exists() else []
    live = {entry.name for entry in entries if _alive(entry)}
    dead_runs = set()
    for rule in list_rules():
        tag = parse_tag(rule.tag)
        if tag is not None and tag[0] not in live:
            dead_runs.add(tag[0])
    for run_id in sorted(dead_runs):
        sweep(run_id)
        unregister_run(run_id)
    return sorted(dead_runs)
