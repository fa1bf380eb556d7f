"""The reference system's Raft-replicated matching engine (PROTOCOL.md, "Engine node").

    orderbook.py  price-time priority limit order book for one symbol
    commands.py   the commands in the Raft log and their canonical JSON text
    state.py      the deterministic state machine (pure: unit tests and replays use it alone)
    journal.py    reads the command log back out of a node's PySyncObj journal file
    batching.py   group commit: queued client commands cut into bounded Raft entries
    node.py       PySyncObj replication, proposing on the leader, ROLE lines
    http_api.py   GET /status, POST /commands, GET /orders[/<id>], GET /executions
    publisher.py  leader-only Kafka publication of executions, at least once
    __main__.py   flags and environment, start and clean SIGTERM shutdown

Deliberate bugs (targets/reference/bugs.py, off unless HFTCHAOS_REFERENCE_BUGS names them),
each one `if`: acknowledging before commit in `EngineNode.submit`; re-proposing the last order
when a node becomes leader in `EngineNode._after_tick`; a wall clock or no guard inside apply
in `EngineState._execution_time`; a diverging replica in `ReplicatedEngine.apply_batch`;
skipping executions after a failover in `ExecutionPublisher._take_over`.
"""
