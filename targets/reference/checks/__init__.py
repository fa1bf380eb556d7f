"""The reference system's side of the target seam: its safety checks, its final-state
collector and `hftchaos replay`. The harness reaches them only through `TARGET`, named in
targets/reference/topology.yaml as `target: targets.reference.checks:TARGET`.
"""

from __future__ import annotations

from targets.reference.checks.target import CHECKS, TARGET, ReferenceTarget

__all__ = ["CHECKS", "TARGET", "ReferenceTarget"]
