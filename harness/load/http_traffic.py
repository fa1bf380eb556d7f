"""A declarative HTTP load profile as a `Traffic`: the scenario's `load.http` requests, drawn by
weight for every slot, their templates filled from the request's fields, and each answer
classified acked / rejected / unknown / error by the kind's `outcome` rules.

Deterministic for a seed: the n-th draw is the same whichever sender claims the n-th slot
(under gevent `next_request` does not yield). A `sequence` field is the slot's index plus its
start, so it is unique within one load; put `{{ run }}` in ids that must be unique over runs
and over the warm-up (whose run name differs).
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from harness.load.template import Template, parse_template
from harness.load.traffic import ReplyMeaning, Request
from harness.records import Outcome
from harness.scenario.http_load import (
    AnswerRule,
    Classification,
    FieldSpec,
    HttpProfile,
    HttpRequestSpec,
)
from harness.status_adapter import as_text

REASON_CHARS = 200


@dataclass(frozen=True, slots=True)
class _Kind:
    spec: HttpRequestSpec
    path: Template
    body: Template
    request_id: Template
    headers: tuple[tuple[str, Template], ...]

    @classmethod
    def of(cls, spec: HttpRequestSpec) -> _Kind:
        headers = dict(spec.headers)
        if spec.body and not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
        return cls(
            spec,
            parse_template(spec.path),
            parse_template(spec.body),
            parse_template(spec.id),
            tuple((name, parse_template(value)) for name, value in headers.items()),
        )


def _one_line(text: str) -> str:
    """A drawn value never ends a header line early (that would smuggle another header)."""
    return text.replace("\r", " ").replace("\n", " ")


def _request_target(path: str) -> str:
    """Spaces and control characters would end the request line: percent-encoded."""
    return "".join(c if " " < c < "\x7f" else urllib.parse.quote(c) for c in path)


def draw(field: FieldSpec, slot: int, rng: random.Random) -> str:
    if field.sequence is not None:
        return str(field.sequence.start + slot)
    if field.choice is not None:
        return rng.choice(field.choice)
    chosen = field.random
    assert chosen is not None  # FieldSpec holds exactly one kind
    if chosen.length is not None:
        return "".join(rng.choices(chosen.alphabet, k=chosen.length))
    assert chosen.min is not None and chosen.max is not None
    return str(rng.randint(chosen.min, chosen.max))


def json_path(document: object, path: str) -> list[object]:
    """Every value at `path` (keys and list indexes joined by '.'; '*' runs over a list or an
    object's values). Nothing there: an empty list."""
    found = [document]
    for key in path.split("."):
        step: list[object] = []
        for value in found:
            if key == "*" and isinstance(value, list):
                step.extend(value)
            elif key == "*" and isinstance(value, Mapping):
                step.extend(value.values())
            elif isinstance(value, Mapping) and key in value:
                step.append(value[key])
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                step.append(value[int(key)])
        found = step
    return found


def status_matches(patterns: list[int | str], status: int) -> bool:
    for pattern in patterns:
        if isinstance(pattern, int) and pattern == status:
            return True
        if isinstance(pattern, str) and str(status)[0] == pattern[0]:
            return True
    return False


def _rule_matches(rule: AnswerRule, status: int, document: object) -> bool:
    if not status_matches(rule.status, status):
        return False
    if rule.json_ is None:
        return True
    values = json_path(document, rule.json_.path)
    if rule.json_.equals is None:
        return bool(values)
    return any(as_text(value) == rule.json_.equals for value in values)


def classify(rules: Classification, status: int | None, body: bytes) -> Outcome:
    """What one answer means. None: no answer at all, so the request may or may not have acted."""
    if status is None:
        return Outcome.UNKNOWN
    document: object = None
    if any(
        rule is not None and rule.json_ for rule in (rules.acked, rules.rejected, rules.unknown)
    ):
        try:
            document = json.loads(body) if body else None
        except ValueError:
            document = None
    for outcome, rule in (
        (Outcome.ACKED, rules.acked),
        (Outcome.REJECTED, rules.rejected),
        (Outcome.UNKNOWN, rules.unknown),
    ):
        if rule is not None and _rule_matches(rule, status, document):
            return outcome
    return Outcome.ERROR


class HttpTraffic:
    def __init__(self, profile: HttpProfile, seed: int, run: str) -> None:
        self._random = random.Random(seed)
        self._run = run
        self._kinds = [_Kind.of(spec) for spec in profile.requests]
        self._by_name = {kind.spec.name: kind for kind in self._kinds}
        self._cumulative = list(itertools.accumulate(k.spec.weight for k in self._kinds))

    def _choose(self) -> _Kind:
        if len(self._kinds) == 1:
            return self._kinds[0]
        point = self._random.random() * self._cumulative[-1]
        index = bisect.bisect_right(self._cumulative, point)
        return self._kinds[min(index, len(self._kinds) - 1)]

    def next_request(self, sender: int, slot: int = 0) -> Request:
        kind = self._choose()
        values = {"run": self._run, "slot": str(slot), "sender": str(sender)}
        for name, field in kind.spec.fields.items():
            values[name] = draw(field, slot, self._random)
        values["id"] = kind.request_id.render(values)
        headers = b"".join(
            f"{name}: {_one_line(value.render(values))}\r\n".encode()
            for name, value in kind.headers
        )
        return Request(
            kind.spec.name,
            values["id"],
            _request_target(kind.path.render(values)),
            kind.body.render(values).encode(),
            method=kind.spec.method,
            headers=headers,
        )

    def reply(self, sender: int, request: Request, status: int | None, body: bytes) -> ReplyMeaning:
        kind = self._by_name[request.kind]
        outcome = classify(kind.spec.outcome, status, body)
        if outcome is Outcome.ACKED:
            return ReplyMeaning(outcome)
        text = body.decode(errors="replace")[:REASON_CHARS]
        return ReplyMeaning(outcome, text if status is None else f"HTTP {status}: {text}")
