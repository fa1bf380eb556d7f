"""How far the load fell behind its own schedule, and the warning a reader needs when it did.

Latency counts from each request's intended send time, so a late send is never hidden from the
figures: it is in them. But it is not always the system's doing. Every sender may have been
waiting on a slower reply (closed senders: too few `load.users` for the latency times the rate,
by Little's law), or the load generator may have been short of CPU on a saturated host; either
way the run measured its own lag as much as the system. Seen in a 30-kill failover bench at
1,000/s: sends 32 s behind schedule by the end, and no word of it in the summary. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.load.wire import UNSENT_REASON
from harness.metrics import NS_PER_MS, LatencySummary
from harness.records import RequestRecord
from harness.request_log import as_log

# The load path keeps p99 send lateness to a few ms on a quiet 2-core host at 1,000/s
# (`hftchaos bench --only load_path`); beyond this the lag is the run's, not the generator's
# resolution.
SEND_LATENESS_WARN_MS = 20.0


def send_lateness_ms(requests: Sequence[RequestRecord]) -> list[float]:
    """How late each request that was sent left, after its intended time (ms); the slots
    never sent have no start, so they are not in it."""
    numbers = as_log(requests).numbers()
    return [
        ns / NS_PER_MS for ns in numbers.lateness_ns[~numbers.reason_is(UNSENT_REASON)].tolist()
    ]


def lateness_warnings(requests: Sequence[RequestRecord]) -> list[str]:
    numbers = as_log(requests).numbers()
    late_ns = numbers.lateness_ns[~numbers.reason_is(UNSENT_REASON)]
    unsent = numbers.count - len(late_ns)
    late = LatencySummary.of_latencies_ns(late_ns)  # the same ranks, over send lateness
    p99 = late.p99_ms
    if unsent == 0 and (p99 is None or p99 <= SEND_LATENESS_WARN_MS):
        return []
    worst = late.max_ms or 0.0
    said = f"p99 {p99:,.1f} ms, at worst {worst:,.0f} ms" if p99 is not None else "none sent"
    never = f"; {unsent:,} of {numbers.count:,} slots never sent" if unsent else ""
    return [
        f"the load fell behind its schedule (send lateness {said}{never}): latencies count "
        "from the intended send times, so this lag is in them; either every sender was "
        "waiting on a slower reply (raise load.users) or the load generator was short of CPU"
    ]
