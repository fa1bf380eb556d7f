"""Where things live: the reference topology, run output, the state of `hftchaos up`."""

from __future__ import annotations

import datetime
import re
import shutil
from pathlib import Path

from harness import settings
from harness.errors import InputError

# harness/ and targets/ sit side by side, in the repository and when installed (pyproject's
# packages.find), so the reference topology is found by path: importing the system under
# test to find it would make the judge depend on the judged.
REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout (or install) holding harness/
REFERENCE_TOPOLOGY = REPO_ROOT / "targets" / "reference" / "topology.yaml"
# The main job's scenario (`hftchaos demo`): the library's leader kill, from the repository.
DEMO_SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "leader-kill.yaml"
# The reference system's checks, as its topology names them; a string, loaded like any
# target's (harness/checks/target.py). Runs recorded before summaries named their target were
# all judged by it.
REFERENCE_TARGET = "targets.reference.checks:TARGET"


def results_root() -> Path:
    """Run output goes to $HFTCHAOS_RESULTS, or ./results of the current directory."""
    return Path(settings.RESULTS.value()).resolve()


def utc_stamp() -> str:
    # Microseconds keep two runs started in the same second apart.
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def new_run_dir(kind: str) -> Path:
    run_dir = results_root() / kind / utc_stamp()
    run_dir.mkdir(parents=True)
    return run_dir


# A topology name becomes a folder name: an identifier, never a path (no '/', '..' or '').
TOPOLOGY_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


class UnsafePathError(InputError):
    """A path the harness was about to create or remove lies outside its own directories."""


def check_topology_name(name: str) -> str:
    if not TOPOLOGY_NAME_PATTERN.match(name):
        raise UnsafePathError(
            f"topology name {name[:80]!r} must start with a lowercase letter and use only "
            "a-z, 0-9 and '-' (at most 63 characters)"
        )
    return name


def up_root() -> Path:
    from harness.toolchain import cache_home

    return cache_home() / "up"


def up_dir(topology_name: str) -> Path:
    """`hftchaos up` keeps one topology per name here, so `status` and `down` can find it."""
    root = up_root()
    directory = root / check_topology_name(topology_name)
    ensure_inside(directory, root)
    return directory


def ensure_inside(path: Path, root: Path) -> Path:
    """`path`, resolved, if it lies strictly below `root` (resolved); otherwise refuse.

    Resolving first means neither '..' nor a symlink can carry the path out of the root.
    """
    return _strictly_below(path.resolve(), root, shown=path)


def _strictly_below(resolved: Path, root: Path, shown: Path) -> Path:
    resolved_root = root.resolve()
    if resolved == resolved_root or not resolved.is_relative_to(resolved_root):
        raise UnsafePathError(f"refusing to touch {shown}: it is not inside {root}")
    return resolved


def remove_tree(path: Path, root: Path) -> None:
    """Remove the directory `path`, which must lie strictly inside `root`; the only way the
    harness removes a tree, so a bad name can never delete anything outside its own folders."""
    if path.is_symlink():
        # The link is ours to remove; what it points at is not, so resolve only its folder.
        _strictly_below(path.parent.resolve() / path.name, root, shown=path)
        path.unlink()
        return
    shutil.rmtree(ensure_inside(path, root), ignore_errors=True)
