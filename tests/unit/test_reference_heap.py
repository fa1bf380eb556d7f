"""The reference services' freeze of what survives young collections (targets/reference/heap.py).

In a child process, so that the test run's own collector is left as it was."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import gc, json, weakref
from targets.reference.heap import freeze_survivors
freeze_survivors()
freeze_survivors()  # idempotent
history = [[n] for n in range(50_000)]  # lists are tracked (int-only dicts are not)
gc.collect(1)
frozen_after_young = gc.get_freeze_count()
class Node:
    pass
a, b = Node(), Node()
a.other, b.other = b, a  # young cyclic garbage: still collected
probe = weakref.ref(a)
del a, b
gc.collect(0)
print(json.dumps({
    "callbacks": len(gc.callbacks),
    "frozen_after_young": frozen_after_young,
    "history": len(history),
    "young_cycle_collected": probe() is None,
}))
"""


def test_survivors_of_a_young_collection_are_frozen_and_young_cycles_still_collected() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(done.stdout)
    assert seen["callbacks"] == 1
    assert seen["frozen_after_young"] >= seen["history"]  # the history is out of every walk
    assert seen["young_cycle_collected"]
