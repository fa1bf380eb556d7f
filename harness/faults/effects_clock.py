"""Effects of clock skew, from the process itself: libfaketime is mapped into it
(/proc/PID/maps), the offset file its own environment names holds the offset asked for, and,
where the service serves HTTP, the clock it shows (its `Date` header) is that far off. A Date
header has one-second resolution, so it is judged only for offsets of CLOCK_VISIBLE_MS or more.

A program libfaketime's preload cannot reach (a statically linked binary, or a Go binary, which
reads the clock through the vDSO itself) never maps the library: its skew is NOT_EFFECTIVE,
and `preload_bypassed` lets validation refuse it before the run.
"""

from __future__ import annotations

import email.utils
import http.client
import shutil
import time
from pathlib import Path

from harness.faults.effects import (
    Effect,
    EffectRequest,
    EffectStatus,
    EffectWatch,
    Observed,
    effective,
    not_effective,
    unverified,
)
from harness.faults.effects_elf import preload_bypassed
from harness.faults.effects_process import PROC

CLOCK_VISIBLE_MS = 2000.0
# The Date header truncates to whole seconds and the request takes time: 1.5 s either way.
DATE_TOLERANCE_MS = 1500.0
OFFSET_TOLERANCE_MS = 0.5  # the file has microsecond resolution
HTTP_TIMEOUT_S = 2.0

__all__ = ["preload_bypassed", "watch_clock_skew"]


def faketime_mapped(pid: int) -> bool:
    return "libfaketime" in (PROC / str(pid) / "maps").read_text()


def offset_file_ms(pid: int) -> float | None:
    """The offset in the FAKETIME_TIMESTAMP_FILE the process's own environment names, read
    through the process's root (so a container's file is found too)."""
    environ = (PROC / str(pid) / "environ").read_bytes().split(b"\0")
    for entry in environ:
        name, _, value = entry.partition(b"=")
        if name == b"FAKETIME_TIMESTAMP_FILE":
            path = PROC / str(pid) / "root" / Path(value.decode()).relative_to("/")
            return float(path.read_text().strip()) * 1000
    return None


def http_clock_offset_ms(address: str) -> float | None:
    """How far the Date header of `http://address/` is from this host's clock."""
    host, _, port = address.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=HTTP_TIMEOUT_S)
    try:
        sent = time.time()
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        arrived = time.time()
        date = response.getheader("Date")
    except OSError:
        return None
    finally:
        connection.close()
    if date is None:
        return None
    shown = email.utils.parsedate_to_datetime(date).timestamp()
    # The header is truncated to the second: its middle is half a second later.
    return (shown + 0.5 - (sent + arrived) / 2) * 1000


def judge_process_clock(pid: int, offset_ms: float, http_address: str | None) -> Effect:
    evidence: dict[str, object] = {"pid": pid, "offset_ms": offset_ms}
    bypassed = preload_bypassed(PROC / str(pid) / "exe")
    if bypassed is not None:
        return not_effective(f"{bypassed}: its clock did not move", **evidence)
    if not faketime_mapped(pid):
        return not_effective(
            f"libfaketime is not loaded in pid {pid} (a static or Go binary?): its clock did "
            "not move",
            **evidence,
        )
    evidence["libfaketime_loaded"] = True
    in_file = offset_file_ms(pid)
    evidence["offset_file_ms"] = in_file
    if in_file is None or abs(in_file - offset_ms) > OFFSET_TOLERANCE_MS:
        return not_effective(f"its offset file says {in_file} ms, not {offset_ms} ms", **evidence)
    if http_address is None or abs(offset_ms) < CLOCK_VISIBLE_MS:
        return effective("libfaketime loaded and its offset file holds the offset", **evidence)
    shown = http_clock_offset_ms(http_address)
    evidence["http_date_offset_ms"] = None if shown is None else round(shown)
    if shown is None:
        return effective("libfaketime loaded with the offset (no Date header to read)", **evidence)
    if abs(shown - offset_ms) > DATE_TOLERANCE_MS:
        return not_effective(
            f"its HTTP Date header is {shown:.0f} ms off, not {offset_ms}", **evidence
        )
    return effective(f"its HTTP Date header is {shown:.0f} ms off", **evidence)


def watch_clock_skew(request: EffectRequest) -> EffectWatch:
    def look() -> Effect:
        seen: dict[str, object] = {}
        for name in request.active.targets:
            facts = request.context.backend.facts(name)
            if facts.pid is None:
                return unverified(f"{name}: the backend gives no pid to look at")
            address = f"{facts.host}:{facts.ports['http']}" if "http" in facts.ports else None
            effect = judge_process_clock(facts.pid, float(request.fault.offset_ms), address)
            seen[name] = {"reason": effect.reason, **effect.evidence}
            if effect.status is not EffectStatus.EFFECTIVE:
                return type(effect)(effect.status, f"{name}: {effect.reason}", seen)
        return effective("every target's clock moved", **seen)

    return Observed(look)


def program_of(command: list[str], topology_dir: Path) -> Path | None:
    """The file a service's command runs, when it can be told before planning: a literal
    path (relative to the topology's folder), `${topology.dir}/...`, a third-party program
    the toolchain built (`${toolchain.home}/examples/...`: nats-server, etcd), or a name on
    PATH."""
    from harness.toolchain import cache_home

    program = command[0].replace("${topology.dir}", str(topology_dir))
    if program.startswith("${toolchain.home}/examples/"):
        program = program.replace("${toolchain.home}", str(cache_home()), 1)
    if "${" in program:
        return None  # another toolchain placeholder: the harness's own programs, preloadable
    if "/" not in program:
        found = shutil.which(program)
        return Path(found) if found else None
    path = Path(program)
    return path if path.is_absolute() else topology_dir / path


def clock_skew_refusals(
    faults: list[tuple[str, set[str]]], commands: dict[str, list[str]], topology_dir: Path
) -> list[tuple[str, str]]:
    """(fault's place, why) for each clock fault whose services libfaketime cannot reach.
    `faults` gives each clock fault's place in the scenario and the services it may hit."""
    refusals = []
    for where, services in faults:
        for name in sorted(services):
            program = program_of(commands[name], topology_dir) if name in commands else None
            why = preload_bypassed(program) if program is not None else None
            if why is not None:
                refusals.append(
                    (
                        where,
                        f"clock_skew on {name} would do nothing: {why}, and the harness "
                        "moves clocks with libfaketime's preload",
                    )
                )
    return refusals
