"""The status adapter's pure mapping: JSON paths, value maps, Prometheus selectors, member ids."""

from __future__ import annotations

import json

import pytest

from harness.status_adapter import (
    MemberIds,
    StatusShapeError,
    as_text,
    check_shape,
    parse_prometheus,
    parse_selector,
    read_answer,
)
from harness.status_client import build_request
from harness.topology.model import RaftStatus

NATS_RAFTZ = {
    "$SYS": {
        "_meta_": {
            "id": "yrzKKRBu",
            "state": "FOLLOWER",
            "term": 7,
            "leader": "cnrtt3eg",
            "committed": 12,
            "applied": 12,
        }
    }
}


def nats_status() -> RaftStatus:
    return RaftStatus.model_validate(
        {
            "url": "http://127.0.0.1:1/raftz?group=_meta_",
            "role": {"path": "$SYS._meta_.state"},
            "term": {"path": "$SYS._meta_.term"},
            "leader": {"path": "$SYS._meta_.leader"},
            "id": {"path": "$SYS._meta_.id"},
        }
    )


def test_the_reference_shape_needs_no_mapping() -> None:
    status = RaftStatus(url="http://127.0.0.1:1/status")
    body = json.dumps({"role": "leader", "term": 3, "leader": "engine-1", "role_age_ms": 12.5})
    answer = read_answer(status, body.encode())
    assert answer is not None
    assert (answer.role, answer.term, answer.leader_ref) == ("leader", 3, "engine-1")
    assert answer.role_age_ms == 12.5


def test_nested_paths_and_upper_case_states_read_without_a_map() -> None:
    answer = read_answer(nats_status(), json.dumps(NATS_RAFTZ).encode())
    assert answer is not None
    assert (answer.role, answer.term) == ("follower", 7)
    assert (answer.leader_ref, answer.own_id) == ("cnrtt3eg", "yrzKKRBu")


def test_a_value_map_turns_a_boolean_into_a_role() -> None:
    status = RaftStatus.model_validate(
        {
            "url": "http://127.0.0.1:1/",
            "method": "POST",
            "body": "{}",
            "role": {"path": "is_leader", "map": {"true": "leader", "false": "follower"}},
            "term": {"path": "raft.current_term"},
            "leader": {"path": "raft.leader_id"},
        }
    )
    answer = read_answer(
        status, b'{"is_leader": true, "raft": {"current_term": 4, "leader_id": 2}}'
    )
    assert answer is not None
    assert (answer.role, answer.term, answer.leader_ref) == ("leader", 4, "2")
    follower = read_answer(status, b'{"is_leader": false, "raft": {"current_term": 4}}')
    assert follower is not None and follower.role == "follower" and follower.leader_ref is None


def test_list_indexes_and_missing_paths() -> None:
    status = RaftStatus.model_validate(
        {"url": "http://127.0.0.1:1/", "role": {"path": "nodes.1.role"}, "term": {"path": "t"}}
    )
    answer = read_answer(status, b'{"nodes": [{"role": "x"}, {"role": "candidate"}]}')
    assert answer is not None
    assert (answer.role, answer.term, answer.leader_ref) == ("candidate", None, None)
    odd = read_answer(status, b'{"nodes": []}')
    assert odd is not None and odd.role == "unknown"


def test_an_answer_that_is_not_the_declared_format_is_no_answer() -> None:
    assert read_answer(RaftStatus(url="http://127.0.0.1:1/"), b"<html>") is None
    assert read_answer(RaftStatus(url="http://127.0.0.1:1/"), b"[1, 2]") is None
    assert read_answer(RaftStatus(url="http://127.0.0.1:1/"), b"\xff\xfe") is None


PROMETHEUS_TEXT = """\
# HELP raft_is_leader Whether this member leads its group.
# TYPE raft_is_leader gauge
raft_is_leader{group="meta",node="n2"} 1
raft_is_leader{group="data",node="n2"} 0
raft_term_total{group="meta"} 12 1700000000000
raft_leader_id{group="meta"} 2.0
junk line that is not a sample
"""


def prometheus_status(**overrides: object) -> RaftStatus:
    document: dict[str, object] = {
        "url": "http://127.0.0.1:1/metrics",
        "format": "prometheus",
        "role": {"path": 'raft_is_leader{group="meta"}'},
        "term": {"path": 'raft_term_total{group="meta"}'},
        "leader": None,
    }
    return RaftStatus.model_validate({**document, **overrides})


