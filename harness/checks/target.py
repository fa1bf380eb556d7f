"""The target seam: what the harness asks of the system under test in order to judge a run.

The harness measures failover, recovery, downtime and SLOs from its own recorded history; a
*safety check* needs to know the system (its records, its replicas, its log), so it belongs to
the system. A topology names the object that provides them by an object path:

    target: targets.reference.checks:TARGET     # package.module:NAME

`load_target` imports it when the topology is loaded, so a bad path is an input error with
the topology's file and line (never a traceback); a topology without `target:` gets `GENERIC`,
which provides no check, so every check a scenario lists is reported `not_applicable`.

Nothing under harness/ imports a target's modules by name (tests/unit/test_target_boundary.py):
the judge must not depend on the judged, and a user's own checks plug in exactly like the
reference system's. The contract for writing one is in targets/README.md ("Your own checks").
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from harness.checks.result import CheckResult
from harness.errors import TargetError
from harness.history import History

if TYPE_CHECKING:  # the plan imports the topology loader, which loads targets: no cycle
    from harness.backends.base import LogAccess
    from harness.topology.plan import Plan

FinalStateT = TypeVar("FinalStateT")

# A safety check: a pure function of the recorded history and the target's final state.
Check = Callable[[History, FinalStateT], CheckResult]

GENERIC_PATH = "harness.checks.target:GENERIC"
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_MEMBERS = ("name", "checks", "collect", "save_final_state", "load_final_state")


@runtime_checkable
class Target(Protocol[FinalStateT]):
    """A system under test, as its safety checks see it. `FinalStateT` is whatever the
    target collects after a run (the harness only hands it back to the target's checks)."""

    @property
    def name(self) -> str:
        """Shown in messages: `target reference has no check named ...`."""
        ...

    @property
    def checks(self) -> Mapping[str, Check[FinalStateT]]:
        """Every check this target provides, by the name a scenario lists."""
        ...

    def collect(self, plan: Plan, logs: LogAccess | None) -> FinalStateT:
        """The final state, read after every fault is healed while the system still runs:
        over the network from the plan's addresses, and services' logs and files through
        `logs` (the backend's ability; None where the backend has none), never from local
        paths, so one collector serves every backend. Raising makes this target's checks
        unknown, with the error as the reason."""
        ...

    def save_final_state(self, run_dir: Path, final: FinalStateT) -> None:
        """Keep what `collect` found in the run directory, so the run can be judged again."""
        ...

    def load_final_state(self, run_dir: Path) -> FinalStateT:
        """What `save_final_state` kept; raises OSError or ValueError if it cannot."""
        ...


# A table cell of a replay: text as is; True, False and None show as match, DIFFERS and "-".
ReplayCell = str | bool | None


@dataclass(frozen=True)
class ReplayReport:
    """What `hftchaos replay RUN_DIR` prints: one row per replayed part, and the outcome."""

    columns: tuple[str, ...]
    rows: list[tuple[ReplayCell, ...]]
    notes: list[str] = field(default_factory=list)  # one line each, e.g. why a row is "-"
    matched: bool = False  # everything replayed reproduced what the run recorded


@runtime_checkable
class Replayable(Protocol):
    """An optional ability: rebuild a finished run's state from what it left on disk and
    compare it with what the run recorded. A target without it says so when asked."""

    def replay(self, run_dir: Path) -> ReplayReport: ...


@dataclass(frozen=True)
class GenericTarget:
    """For a topology that names no target: the harness's own judging (failover, recovery,
    downtime, SLOs, steady state) applies to any system; no safety check does."""

    name: str = "generic"
    checks: Mapping[str, Check[None]] = field(default_factory=lambda: MappingProxyType({}))

    def collect(self, plan: Plan, logs: LogAccess | None) -> None:
        del plan  # there is nothing a generic target knows how to read

    def save_final_state(self, run_dir: Path, final: None) -> None:
        del run_dir, final

    def load_final_state(self, run_dir: Path) -> None:
        del run_dir


GENERIC = GenericTarget()


def load_target(path: str | None, folder: Path | None = None) -> Target[Any]:
    """The target an object path names (`package.module:NAME`), or GENERIC for None.

    The module is imported from Python's path; if it is not there, from `folder` (the
    topology file's folder), so a user's checks may sit next to their topology.
    """
    if path is None:
        return GENERIC
    module_name, colon, attribute = path.partition(":")
    if not colon or not _DOTTED.match(module_name) or not _DOTTED.match(attribute):
        raise TargetError(
            f"{path!r} is not an object path; write package.module:NAME, "
            "e.g. targets.reference.checks:TARGET"
        )
    found: object = _import(module_name, folder)
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise TargetError(f"module {module_name} has no {attribute!r}")
        found = getattr(found, part)
    missing = [member for member in _MEMBERS if not hasattr(found, member)]
    if missing or not isinstance(found, Target):
        raise TargetError(
            f"{path} is not a target: this {type(found).__name__} has no "
            f"{', '.join(missing)} (see targets/README.md, 'Your own checks')"
        )
    _check_checks(path, found.checks)
    return found


def _import(module_name: str, folder: Path | None) -> ModuleType:
    try:
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            # Only when the named module itself is missing (not something it imports), and
            # only then, is the topology's folder added: it must not shadow anything else.
            top = module_name.split(".")[0]
            where = str(folder.resolve()) if folder is not None else None
            if where is None or error.name != top or where in sys.path:
                raise
            sys.path.append(where)
            return importlib.import_module(module_name)
    except Exception as error:  # the user's module: any failure is theirs to read, briefly
        raise TargetError(f"cannot import {module_name}: {type(error).__name__}: {error}") from None


def _check_checks(path: str, checks: object) -> None:
    if not isinstance(checks, Mapping):
        raise TargetError(f"{path}.checks is a {type(checks).__name__}, not a mapping")
    for name, check in checks.items():
        if not isinstance(name, str) or not callable(check):
            raise TargetError(
                f"{path}.checks[{name!r}] must map a check's name to a function "
                "(history, final state) -> CheckResult"
            )
