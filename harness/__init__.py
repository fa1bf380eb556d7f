"""hftchaos: chaos and resilience testing for low-latency trading systems.

The public surface for scenario and target authors; the engine behind it can change.
"""

from harness.errors import (
    BackendError,
    HarnessError,
    InputError,
    ScenarioError,
    ToolchainError,
    TopologyError,
)

__all__ = [
    "BackendError",
    "HarnessError",
    "InputError",
    "ScenarioError",
    "ToolchainError",
    "TopologyError",
]
