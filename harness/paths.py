"""Where things live: the reference topology, run output, the state of `hftchaos up`."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import targets.reference

REFERENCE_TOPOLOGY = Path(targets.reference.__file__).parent / "topology.yaml"


def results_root() -> Path:
    """Run output goes to $HFTCHAOS_RESULTS, or ./results of the current directory."""
    return Path(os.environ.get("HFTCHAOS_RESULTS") or "results").resolve()


def utc_stamp() -> str:
    # Microseconds keep two runs started in the same second apart.
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def new_run_dir(kind: str) -> Path:
    run_dir = results_root() / kind / utc_stamp()
    run_dir.mkdir(parents=True)
    return run_dir


def up_dir(topology_name: str) -> Path:
    """`hftchaos up` keeps one topology per name here, so `status` and `down` can find it."""
    from harness.toolchain import cache_home

    return cache_home() / "up" / topology_name
