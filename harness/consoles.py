"""The consoles every command prints through.

Markup (`[red]`) is only ever the harness's own: text from a user's file is passed through
`rich.markup.escape` or printed as `Text`. Emoji codes are off, because `file.yaml:100: ...`
would otherwise print an emoji in place of the line number. Outside a terminal (a CI log, a
pipe) there is no width to fit: lines are not wrapped at rich's default of 80 columns, which
broke paths and table rows apart in CI logs; $COLUMNS still wins when it is set.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console

# Wide enough for a results path and a table row on one line; a log viewer scrolls.
UNWRAPPED_WIDTH = 200


def make_console(*, stderr: bool = False, width: int | None = None) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if width is None and not os.environ.get("COLUMNS") and not stream.isatty():
        width = UNWRAPPED_WIDTH
    return Console(stderr=stderr, highlight=False, emoji=False, width=width)
