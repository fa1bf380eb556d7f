"""Text templates of a declarative load profile: `{{ name }}` or `{{ name | filter | ... }}`.

Pure and small on purpose: a template is parsed once (when the scenario is loaded, so a
typo is a file:line error) into literal parts and placeholders, and rendered per request by
joining them. No expressions, no loops, no attribute access: a name is a field of the
request kind (sequence, random, choice) or one of the built-in names (`run`, `slot`,
`sender`, and `id` in a read-back). Values are text after rendering; filters make them fit
where they go (`base64` for etcd's JSON gateway, `json` for a quoted JSON string).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass

PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
BUILT_IN_NAMES = ("run", "slot", "sender")


def _prefix_end(text: str) -> str:
    """The first key after every key starting with `text` (etcd's `range_end` of a prefix):
    the last character moved one code point up."""
    if not text:
        return "\0"
    return text[:-1] + chr(ord(text[-1]) + 1)


FILTERS: dict[str, Callable[[str], str]] = {
    "base64": lambda text: base64.b64encode(text.encode()).decode(),
    "json": json.dumps,
    "url": lambda text: urllib.parse.quote(text, safe=""),
    "prefix_end": _prefix_end,
    "upper": str.upper,
    "lower": str.lower,
}


class TemplateError(ValueError):
    """The template text is malformed or names something unknown (the message says what)."""


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    filters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[str | Placeholder, ...]

    @property
    def names(self) -> set[str]:
        return {part.name for part in self.parts if isinstance(part, Placeholder)}

    def render(self, values: Mapping[str, str]) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            text = values[part.name]
            for name in part.filters:
                text = FILTERS[name](text)
            out.append(text)
        return "".join(out)


def parse_template(text: str, known: set[str] | None = None) -> Template:
    """`known`: the names the template may use (None: any). Raises TemplateError."""
    parts: list[str | Placeholder] = []
    position = 0
    for match in PLACEHOLDER.finditer(text):
        parts.append(text[position : match.start()])
        parts.append(_placeholder(match.group(1), known))
        position = match.end()
    rest = text[position:]
    if "{{" in rest or "}}" in rest:
        raise TemplateError("an unclosed '{{' or a stray '}}'")
    parts.append(rest)
    return Template(tuple(part for part in parts if part != ""))


def _placeholder(inside: str, known: set[str] | None) -> Placeholder:
    name, *filters = (piece.strip() for piece in inside.split("|"))
    if not NAME.match(name):
        raise TemplateError(f"'{{{{ {inside[:60]} }}}}': a placeholder is a name and filters")
    if known is not None and name not in known:
        raise TemplateError(
            f"unknown name {name!r} in '{{{{ {inside[:60]} }}}}'; "
            f"known: {', '.join(sorted(known)) or 'none'}"
        )
    for chosen in filters:
        if chosen not in FILTERS:
            raise TemplateError(
                f"unknown filter {chosen[:40]!r}; filters: {', '.join(sorted(FILTERS))}"
            )
    return Placeholder(name, tuple(filters))
