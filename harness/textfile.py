"""Read a user's file as text, bounded: a regular file of at most `MAX_BYTES`, valid UTF-8,
printable characters only. Every refusal is a DocumentError naming the file (and the line).

Scenario, suite and topology files all come through here, and so may a file a document names
(`topology: /dev/zero`, a FIFO, a directory): nothing is read from what is not a regular file,
and nothing blocks while finding out (stat first, then open with O_NONBLOCK, then fstat).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from harness.errors import DocumentError

# The library's largest file is about 8 KiB; 1 MiB leaves room for generated files, and its
# worst case (a megabyte of YAML) still parses in about a second.
MAX_BYTES = 1 << 20

# YAML's printable set (YAML 1.1 section 5.1, the one PyYAML checks), so the parser never
# meets a character it would refuse without a line number.
NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def named_path(document: Path, named: str) -> Path:
    """A file that `document` names, relative to it, resolved where that is possible."""
    path = document.parent / named
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop, a name too long: the reader says which
        return path


def path_exists(path: Path) -> bool:
    """Whether anything is there, for a friendlier message; reading it is checked anew."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return False
    except OSError:
        return True  # there, or not, the reader will say why it cannot be read
    return True


def read_text_file(file: Path) -> str:
    data = _read_bounded(file)
    text = _decode(file, data)
    _check_printable(file, text)
    return text.removeprefix("\ufeff")


def _refuse_special(file: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise DocumentError(f"{file}: cannot read {kind}; give a regular file")


def _cannot_read(file: Path, error: OSError | ValueError) -> DocumentError:
    if isinstance(error, FileNotFoundError):
        return DocumentError(f"{file}: no such file")
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return DocumentError(f"{file}: cannot read: {reason}")


def _read_bounded(file: Path) -> bytes:
    try:
        status = os.stat(file)
        _refuse_special(file, status.st_mode)
        _refuse_size(file, status.st_size)
        # O_NONBLOCK: if the path was swapped for a FIFO since the stat, open must not wait
        # for a writer; the fstat below then refuses it.
        descriptor = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        raise _cannot_read(file, error) from None
    try:
        _refuse_special(file, os.fstat(descriptor).st_mode)
        # One byte over the limit tells a file that grew since the stat from one that fits.
        data = _read_at_most(descriptor, MAX_BYTES + 1)
    except OSError as error:
        raise _cannot_read(file, error) from None
    finally:
        os.close(descriptor)
    _refuse_size(file, len(data))
    return data


def _read_at_most(descriptor: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(descriptor, min(remaining, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _refuse_size(file: Path, size: int) -> None:
    if size > MAX_BYTES:
        raise DocumentError(
            f"{file}: the file is larger than the limit of {MAX_BYTES >> 20} MiB "
            f"({size} bytes or more)"
        )


def _decode(file: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        bad = data[error.start : error.start + 4]
        raise DocumentError(
            f"{file}:{line}: not UTF-8 text: byte {bad[:1]!r} at column {column} "
            f"({error.reason}); save the file as UTF-8"
        ) from None


def _check_printable(file: Path, text: str) -> None:
    found = NOT_PRINTABLE.search(text)
    if found is None:
        return
    position = found.start()
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    raise DocumentError(
        f"{file}:{line}: unprintable character {found.group()!r} (U+{ord(found.group()):04X}) "
        f"at column {column}; only printable text is allowed (tabs and line breaks are fine)"
    )
