"""Handing memory the harness has freed back to the system between a run's phases.

Judging and writing a long run free what they made, but the allocators keep it: Arrow's
default pool (mimalloc) holds the pages of the tables it wrote and read, glibc's heap the
pages of numpy arrays between its small objects. Six million requests left ~130 MB resident
that nothing used, and the report, drawn next, added its own on top (recording_memory:
488 MB before the report, 404 after releasing, matplotlib loaded). Arrow's buffers come from
the C library's allocator instead (the report over six million requests peaked ~30 MB
lower, a fresh process each), and what is freed is handed back between phases.
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import cache
from typing import Any

ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"


def prefer_system_allocator() -> None:
    """Arrow's buffers from the C library's allocator, unless $ARROW_DEFAULT_MEMORY_POOL
    chose otherwise; call before a run records."""
    os.environ.setdefault(ARROW_POOL_VARIABLE, "system")
    pyarrow = sys.modules.get("pyarrow")  # loaded already: its default pool is made
    if pyarrow is not None and os.environ[ARROW_POOL_VARIABLE] == "system":
        pyarrow.set_memory_pool(pyarrow.system_memory_pool())


def release_freed_memory() -> None:
    """Return freed pages to the system: Arrow's unused pool memory when pyarrow is loaded,
    and glibc's free heap pages (malloc_trim; nothing on a C library without it)."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None:
        pyarrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): it has no such call
        return None
