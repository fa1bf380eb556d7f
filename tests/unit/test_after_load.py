from __future__ import annotations

from harness.after_load import ProbeSink
from harness.records import ProbeSample

MS = 1_000_000


def sample(node: str, at_ms: int, term: int | None, cluster: str = "engine") -> ProbeSample:
    role = "unreachable" if term is None else "follower"
    return ProbeSample(node, at_ms * MS, term is not None, role, term, cluster=cluster)


def test_samples_reach_the_history_until_diverted_and_a_later_term_rise_is_named() -> None:
    published: list[ProbeSample] = []
    sink = ProbeSink(published.append)
    for s in (sample("n1", 1, 3), sample("n2", 2, 4), sample("n3", 3, None)):
        sink(s)  # a rise before the diversion is the run's own: the history has it
    sink(sample("m1", 4, 9, cluster="other"))
    sink.divert(10 * MS)
    for s in (sample("n1", 11, 4), sample("n3", 40, 5), sample("n1", 60, 6)):
        sink(s)
    sink(sample("m1", 70, 9, cluster="other"))  # no rise there
    assert [s.arrival_ns // MS for s in published] == [1, 2, 3, 4]
    (rise,) = sink.term_rises()
    assert (rise.cluster, rise.term_before, rise.term_after) == ("engine", 4, 6)
    assert (rise.node, rise.after_load_ms) == ("n3", 30.0)
    assert "term 4 -> 6" in rise.warning and "n3 30 ms after the load" in rise.warning


def test_no_rise_without_a_term_before_the_diversion() -> None:
    sink = ProbeSink(lambda _sample: None)
    sink(sample("n1", 1, None))  # unreachable all through the load: nothing to compare
    sink.divert(2 * MS)
    sink(sample("n1", 3, 2))
    assert sink.term_rises() == []
