"""The read-back check a scenario declares (`read_back:`): after every fault is healed, every
acknowledged write is readable, and none is there twice.

Two halves, as every check: `read_back` asks the system (while it still runs, after healing;
one request per acked write, or one range read per run name) and returns what it answered;
`judge_read_back` is a pure function of the history and those answers. A write whose outcome
is unknown (no answer, a timeout) may or may not be there: it is not required, but a copy
seen twice is still a violation.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.checks.result import CheckResult, judged, unjudged
from harness.load.http_post import KeepAlivePost, ReplyError
from harness.load.http_traffic import json_path
from harness.load.template import parse_template
from harness.records import Outcome, RequestRecord
from harness.scenario.http_load import ReadBack, ReadRequest
from harness.status_adapter import as_text
from harness.verdicts import Verdict

NAME = "read_back"


@dataclass
class ReadBackAnswers:
    """What the system answered: per write id, how many copies it holds (each read per write,
    or every id the range reads listed); `problems`: reads that got no answer."""

    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    complete: bool = True  # every read that was due was made
    ranged: bool = False  # a range read (listed), else one read per write (counts)


def written(history: Iterable[RequestRecord], kinds: set[str]) -> tuple[list[str], set[str]]:
    """(ids of acknowledged writes, ids of writes whose outcome is unknown)."""
    acked: list[str] = []
    unknown: set[str] = set()
    for record in history:
        if record.kind not in kinds:
            continue
        if record.outcome is Outcome.ACKED:
            acked.append(record.client_order_id)
        elif record.outcome is Outcome.UNKNOWN:
            unknown.add(record.client_order_id)
    return acked, unknown


def write_kinds(read_back: ReadBack, declared: Sequence[tuple[str, bool]]) -> set[str]:
    """The kinds the scenario names, else those of its requests marked `write: true`."""
    if read_back.kinds is not None:
        return set(read_back.kinds)
    return {name for name, write in declared if write}


def _request(client: KeepAlivePost, spec: ReadRequest, values: dict[str, str]) -> tuple[int, bytes]:
    headers = {name: parse_template(v).render(values) for name, v in spec.headers.items()}
    body = parse_template(spec.body).render(values).encode()
    if body and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    lines = b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items() if "\n" not in v)
    reply = client.send(spec.method, parse_template(spec.path).render(values), lines, body)
    return reply.status, reply.body


def _json(body: bytes) -> object:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _count(document: object, path: str) -> int | None:
    values = json_path(document, path)
    if not values:
        return 0  # proto3 JSON leaves a zero count out
    text = as_text(values[0])
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def _decoded(value: object, decode: str) -> str | None:
    text = as_text(value)
    if text is None or decode == "none":
        return text
    try:
        return base64.b64decode(text, validate=True).decode(errors="replace")
    except (binascii.Error, ValueError):
        return None


def read_back(
    spec: ReadBack, address: str, runs: Sequence[str], acked: Sequence[str]
) -> ReadBackAnswers:
    """Asks the system at `address` (host:port). Never raises for the system's answers."""
    time.sleep(spec.settle_s)
    host, _, port = address.rpartition(":")
    client = KeepAlivePost(host.strip("[]"), int(port), spec.timeout_s)
    answers = ReadBackAnswers(ranged=spec.range is not None)
    try:
        if spec.per_write is not None:
            _read_each(spec, client, runs, acked, answers)
        else:
            _read_ranges(spec, client, runs, answers)
    finally:
        client.close()
    return answers


def _read_each(
    spec: ReadBack,
    client: KeepAlivePost,
    runs: Sequence[str],
    acked: Sequence[str],
    answers: ReadBackAnswers,
) -> None:
    per_write = spec.per_write
    assert per_write is not None
    ids = list(dict.fromkeys(acked))
    answers.complete = len(ids) <= spec.max_reads
    for write_id in ids[: spec.max_reads]:
        try:
            status, body = _request(client, per_write, {"run": runs[0], "id": write_id})
        except ReplyError as error:
            answers.problems.append(f"{write_id}: no answer ({error})")
            continue
        count = _count(_json(body), per_write.count.path) if status < 300 else None
        if count is None:
            answers.problems.append(
                f"{write_id}: HTTP {status}, no count at {per_write.count.path}"
            )
        else:
            answers.counts[write_id] = count


def _read_ranges(
    spec: ReadBack, client: KeepAlivePost, runs: Sequence[str], answers: ReadBackAnswers
) -> None:
    ranged = spec.range
    assert ranged is not None
    for run in runs:
        try:
            status, body = _request(client, ranged, {"run": run, "id": ""})
        except ReplyError as error:
            answers.problems.append(f"range read for {run}: no answer ({error})")
            answers.complete = False
            continue
        if status >= 300:
            answers.problems.append(f"range read for {run}: HTTP {status}")
            answers.complete = False
            continue
        found = Counter(
            decoded
            for value in json_path(_json(body), ranged.ids.path)
            if (decoded := _decoded(value, ranged.ids.decode)) is not None
        )
        # Ranges of two run names may overlap (the warm-up's name extends the run's): an id
        # two reads list is one item, held as many times as one read lists it.
        for write_id, count in found.items():
            answers.counts[write_id] = max(answers.counts.get(write_id, 0), count)


def judge_read_back(
    acked: Sequence[str], unknown: set[str], answers: ReadBackAnswers | None, problem: str = ""
) -> CheckResult:
    if answers is None:
        return unjudged(NAME, Verdict.UNKNOWN, problem or "the read-back did not run")
    acked_ids = list(dict.fromkeys(acked))
    held = answers.counts
    if answers.ranged:
        # A range read that failed leaves nothing to look at: undecided, not missing.
        missing = [i for i in acked_ids if held.get(i, 0) == 0] if answers.complete else []
    else:
        missing = [i for i in acked_ids if held.get(i) == 0]  # no answer: undecided
    twice = [i for i, n in held.items() if n > 1]
    violations = [f"acknowledged write {i} is not readable" for i in missing]
    violations += [f"write {i} is there {held[i]} times" for i in twice]
    undecided = list(answers.problems[:5])
    if len(answers.problems) > 5:
        undecided.append(f"{len(answers.problems)} reads without an answer in all")
    if not answers.complete:
        undecided.append("not every read was made (max_reads, or a range read without answer)")
    summary = (
        f"{len(acked_ids)} acknowledged writes, {len(missing)} not readable, "
        f"{len(twice)} there more than once ({len(unknown)} writes of unknown outcome not required)"
    )
    counts = {"acked": len(acked_ids), "missing": len(missing), "duplicated": len(twice)}
    return judged(NAME, violations, undecided, counts, summary)
