"""Quote a value from a user's file in an error message: short, escaped, never the whole of it.

A wrong-typed list of 200,000 items must give a short line, not a megabyte; repr escapes
control characters, so a quoted value cannot move the cursor or colour a terminal.
"""

from __future__ import annotations

import reprlib

EXCERPT_CHARS = 60

_REPR = reprlib.Repr()
_REPR.maxstring = EXCERPT_CHARS
_REPR.maxother = EXCERPT_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 6
_REPR.maxlevel = 3
_REPR.maxlong = 40


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """repr(value), cut to about `limit` characters; reprlib never builds the whole repr."""
    if isinstance(value, str):
        return _text(value, limit)
    try:
        shown = _REPR.repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        shown = f"<{type(value).__name__}>"
    if len(shown) > limit:
        shown = shown[: limit - 3] + "..."
    if isinstance(value, list | dict) and len(value) > _REPR.maxlist:
        shown += f" ({len(value)} items)"
    return shown


def _text(value: str, limit: int) -> str:
    """Both ends of a long string: the start says what it is, the end names the file."""
    bounded = value if len(value) <= 2 * limit else value[:limit] + value[-limit:]
    shown = repr(bounded)
    if len(shown) > limit:
        keep = limit - 3
        shown = shown[: keep - keep // 2] + "..." + shown[-(keep // 2) :]
    if len(value) > 2 * limit:  # far longer than shown: say how long
        shown += f" ({len(value)} characters)"
    return shown
