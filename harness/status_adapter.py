"""Read a Raft member's own status answer, whatever its shape, into role, term and leader.

Pure: bytes in, a `MemberAnswer` out. The topology's `raft:` block (`RaftStatus`) says where
each value sits: paths into a JSON document, or sample selectors into Prometheus text, and
value maps such as `true -> leader`. Leaders given as the system's own member ids are turned
into service names by `MemberIds`, from ids declared in the topology or learned from the
members' answers. targets/README.md ("Status") documents the format.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from harness.topology.model import RaftStatus, StatusField

ROLES = frozenset({"leader", "follower", "candidate"})
UNKNOWN_ROLE = "unknown"
_ROLE_OF = {role: role for role in ROLES}
# name{label="value",...}: the labels a sample must carry (it may carry more).
SELECTOR = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?$")
LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)(?:\s+\S+)?$")


# Where a path leads in one answer (None: nowhere).
ValueAt = Callable[[str], object]
# A Prometheus gauge without a value map: 1 says leader, 0 follower.
GAUGE_ROLES = {"1": "leader", "0": "follower"}


class StatusShapeError(ValueError):
    """A path or selector in the topology that cannot be read (a typo, caught at load)."""


@dataclass(frozen=True)
class MemberAnswer:
    """What one member said about itself. `leader_ref` is the leader as the system names it
    (a service name or a member id); None when the answer names no leader."""

    role: str
    term: int | None = None
    leader_ref: str | None = None
    own_id: str | None = None
    commit_index: int | None = None
    last_applied: int | None = None
    role_age_ms: float | None = None


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: tuple[tuple[str, str], ...]


def parse_selector(text: str) -> Selector:
    match = SELECTOR.match(text.strip())
    if match is None:
        raise StatusShapeError(f'{text!r} is not a metric selector such as name{{label="v"}}')
    labels: list[tuple[str, str]] = []
    rest = match.group(2) or ""
    while rest.strip():
        label = LABEL.match(rest)
        if label is None:
            raise StatusShapeError(f'{text!r}: labels must read name="value", comma-separated')
        labels.append((label.group(1), _unescape(label.group(2))))
        rest = rest[label.end() :]
    return Selector(match.group(1), tuple(labels))


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def check_shape(status: RaftStatus) -> None:
    """Raise StatusShapeError for a selector that could never match (format prometheus)."""
    if status.format != "prometheus":
        return
    for status_field in _fields(status):
        parse_selector(status_field.path)


def _fields(status: RaftStatus) -> Iterable[StatusField]:
    return [f for f in (status.role, status.term, status.leader, status.id) if f is not None]


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of a Prometheus text exposition: (name, labels, value). Comments and
    lines that are not samples are skipped: a status reader must not fail on one odd line."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(
            (label.group(1), _unescape(label.group(2)))
            for label in LABEL.finditer((match.group(2) or "{}")[1:-1])
        )
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        samples.append((match.group(1), labels, value))
    return samples


def _json_value(document: object, path: str) -> object:
    value = document
    for key in path.split("."):
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def _metric_value(samples: list[tuple[str, dict[str, str], float]], path: str) -> object:
    selector = parse_selector(path)
    for name, labels, value in samples:
        if name == selector.metric and all(labels.get(k) == v for k, v in selector.labels):
            return value
    return None


def as_text(value: object) -> str | None:
    """A raw status value as the text a value map is keyed by: `true`, `3`, `LEADER`."""
    if value is None or isinstance(value, Mapping | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _mapped(status_field: StatusField | None, raw: object) -> str | None:
    text = as_text(raw) if status_field is not None else None
    if text is None or status_field is None:
        return None
    return status_field.map.get(text, text)


def _integer(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


def _role(text: str | None) -> str:
    # The one string of each role, not the answer's copy: a long run keeps ~170,000 samples.
    return _ROLE_OF.get((text or "").strip().lower(), UNKNOWN_ROLE)


def read_answer(status: RaftStatus, body: bytes) -> MemberAnswer | None:
    """The member's answer, or None when the body is not a document of the declared format."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if status.format == "prometheus":
        samples = parse_prometheus(text)
        if not samples:
            return None
        return _answer(status, lambda path: _metric_value(samples, path), {})
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, Mapping):
        return None
    return _answer(status, lambda path: _json_value(document, path), document)


def _answer(status: RaftStatus, value_at: ValueAt, extras: Mapping[str, object]) -> MemberAnswer:
    def read(status_field: StatusField | None) -> str | None:
        return _mapped(status_field, value_at(status_field.path)) if status_field else None

    leader = read(status.leader)
    role = read(status.role)
    if status.format == "prometheus" and not status.role.map:
        role = GAUGE_ROLES.get(role or "", role)
    own_id = read(status.id) or None
    if _role(role) == UNKNOWN_ROLE and own_id and leader:
        # No role in the answer (etcd's status): a member that names itself leads.
        role = "leader" if leader == own_id else "follower"
    return MemberAnswer(
        role=_role(role),
        term=_integer(read(status.term)),
        leader_ref=leader or None,
        own_id=own_id,
        # The reference engine's extras, read only where the answer has them.
        commit_index=_integer(as_text(extras.get("commit_index"))),
        last_applied=_integer(as_text(extras.get("last_applied"))),
        role_age_ms=_age(extras.get("role_age_ms")),
    )


def _age(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value) if math.isfinite(value) else None


class MemberIds:
    """The member ids of one cluster's services: declared in the topology (`member_id`), or
    learned from what each member says its own id is. Shared by the members' poll threads."""

    def __init__(self, services: Iterable[str], declared: Mapping[str, str]) -> None:
        self._services = frozenset(services)
        self._by_id = {member_id: name for name, member_id in declared.items()}
        self._lock = threading.Lock()

    def learn(self, service: str, own_id: str | None) -> None:
        if own_id is None:
            return
        with self._lock:
            self._by_id.setdefault(own_id, service)

    def service_of(self, leader_ref: str | None) -> str | None:
        """The service a leader reference names; None when no member is known by it."""
        if leader_ref is None:
            return None
        if leader_ref in self._services:
            return leader_ref
        with self._lock:
            return self._by_id.get(leader_ref)
