"""Member templates: a cluster written once. Pure, on the topology's raw data before it is
validated, so every error still points at the template's lines.

    services:
      nats:
        members: 3                 # becomes nats-1, nats-2, nats-3
        host: "127.0.0.${member.index+40}"
        command: [..., --server_name, "${member.name}"]

In a template, `${member.index}` is 1..N, `${member.index+K}` / `${member.index-K}` that plus or
minus K, `${member.name}` the member's service name and `${member.count}` N. Every member is a
copy of the template with those replaced; a `depends_on` that names the template means all of
its members.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.errors import TopologyError
from harness.excerpt import excerpt
from harness.yamlsource import SourceMap

MAX_MEMBERS = 64
MEMBER_PLACEHOLDER = re.compile(r"\$\{\s*member\.(index|name|count)\s*(?:([+-])\s*(\d{1,6}))?\s*\}")


def expand_members(data: Any, source: SourceMap) -> Any:
    """The document with every templated service replaced by its members (the source map
    learns their paths, pointing at the template's lines)."""
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        return data
    services: dict[str, Any] = data["services"]
    templates = {
        name: _count(name, spec, source)
        for name, spec in services.items()
        if isinstance(spec, dict) and "members" in spec
    }
    if not templates:
        return data
    expanded: dict[str, Any] = {}
    for name, spec in services.items():
        if name not in templates:
            expanded[name] = spec
            continue
        for index in range(1, templates[name] + 1):
            member = f"{name}-{index}"
            if member in services:
                raise TopologyError(
                    f"{source.where(('services', name))}: services.{name}: member {member!r} "
                    "is also a service of its own; rename one"
                )
            body = {k: v for k, v in spec.items() if k != "members"}
            expanded[member] = _substitute(body, index, member, templates[name])
            _alias(source, name, member)
    for spec in expanded.values():
        if isinstance(spec, dict) and isinstance(spec.get("depends_on"), list):
            spec["depends_on"] = _dependencies(spec["depends_on"], templates)
    return {**data, "services": expanded}


def _count(name: str, spec: Mapping[str, Any], source: SourceMap) -> int:
    count = spec["members"]
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_MEMBERS:
        raise TopologyError(
            f"{source.where(('services', name, 'members'))}: services.{name}.members: "
            f"{excerpt(str(count))} must be a whole number from 1 to {MAX_MEMBERS}"
        )
    return count


def _substitute(value: Any, index: int, name: str, count: int) -> Any:
    if isinstance(value, str):
        return MEMBER_PLACEHOLDER.sub(lambda m: _member_value(m, index, name, count), value)
    if isinstance(value, list):
        return [_substitute(item, index, name, count) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, index, name, count) for key, item in value.items()}
    return value


def _member_value(match: re.Match[str], index: int, name: str, count: int) -> str:
    what, sign, amount = match.groups()
    if what == "name":
        # ${member.name+1} means nothing: left as it is, for validate to refuse.
        return name if sign is None else match.group(0)
    base = index if what == "index" else count
    if sign is None:
        return str(base)
    return str(base + int(amount) if sign == "+" else base - int(amount))


def _alias(source: SourceMap, template: str, member: str) -> None:
    prefix = ("services", template)
    for path, line in list(source.lines.items()):
        if path[:2] == prefix:
            source.lines.setdefault(("services", member, *path[2:]), line)


def _dependencies(dependencies: list[Any], templates: Mapping[str, int]) -> list[Any]:
    result: list[Any] = []
    for dependency in dependencies:
        if isinstance(dependency, str) and dependency in templates:
            result.extend(f"{dependency}-{i}" for i in range(1, templates[dependency] + 1))
        else:
            result.append(dependency)
    return result
