"""Declarative HTTP load profiles: templates, field draws, answer classification, the request a
profile sends, and the file:line errors of a bad profile."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.load.http_traffic import HttpTraffic, classify, json_path
from harness.load.template import TemplateError, parse_template
from harness.records import Outcome
from harness.scenario.http_load import Classification, HttpProfile
from harness.scenario.loader import load_scenario


def test_template_renders_fields_through_filters() -> None:
    template = parse_template('{"key": "{{ key | base64 }}", "raw": {{ key | json }}}')
    text = template.render({"key": "run-7"})
    assert json.loads(text) == {"key": base64.b64encode(b"run-7").decode(), "raw": "run-7"}
    assert parse_template("{{ run | prefix_end }}").render({"run": "r1-"}) == "r1."


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ nope }}", "unknown name 'nope'"),
        ("{{ key | rot13 }}", "unknown filter 'rot13'"),
        ("{{ key ", "unclosed"),
        ("{{ 1x }}", "a placeholder is a name"),
    ],
)
def test_template_mistakes_are_named(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_template(text, {"key"})


PROFILE = {
    "requests": [
        {
            "name": "put",
            "weight": 3,
            "path": "/v3/kv/put",
            "body": '{"key": "{{ id | base64 }}", "value": "{{ value | base64 }}"}',
            "id": "{{ run }}-{{ n }}",
            "fields": {"n": {"sequence": {"start": 100}}, "value": {"random": {"length": 8}}},
            "write": True,
        },
        {
            "name": "get",
            "method": "GET",
            "path": "/items/{{ item }}?who={{ who }}",
            "headers": {"X-Who": "{{ who }}"},
            "fields": {"item": {"random": {"min": 1, "max": 3}}, "who": {"choice": ["a b", "c"]}},
        },
    ]
}


def test_requests_follow_the_weights_and_are_reproducible() -> None:
    profile = HttpProfile.model_validate(PROFILE)
    one, two = HttpTraffic(profile, 5, "r1"), HttpTraffic(profile, 5, "r1")
    first = [one.next_request(0, slot) for slot in range(400)]
    again = [two.next_request(0, slot) for slot in range(400)]
    assert first == again
    puts = [r for r in first if r.kind == "put"]
    assert 0.65 < len(puts) / len(first) < 0.85  # weight 3 of 4
    put = puts[0]
    body = json.loads(put.body)
    assert put.request_id == f"r1-{100 + first.index(put)}"  # sequence = start + slot
    assert base64.b64decode(body["key"]).decode() == put.request_id
    assert put.headers is not None and b"Content-Type: application/json\r\n" in put.headers
    get = next(r for r in first if r.kind == "get")
    assert get.method == "GET" and " " not in get.path  # a space would end the request line
    assert get.path.split("/")[2].split("?")[0] in {"1", "2", "3"}
    assert get.headers is not None and get.headers.count(b"\r\n") == 1


RULES = Classification.model_validate(
    {
        "acked": {"status": [200], "json": {"path": "header.revision"}},
        "rejected": {"status": ["4xx"]},
        "unknown": {"status": [504]},
    }
)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"header": {"revision": "5"}}', Outcome.ACKED),
        (200, b'{"error": "no leader"}', Outcome.ERROR),  # 200 without the field: not taken
        (200, b"not json", Outcome.ERROR),
        (409, b"", Outcome.REJECTED),
        (504, b"", Outcome.UNKNOWN),
        (503, b"", Outcome.ERROR),
        (None, b"timed out", Outcome.UNKNOWN),  # no answer: it may have acted
    ],
)
def test_answers_are_classified(status: int | None, body: bytes, outcome: Outcome) -> None:
    assert classify(RULES, status, body) is outcome


def test_json_condition_compares_as_text() -> None:
    rules = Classification.model_validate(
        {"acked": {"status": [200], "json": {"path": "ok", "equals": "true"}}}
    )
    assert classify(rules, 200, b'{"ok": true}') is Outcome.ACKED
    assert classify(rules, 200, b'{"ok": false}') is Outcome.ERROR


def test_json_path_runs_over_lists() -> None:
    document = {"kvs": [{"key": "a"}, {"key": "b"}], "count": "2"}
    assert json_path(document, "kvs.*.key") == ["a", "b"]
    assert json_path(document, "kvs.1.key") == ["b"]
    assert json_path(document, "missing.key") == []


TOPOLOGY = """\
name: kv
services:
  kv:
    members: 2
    role: kv
    ports: [client]
    command: [/bin/true]
  toxiproxy:
    role: toxiproxy
    ports: [api]
    command: [/bin/true]
links:
  to-kv:
    from: kv-1
    to: kv-2
    port: client
"""


def _scenario(tmp_path: Path, load: str, extra: str = "") -> Path:
    (tmp_path / "topology.yaml").write_text(TOPOLOGY)
    file = tmp_path / "s.yaml"
    file.write_text(f"name: s\ntopology: topology.yaml\nchecks: []\nload:\n{load}{extra}")
    return file


GOOD_LOAD = """\
  rate_per_s: 10
  duration_s: 5
  target: {role: kv, port: client}
  http:
    requests:
      - name: put
        path: /put
        body: '{"k": "{{ id }}"}'
        write: true
"""


def test_a_good_profile_loads(tmp_path: Path) -> None:
    loaded = load_scenario(_scenario(tmp_path, GOOD_LOAD))
    assert loaded.scenario.load.http is not None


RANGE_READ = "read_back:\n  range: {path: /r, ids: {path: k}}\n"
HALF_RANDOM = "path: /put\n        fields: {n: {random: {min: 3}}}"
MISTAKES = [
    ("{{ id }}", "{{ idd }}", "", ":10: load.http.requests.0: body: unknown name 'idd'"),
    ("port: client", "port: http", "", ":7: load.target.port: no port 'http'"),
    ("role: kv", "role: db", "", ":7: load.target.role: no service has role 'db'"),
    ("{role: kv, port: client}", "{via: nowhere}", "", ":7: load.target.via: unknown link"),
    ("write: true", "write: false", RANGE_READ, "read_back.kinds: no request kind has 'write"),
    ("path: /put", HALF_RANDOM, "", "an integer needs both 'min' and 'max'"),
]


@pytest.mark.parametrize(("old", "new", "extra", "message"), MISTAKES)
def test_profile_mistakes_name_file_line_field(
    tmp_path: Path, old: str, new: str, extra: str, message: str
) -> None:
    with pytest.raises(ScenarioError) as raised:
        load_scenario(_scenario(tmp_path, GOOD_LOAD.replace(old, new), extra))
    assert message in str(raised.value), str(raised.value)
