"""The consoles every command prints through.

Markup (`[red]`) is only ever the harness's own: text from a user's file is passed through
`rich.markup.escape` or printed as `Text`. Emoji codes are off, because `file.yaml:100: ...`
would otherwise print an emoji in place of the line number.
"""

from __future__ import annotations

from rich.console import Console


def make_console(*, stderr: bool = False, width: int | None = None) -> Console:
    return Console(stderr=stderr, highlight=False, emoji=False, width=width)
