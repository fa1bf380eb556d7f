"""A run's requests as the report reads them: a row group at a time, never all at once.

A 10-minute run at 10,000 requests/s has six million requests; as one frame of the three
columns the report draws, with the arrays its figures derive, the report took ~90 bytes a
request on top of the run's own history (over 500 MB). Read in pieces, what it keeps is
what it shows: bin counts, at most `MAX_POINTS_PER_OUTCOME` points per outcome, and the
acknowledged latencies (8 bytes each) that exact percentiles need.

Every function here takes a frame (tests, small runs) or a `RequestFile` alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

COLUMNS = ["intended_ns", "end_ns", "outcome"]


@dataclass(frozen=True)
class RequestFile:
    """requests.parquet, opened: its row count, read a row group at a time."""

    path: Path
    rows: int

    @staticmethod
    def open(path: Path) -> RequestFile | None:
        """None when it is missing, unreadable (an aborted run's partial file) or empty."""
        import pyarrow.parquet as pq

        if not path.is_file():
            return None
        try:
            rows = pq.ParquetFile(path).metadata.num_rows
        except (OSError, ValueError):
            return None
        return RequestFile(path, rows) if rows else None

    def bounds(self, column: str) -> tuple[int, int] | None:
        """The least and greatest value of an integer column, from the row groups' statistics
        (no data read); None when a group has none (a writer that kept no statistics)."""
        import pyarrow.parquet as pq

        metadata = pq.ParquetFile(self.path).metadata
        index = metadata.schema.to_arrow_schema().get_field_index(column)
        least: list[int] = []
        greatest: list[int] = []
        for group in range(metadata.num_row_groups):
            statistics = metadata.row_group(group).column(index).statistics
            if statistics is None or not statistics.has_min_max:
                return None
            least.append(int(statistics.min))
            greatest.append(int(statistics.max))
        return (min(least), max(greatest)) if least else None

    def pieces(self) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self.path, read_dictionary=["outcome"])
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group, columns=COLUMNS)
            yield table.to_pandas(split_blocks=True, self_destruct=True)


Requests: TypeAlias = "pd.DataFrame | RequestFile"


def pieces_of(requests: Requests | None) -> Iterator[pd.DataFrame]:
    if requests is None:
        return
    if isinstance(requests, RequestFile):
        yield from requests.pieces()
    elif not requests.empty:
        yield requests


def row_count(requests: Requests | None) -> int:
    if requests is None:
        return 0
    return requests.rows if isinstance(requests, RequestFile) else len(requests)


def first_intended_ns(requests: Requests | None) -> int | None:
    if isinstance(requests, RequestFile) and (bounds := requests.bounds("intended_ns")):
        return bounds[0]
    firsts = [int(piece["intended_ns"].min()) for piece in pieces_of(requests)]
    return min(firsts) if firsts else None


def last_end_ns(requests: Requests | None) -> int | None:
    if isinstance(requests, RequestFile) and (bounds := requests.bounds("end_ns")):
        return bounds[1]
    lasts = [int(piece["end_ns"].max()) for piece in pieces_of(requests)]
    return max(lasts) if lasts else None


def outcome_counts(requests: Requests | None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for piece in pieces_of(requests):
        for outcome, count in piece["outcome"].astype(str).value_counts().items():
            counts[str(outcome)] = counts.get(str(outcome), 0) + int(count)
    return counts


class PointSampler:
    """Which of `total` requests of one outcome to draw, seen a piece at a time: all of them
    when they fit in `most`; else the slowest `most // 2`, which a sample would hide, and
    every stride-th request of the outcome for the body of the distribution."""

    def __init__(self, total: int, most: int) -> None:
        self.keep_all = total <= most
        self.slowest = most // 2
        self.stride = max(1, math.ceil(total / (most - self.slowest)))
        self.seen = 0
        self._kept: list[tuple[Any, Any, Any]] = []  # (index, seconds, latency_ms) arrays
        self._slow = (np.empty(0, np.int64), np.empty(0), np.empty(0))

    def add(self, seconds: npt.NDArray[np.float64], latency_ms: npt.NDArray[np.float64]) -> None:
        index = np.arange(self.seen, self.seen + len(seconds))
        self.seen += len(seconds)
        if self.keep_all:
            self._kept.append((index, seconds, latency_ms))
            return
        every = index % self.stride == 0
        self._kept.append((index[every], seconds[every], latency_ms[every]))
        candidates = tuple(
            np.concatenate([slow, new])
            for slow, new in zip(self._slow, (index, seconds, latency_ms), strict=True)
        )
        if len(candidates[0]) > self.slowest:
            top = np.argpartition(candidates[2], len(candidates[2]) - self.slowest)
            keep = top[len(candidates[2]) - self.slowest :]
            candidates = tuple(column[keep] for column in candidates)
        self._slow = (candidates[0], candidates[1], candidates[2])

    def points(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(seconds, latency_ms) of the requests to draw, each once, in arrival order."""
        parts = [*self._kept, self._slow]
        index = np.concatenate([part[0] for part in parts])
        _, first = np.unique(index, return_index=True)
        seconds = np.concatenate([part[1] for part in parts])[first]
        latency = np.concatenate([part[2] for part in parts])[first]
        return seconds, latency
