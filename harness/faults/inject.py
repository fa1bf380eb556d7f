"""Apply one scenario fault to the running system and return how to heal it.

What each kind does lives in its own module (`harness/faults/kinds/`); targets are resolved
there, at the moment of injection, and recorded in the ActiveFault.
"""

from __future__ import annotations

from harness.faults.base import ActiveFault, FaultContext
from harness.faults.registry import kind_of
from harness.scenario.model import Fault


def inject(fault: Fault, key: int, context: FaultContext) -> ActiveFault:
    """Apply `fault`; `key` identifies this application (rule tags, toxic names)."""
    return kind_of(fault).inject(fault, key, context)
