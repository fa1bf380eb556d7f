"""Whether libfaketime's LD_PRELOAD can reach a program, told from its ELF file before it runs.

Two kinds of program are out of its reach: a statically linked one (no program interpreter,
so nothing is preloaded at all) and a Go one (the Go runtime reads the clock through the vDSO
itself, never through libc's clock_gettime, cgo or not). A Go binary carries a `.go.buildinfo`
section, or a `Go` build-id note on older toolchains.
"""

from __future__ import annotations

import struct
from pathlib import Path

_ELF_MAGIC = b"\x7fELF"
_PT_INTERP = 3
_GO_SECTIONS = (b".go.buildinfo", b".note.go.buildid")
_MAX_READ = 256 * 1024 * 1024  # refuse to read a larger file whole: it is not worth it


def preload_bypassed(program: Path) -> str | None:
    """Why a preload cannot move this program's clock; None when it can (or it is no ELF)."""
    try:
        if not program.is_file() or program.stat().st_size > _MAX_READ:
            return None
        data = program.read_bytes()
    except OSError:
        return None
    if data[:4] != _ELF_MAGIC or len(data) < 64:
        return None  # a script: its interpreter is what runs, and it is looked at instead
    layout = _Layout.of(data)
    if any(name in _GO_SECTIONS for name in layout.section_names()):
        return f"{program} is a Go program: Go reads the clock through the vDSO, not libc"
    if not layout.has_interpreter():
        return f"{program} is statically linked: nothing can be preloaded into it"
    return None


class _Layout:
    def __init__(self, data: bytes, wide: bool, order: str) -> None:
        self.data, self.wide, self.order = data, wide, order

    @staticmethod
    def of(data: bytes) -> _Layout:
        return _Layout(data, data[4] == 2, "<" if data[5] == 1 else ">")

    def _unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        return struct.unpack_from(self.order + fmt, self.data, offset)

    def has_interpreter(self) -> bool:
        if self.wide:
            (phoff,) = self._unpack("Q", 0x20)
            entsize, count = self._unpack("HH", 0x36)
        else:
            (phoff,) = self._unpack("I", 0x1C)
            entsize, count = self._unpack("HH", 0x2A)
        return any(
            self._unpack("I", phoff + index * entsize)[0] == _PT_INTERP for index in range(count)
        )

    def section_names(self) -> list[bytes]:
        if self.wide:
            (shoff,) = self._unpack("Q", 0x28)
            entsize, count, names_index = self._unpack("HHH", 0x3A)
        else:
            (shoff,) = self._unpack("I", 0x20)
            entsize, count, names_index = self._unpack("HHH", 0x2E)
        if shoff == 0 or count == 0 or names_index >= count:
            return []
        headers = [shoff + index * entsize for index in range(count)]
        names_at = self._section_offset(headers[names_index])
        names = []
        for header in headers:
            start = names_at + self._unpack("I", header)[0]
            names.append(self.data[start : self.data.index(b"\0", start)])
        return names

    def _section_offset(self, header: int) -> int:
        return (
            self._unpack("Q", header + 0x18)[0]
            if self.wide
            else self._unpack("I", header + 0x10)[0]
        )