def test_prometheus_gauge_says_leader_and_a_counter_gives_the_term() -> None:
    answer = read_answer(prometheus_status(), PROMETHEUS_TEXT.encode())
    assert answer is not None
    assert (answer.role, answer.term, answer.leader_ref) == ("leader", 12, None)
    data = prometheus_status(role={"path": 'raft_is_leader{group="data"}'})
    assert (read_answer(data, PROMETHEUS_TEXT.encode()) or data).role == "follower"  # type: ignore[union-attr]
    with_leader = prometheus_status(leader={"path": 'raft_leader_id{group="meta"}'})
    answer = read_answer(with_leader, PROMETHEUS_TEXT.encode())
    assert answer is not None and answer.leader_ref == "2"


def test_prometheus_parsing_skips_comments_and_junk() -> None:
    samples = parse_prometheus(PROMETHEUS_TEXT)
    assert [name for name, _, _ in samples] == [
        "raft_is_leader",
        "raft_is_leader",
        "raft_term_total",
        "raft_leader_id",
    ]
    assert samples[0][1] == {"group": "meta", "node": "n2"}
    assert read_answer(prometheus_status(), b"# only comments\n") is None


def test_selectors_parse_and_a_typo_is_refused() -> None:
    selector = parse_selector('raft_is_leader{group="meta", node="a\\"b"}')
    assert selector.metric == "raft_is_leader"
    assert selector.labels == (("group", "meta"), ("node", 'a"b'))
    with pytest.raises(StatusShapeError):
        parse_selector("raft is leader")
    with pytest.raises(StatusShapeError):
        check_shape(prometheus_status(role={"path": "raft_is_leader{group=meta}"}))


def test_raw_values_as_map_keys() -> None:
    assert [as_text(v) for v in (True, False, 3, 3.0, 2.5, "LEADER", None, {})] == [
        "true",
        "false",
        "3",
        "3",
        "2.5",
        "LEADER",
        None,
        None,
    ]
    assert as_text(float("nan")) is None


def test_member_ids_declared_learned_and_unknown() -> None:
    ids = MemberIds(["n1", "n2", "n3"], {"n1": "1"})
    assert ids.service_of("n2") == "n2"  # a service name stands for itself
    assert ids.service_of("1") == "n1"  # declared
    assert ids.service_of("cnrtt3eg") is None  # nobody said it yet
    ids.learn("n3", "cnrtt3eg")
    assert ids.service_of("cnrtt3eg") == "n3"  # learned from n3's own answer
    ids.learn("n2", "cnrtt3eg")  # a second claim does not steal the id
    assert ids.service_of("cnrtt3eg") == "n3"
    assert ids.service_of(None) is None


def test_a_status_block_has_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one of 'url'"):
        RaftStatus.model_validate({})
    with pytest.raises(ValueError, match="exactly one of 'url'"):
        RaftStatus.model_validate({"url": "http://x/", "command": ["status"]})
    with pytest.raises(ValueError, match="needs method: POST"):
        RaftStatus.model_validate({"url": "http://x/", "body": "{}"})
    RaftStatus.model_validate({"command": ["/bin/status", "--json"]})


def test_a_post_request_carries_its_body_and_no_smuggled_header() -> None:
    request = build_request("POST", "/status", "h:1", {"Content-Type": "application/json"}, b"{}")
    assert request == (
        b"POST /status HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )
    with pytest.raises(ValueError, match="no CR, LF"):
        build_request("GET", "/", "h:1", {"X": "a\r\nEvil: 1"}, None)


def test_without_a_role_a_member_naming_itself_leader_leads() -> None:
    """etcd's POST /v3/maintenance/status has no role: its own id and the leader's say it."""
    status = RaftStatus.model_validate(
        {
            "url": "http://127.0.0.1:1/v3/maintenance/status",
            "method": "POST",
            "body": "{}",
            "role": {"path": "role"},
            "term": {"path": "raftTerm"},
            "leader": {"path": "leader"},
            "id": {"path": "header.member_id"},
        }
    )

    def answer(member: str, leader: str | None) -> str:
        document = {"header": {"member_id": member}, "raftTerm": "3"}
        if leader is not None:
            document["leader"] = leader
        body = read_answer(status, json.dumps(document).encode())
        assert body is not None and body.term == 3
        return body.role

    assert answer("125", "125") == "leader"
    assert answer("160", "125") == "follower"
    assert answer("160", None) == "unknown"  # in an election etcd names no leader (0, left out)
