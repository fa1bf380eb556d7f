"""The reference system's Raft-replicated matching engine (PROTOCOL.md, "Engine node").

    orderbook.py  price-time priority limit order book for one symbol
    commands.py   the commands in the Raft log and their canonical JSON text
    state.py      the deterministic state machine (pure: unit tests and replays use it alone)
    journal.py    reads the command log back out of a node's PySyncObj journal file
    node.py       PySyncObj replication, proposing on the leader, ROLE lines
    http_api.py   GET /status, POST /commands, GET /orders/<id>, GET /executions
    publisher.py  leader-only Kafka publication of executions, at least once
    __main__.py   flags and environment, start and clean SIGTERM shutdown

Where deliberate faults would go, each as one `if`: acknowledging before commit in
`EngineNode.submit`; re-proposing a command when a node becomes leader in
`EngineNode._after_tick`; a wall clock inside apply in `state._execution_time`.
"""
