from __future__ import annotations

from harness.history import EventBus, History
from harness.records import PhaseMark


def test_a_failing_listener_is_dropped_and_the_others_keep_receiving() -> None:
    bus, history = EventBus(), History()
    calls = []

    def broken(_record: object) -> None:
        calls.append("broken")
        raise RuntimeError("live view crashed")

    bus.subscribe(broken)
    bus.subscribe(history.record)
    bus.publish(PhaseMark("load", 1))  # must not raise into the publisher
    bus.publish(PhaseMark("load-done", 2))
    assert [p.name for p in history.phases] == ["load", "load-done"]
    assert calls == ["broken"]  # called once, then dropped
    assert len(bus.failures) == 1 and "live view crashed" in bus.failures[0]
