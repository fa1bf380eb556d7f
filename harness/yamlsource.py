"""Load YAML while remembering where every value came from, so errors can name file:line.

Validation (pydantic) reports errors as a path of keys and indexes; `SourceMap.line_of`
turns such a path back into the line of the file it refers to. The file is read by
`harness.textfile` (bounded, UTF-8, printable) and composed by `harness.yamlcompose` (depth,
alias expansion, safe tags); here keys must be plain and unique, and no decoded string may
carry a control character (a NUL in an env value, an escape sequence in a name).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from harness.errors import DocumentError
from harness.excerpt import excerpt
from harness.textfile import read_text_file
from harness.yamlcompose import TAG_PREFIX, RefusedError, compose_bounded, shown_tag

PathKey = tuple[Any, ...]

# C0 controls except tab and line feed, DEL, and C1 controls: in a value they reach a
# command line, an environment or a terminal, never anything a person meant to write.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

_CONSTRUCTOR = SafeConstructor()
_SCALARS: dict[str, Callable[[yaml.ScalarNode], Any]] = {
    TAG_PREFIX + "null": _CONSTRUCTOR.construct_yaml_null,
    TAG_PREFIX + "bool": _CONSTRUCTOR.construct_yaml_bool,
    TAG_PREFIX + "int": _CONSTRUCTOR.construct_yaml_int,
    TAG_PREFIX + "float": _CONSTRUCTOR.construct_yaml_float,
    TAG_PREFIX + "str": _CONSTRUCTOR.construct_yaml_str,
    TAG_PREFIX + "timestamp": _CONSTRUCTOR.construct_yaml_timestamp,
    TAG_PREFIX + "value": _CONSTRUCTOR.construct_yaml_str,  # a lone '=' is just text
}


@dataclass
class SourceMap:
    """Where each key path of a loaded document starts in its file (1-based lines)."""

    file: Path
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[Any]) -> int:
        """The line of the deepest known prefix of `path` (a missing key points at its parent)."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def where(self, path: Sequence[Any]) -> str:
        return f"{self.file}:{self.line_of(path)}"


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise RefusedError(_line(node), "a key must be a plain value, not a list or a mapping")
    try:
        value = _SCALARS[node.tag](node)
    except (
        ValueError,
        OverflowError,
        KeyError,
        AttributeError,
        TypeError,
        yaml.YAMLError,
    ) as error:
        # int('9' * 5000) exceeds Python's digit limit, 2024-13-45 is no date, and an explicit
        # tag can be wrong for its value (`!!bool maybe`, `!!timestamp soon`).
        reason = f": {str(error).splitlines()[0][:80]}" if isinstance(error, ValueError) else ""
        raise RefusedError(
            _line(node), f"cannot read {excerpt(node.value)} as {shown_tag(node.tag)}{reason}"
        ) from None
    if isinstance(value, str):
        found = CONTROL.search(value)
        if found:
            raise RefusedError(
                _line(node),
                f"control character {found.group()!r} in {excerpt(value)}; "
                "only printable text is allowed in values",
            )
    return value


def _to_python(node: yaml.Node, path: PathKey, source: SourceMap) -> Any:
    source.lines[path] = _line(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if key in result:
                raise RefusedError(_line(key_node), f"duplicate key {excerpt(key)}")
            child_path = (*path, key)
            result[key] = _to_python(value_node, child_path, source)
            # Point a key's path at the key itself: that is where a person looks.
            source.lines[child_path] = _line(key_node)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, index), source) for index, item in enumerate(node.value)]
    return _scalar(node)


def load_yaml(file: Path) -> tuple[Any, SourceMap]:
    """Parse one YAML document; every refusal is a DocumentError naming file and line."""
    text = read_text_file(file)
    source = SourceMap(file=file)
    try:
        node = compose_bounded(text)
        if node is None:
            raise DocumentError(f"{file}:1: the file is empty")
        return _to_python(node, (), source), source
    except RefusedError as refused:
        raise DocumentError(f"{file}:{refused.line}: {refused.message}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        problem = (error.problem or error.context or "syntax error")[:120]
        raise DocumentError(f"{file}:{line}: not valid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise DocumentError(f"{file}:1: not valid YAML: {str(error)[:120]}") from None
