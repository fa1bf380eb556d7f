from __future__ import annotations

import os
import sys

import pytest

from harness import memory


def resident_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


@pytest.mark.skipif(memory._malloc_trim() is None, reason="a C library without malloc_trim")
def test_release_hands_back_heap_pages_freed_between_live_objects() -> None:
    """The case it is for: big blocks freed between small ones that live on, which the heap
    cannot shrink past without being asked."""
    big, small = [], []
    for _ in range(2_000):
        big.append(bytearray(100_000))  # below glibc's mmap threshold: on the heap
        small.append(bytes(600))  # past Python's small-object allocator: on the heap too
    for block in big:
        block[::4096] = b"\x01" * len(block[::4096])  # touched: resident
    del big
    before = resident_mb()
    memory.release_freed_memory()
    assert before - resident_mb() > 100  # ~200 MB were freed and kept
    assert len(small) == 2_000


def test_the_system_allocator_is_preferred_unless_chosen_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pyarrow as pa

    monkeypatch.setattr(pa, "set_memory_pool", lambda pool: chosen.append(pool.backend_name))
    chosen: list[str] = []
    monkeypatch.setenv(memory.ARROW_POOL_VARIABLE, "jemalloc")
    memory.prefer_system_allocator()
    assert chosen == [] and os.environ[memory.ARROW_POOL_VARIABLE] == "jemalloc"
    monkeypatch.delenv(memory.ARROW_POOL_VARIABLE)
    memory.prefer_system_allocator()
    assert chosen == ["system"] and os.environ[memory.ARROW_POOL_VARIABLE] == "system"
    assert "pyarrow" in sys.modules
