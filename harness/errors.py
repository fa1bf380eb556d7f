"""Every error hftchaos raises on purpose, and what the CLI does with it.

HarnessError                 base: a message meant for a person, never a traceback
├── InputError               bad input from the user (exit 2)
│   ├── DocumentError        a file cannot be read as a document: not a regular file, too
│   │                        large, not printable UTF-8, or past a YAML limit (names file:line)
│   ├── TopologyError        a topology file is wrong (names file, line, field)
│   ├── TargetError          a topology's `target:` cannot be loaded (harness/checks/target.py)
│   ├── ScenarioError        a scenario file is wrong (names file, line, field)
│   └── SummaryError         a run's summary.json is missing or cannot be read
└── RuntimeEnvironmentError       the machine or a service is not as needed (exit 3)
    ├── ToolchainError       a prerequisite is missing or a provisioning step failed
    ├── BackendError         a service could not be started, stopped or reached
    ├── HealthTimeoutError        a service did not become healthy before its deadline
    └── GuardrailError       a fault would touch a process this run did not start
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3


class HarnessError(Exception):
    """An error with a message written for the person running the harness."""

    exit_code = EXIT_ENVIRONMENT


class InputError(HarnessError):
    exit_code = EXIT_BAD_INPUT


class DocumentError(InputError):
    pass


class TopologyError(InputError):
    pass


class TargetError(InputError):
    pass


class ScenarioError(InputError):
    pass


class SummaryError(InputError):
    pass


class RuntimeEnvironmentError(HarnessError):
    exit_code = EXIT_ENVIRONMENT


class ToolchainError(RuntimeEnvironmentError):
    pass


class BackendError(RuntimeEnvironmentError):
    pass


class HealthTimeoutError(BackendError):
    pass


class GuardrailError(RuntimeEnvironmentError):
    """A fault was about to touch something this run did not start (a pid it did not
    record, or a recorded pid now owned by another process): refused."""
