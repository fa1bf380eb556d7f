"""One module per fault kind, each exposing `KIND` (a `harness.faults.kind.FaultKind`).

Adding a kind means adding a module here (and its scenario model and tests); the registry
(`harness.faults.registry`) finds it by walking this package.
"""
