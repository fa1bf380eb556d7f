"""Compose one YAML document into nodes within fixed bounds, refusing what a safe loader
would choke on later: too deep (RecursionError), too many values once aliases are expanded
("billion laughs": a 421-byte file that never finishes), or tags beyond plain data.

The limits are checked while the parser's events arrive, so a hostile document is refused as
soon as it crosses one, before the rest of it is even tokenised.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from yaml.composer import Composer
from yaml.events import AliasEvent, Event
from yaml.nodes import Node, ScalarNode
from yaml.resolver import Resolver

# The library's documents nest at most 6 deep (faults.0.link.to.role); 32 is far beyond any
# real document and far below Python's recursion limit.
MAX_DEPTH = 32
# Values after expanding every alias; the largest library file has under 1,000.
MAX_VALUES = 100_000

TAG_PREFIX = "tag:yaml.org,2002:"
SCALAR_TAGS = frozenset(
    TAG_PREFIX + name for name in ("null", "bool", "int", "float", "str", "timestamp", "value")
)
COLLECTION_TAGS = frozenset(TAG_PREFIX + name for name in ("seq", "map"))
MERGE_TAG = TAG_PREFIX + "merge"


class RefusedError(Exception):
    """A document crossed a bound; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def shown_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(TAG_PREFIX) if tag.startswith(TAG_PREFIX) else tag


class BoundedComposer(Composer):
    """PyYAML's composer, counting depth and expanded values and checking every tag."""

    peek_event: Callable[[], Event]  # from the parser it is mixed with

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._values = 0
        # Expanded size of each anchored node, known once it is complete: an alias to an
        # anchor that is still open (`&a [*a]`) would make a cycle.
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, AliasEvent):
            node = self._composed(parent, index)  # refuses an undefined alias
            size = self._sizes.get(id(node))
            if size is None:
                raise RefusedError(
                    line, f"alias *{event.anchor} refers to a value that contains it"
                )
            self._count(size, line)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise RefusedError(line, f"nested more than {MAX_DEPTH} levels deep")
        self._check_tag(getattr(event, "tag", None), line)
        before = self._values
        self._count(1, line)
        node = self._composed(parent, index)
        self._depth -= 1
        self._check_node_tag(node, line)
        if getattr(event, "anchor", None) is not None:
            self._sizes[id(node)] = self._values - before
        return node

    def _composed(self, parent: Node | None, index: Any) -> Node:
        node = super().compose_node(parent, index)
        assert node is not None  # the parser gives a node event here, or raises
        return node

    def _count(self, values: int, line: int) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise RefusedError(
                line,
                f"more than {MAX_VALUES:,} values once aliases are expanded "
                "(an alias bomb, or a document far larger than any real one)",
            )

    @staticmethod
    def _check_tag(tag: str | None, line: int) -> None:
        if tag in (None, "!"):
            return  # resolved from the value itself: always a standard tag
        assert tag is not None
        if tag not in SCALAR_TAGS | COLLECTION_TAGS:
            raise RefusedError(
                line,
                f"tag {shown_tag(tag)[:60]!r} is not allowed; only plain data is: strings, "
                "numbers, booleans, null, dates, lists and mappings",
            )

    @staticmethod
    def _check_node_tag(node: Node, line: int) -> None:
        if node.tag == MERGE_TAG:
            raise RefusedError(line, "merge keys (<<) are not supported; write the keys out")
        allowed = SCALAR_TAGS if isinstance(node, ScalarNode) else COLLECTION_TAGS
        if node.tag not in allowed:
            raise RefusedError(line, f"tag {shown_tag(node.tag)[:60]!r} does not fit this value")


def _loader_class() -> type[Any]:
    """libyaml tokenises about 7 times faster than pure Python (a 1.5 MB list: 0.9 s instead
    of 6.6 s); the composing, where the bounds are, stays in Python either way."""
    try:
        from yaml._yaml import CParser
    except ImportError:  # PyYAML built without libyaml
        from yaml.parser import Parser
        from yaml.reader import Reader
        from yaml.scanner import Scanner

        class PythonLoader(Reader, Scanner, Parser, BoundedComposer, Resolver):
            def __init__(self, text: str) -> None:
                Reader.__init__(self, text)
                Scanner.__init__(self)
                Parser.__init__(self)
                BoundedComposer.__init__(self)
                Resolver.__init__(self)

        return PythonLoader

    # The composer comes first so its get_single_node (Python) is used, not CParser's own.
    class FastLoader(BoundedComposer, CParser, Resolver):
        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            BoundedComposer.__init__(self)
            Resolver.__init__(self)

    return FastLoader


_LOADER = _loader_class()


def compose_bounded(text: str) -> Node | None:
    """The document's root node (None for an empty document). Raises RefusedError past a
    bound and yaml.YAMLError for a syntax error."""
    node: Node | None = _LOADER(text).get_single_node()
    return node
