"""Load YAML while remembering where every value came from, so errors can name file:line.

Validation (pydantic) reports errors as a path of keys and indexes; `SourceMap.line_of`
turns such a path back into the line of the file it refers to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import InputError

PathKey = tuple[str | int, ...]


@dataclass
class SourceMap:
    """Where each key path of a loaded document starts in its file (1-based lines)."""

    file: Path
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: Sequence[str | int]) -> int:
        """The line of the deepest known prefix of `path` (a missing key points at its parent)."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)

    def where(self, path: Sequence[str | int]) -> str:
        return f"{self.file}:{self.line_of(path)}"


def _scalar(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _to_python(node: yaml.Node, path: PathKey, source: SourceMap) -> Any:
    source.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if key in result:
                raise InputError(
                    f"{source.file}:{key_node.start_mark.line + 1}: duplicate key {key!r}"
                )
            child_path = (*path, key)
            result[key] = _to_python(value_node, child_path, source)
            # Point a key's path at the key itself: that is where a person looks.
            source.lines[child_path] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, index), source) for index, item in enumerate(node.value)]
    return _scalar(node)


def load_yaml(file: Path) -> tuple[Any, SourceMap]:
    """Parse one YAML document; syntax errors become InputError naming file and line."""
    source = SourceMap(file=file)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{file}: cannot read: {error.strerror}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else 1
        raise InputError(f"{file}:{line}: not valid YAML: {error.problem}") from None
    if node is None:
        raise InputError(f"{file}:1: the file is empty")
    return _to_python(node, (), source), source
