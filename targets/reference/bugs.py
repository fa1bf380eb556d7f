"""Deliberate bugs in the reference system, to prove that hftchaos's safety checkers can fail.

Off unless named in the environment variable `HFTCHAOS_REFERENCE_BUGS` (comma-separated), and
nowhere else: no flag, no config file, so a normal run can never switch one on by accident.
Each is one `if` in one place, found by searching for its name. PROTOCOL.md, "Deliberate bugs
(for proving the checkers)", says what each breaks and which check must catch it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENVIRONMENT_VARIABLE = "HFTCHAOS_REFERENCE_BUGS"

BUGS = {
    "ack_before_commit": "the engine leader answers acked as soon as it has proposed a command",
    "skip_publish_after_failover": "a new leader skips publishing the next executions to Kafka",
    "reapply_on_new_leader": "a new leader proposes its last order again under a fresh id",
    "wall_clock_in_apply": "apply stamps executions with the replica's own wall clock",
    "unguarded_timestamps": "apply takes the leader's stamp as is, even when it went backwards",
    "diverge_replica": "the member with the highest node id adds 1 to every new order's quantity",
}

# skip_publish_after_failover: how many executions a new leader leaves out.
SKIPPED_AFTER_FAILOVER = 5
# reapply_on_new_leader: the suffix of the fresh client order id.
REAPPLIED_SUFFIX = "~again"


class UnknownBugError(ValueError):
    pass


def active_bugs(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The bugs switched on; UnknownBugError for a name that is not a bug (a typo must not
    silently test nothing)."""
    text = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE, "")
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(names - BUGS.keys())
    if unknown:
        raise UnknownBugError(
            f"{ENVIRONMENT_VARIABLE}: unknown bug {', '.join(unknown)}; "
            f"known: {', '.join(sorted(BUGS))}"
        )
    return names
