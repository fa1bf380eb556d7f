"""The main job of the first milestone: the reference topology, real trading, one leader kill.

Provision -> up -> burst of orders -> executions reach the consumer through Kafka -> SIGKILL
the Raft leader -> measure failover and first commit -> restart the node -> second burst ->
replicas agree -> tear down and prove nothing was left behind.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.backends.local import LocalBackend
from harness.errors import EXIT_FAILED, EXIT_OK, BackendError
from harness.orders import GatewayClient, OrderReply
from harness.paths import new_run_dir
from harness.raft import HttpLeaderLookup, fetch_json, leader_of
from harness.session import open_local_backend
from harness.toolchain import ensure_toolchain

SYMBOLS = ("ACME", "GLOBEX")
ACCOUNTS = ("acct-1", "acct-2", "acct-3", "acct-4")
_ids = itertools.count(1)


def order_for(index: int, prefix: str) -> dict[str, str | int]:
    """Buys at or above 100.00 and sells at or below it, so most orders cross and trade."""
    side = "buy" if index % 2 == 0 else "sell"
    offset = (index // 2) % 5
    price = f"{100 + offset * 0.01:.2f}" if side == "buy" else f"{100 - offset * 0.01:.2f}"
    return {
        "client_order_id": f"{prefix}-{next(_ids)}",
        "account": ACCOUNTS[index % len(ACCOUNTS)],
        "symbol": SYMBOLS[(index // 10) % len(SYMBOLS)],
        "side": side,
        "price": price,
        "quantity": 1 + index % 7,
    }


def send_burst(gateway: str, count: int, prefix: str, threads: int = 4) -> list[OrderReply]:
    def worker(indexes: range) -> list[OrderReply]:
        client = GatewayClient(gateway)
        try:
            return [client.new_order(**order_for(i, prefix)) for i in indexes]  # type: ignore[arg-type]
        finally:
            client.close()

    slices = [range(t, count, threads) for t in range(threads)]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return [reply for part in pool.map(worker, slices) for reply in part]


def leader_lookup(backend: LocalBackend) -> HttpLeaderLookup:
    members = backend.plan.raft_members()
    return HttpLeaderLookup({m.name: m.raft_status_url for m in members if m.raft_status_url})


def wait_consumer_caught_up(
    backend: LocalBackend, last_seq: int, timeout_s: float
) -> dict[str, object]:
    consumer = backend.plan.with_role("consumer")[0]
    deadline = time.monotonic() + timeout_s
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        status = fetch_json(f"http://{consumer.address('http')}/status")
        if int(str(status.get("last_seq") or 0)) >= last_seq:
            break
        time.sleep(0.1)
    return status


def measure_leader_kill(backend: LocalBackend, gateway: str) -> tuple[str, str, float, float]:
    """SIGKILL the leader; time to a new majority leader, and to the first acknowledged order."""
    lookup = leader_lookup(backend)
    old_leader = lookup.leader()
    if old_leader is None:
        raise BackendError("no Raft leader before the kill")
    killed_ns = time.monotonic_ns()
    backend.kill(old_leader)
    survivors = {n: u for n, u in lookup.status_urls.items() if n != old_leader}
    survivor_lookup = HttpLeaderLookup(survivors)
    new_leader, failover_ms = None, 0.0
    deadline = time.monotonic() + 15
    while new_leader is None and time.monotonic() < deadline:
        views = survivor_lookup.raft_views()
        candidate = leader_of(views)
        if candidate and all(v.leader == candidate for v in views.values()):
            new_leader = candidate
            failover_ms = (time.monotonic_ns() - killed_ns) / 1e6
        else:
            time.sleep(0.005)
    if new_leader is None:
        raise BackendError("no new leader within 15 s of killing the old one")
    client = GatewayClient(gateway)
    first_commit_ms = 0.0
    for index in range(2000):
        reply = client.new_order(**order_for(index, "failover"))  # type: ignore[arg-type]
        if reply.outcome == "acked":
            first_commit_ms = (reply.end_ns - killed_ns) / 1e6
            break
    client.close()
    return old_leader, new_leader, failover_ms, first_commit_ms


def outcome_table(title: str, replies: list[OrderReply]) -> Table:
    counts = Counter(reply.outcome for reply in replies)
    latencies = sorted(reply.latency_ms for reply in replies)
    fills = sum(len(reply.body.get("executions", [])) for reply in replies)
    table = Table(title=title)
    for column in ("orders", "acked", "rejected", "unknown", "error", "fills", "p50 ms", "p99 ms"):
        table.add_column(column, justify="right")
    p50 = latencies[len(latencies) // 2] if latencies else 0.0
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    table.add_row(
        str(len(replies)),
        str(counts["acked"]),
        str(counts["rejected"]),
        str(counts["unknown"]),
        str(counts["error"]),
        str(fills),
        f"{p50:.1f}",
        f"{p99:.1f}",
    )
    return table


def engine_states(backend: LocalBackend) -> dict[str, dict[str, object]]:
    return {
        member.name: fetch_json(member.raft_status_url)
        for member in backend.plan.raft_members()
        if member.raft_status_url
    }


def run_demo(console: Console, topology_file: Path, orders: int) -> int:
    def report(message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}")

    ensure_toolchain(lambda item, message: report(f"[bold]{item}[/]: {message}"))
    run_dir = new_run_dir("demo")
    report(f"run directory {run_dir}")
    with open_local_backend(topology_file, run_dir, report) as backend:
        backend.up()
        gateway = backend.plan.with_role("gateway")[0].address("http")

        first = send_burst(gateway, orders, "burst1")
        console.print(outcome_table("burst 1 through the gateway", first))
        leader = leader_lookup(backend).leader()
        last_seq = int(str(engine_states(backend)[leader or "n1"]["last_exec_seq"]))
        consumer = wait_consumer_caught_up(backend, last_seq, timeout_s=20)
        report(
            f"engine executions: {last_seq}; consumer saw up to seq {consumer.get('last_seq')} "
            f"(duplicates {consumer.get('duplicates')}, gaps {consumer.get('gaps')})"
        )

        old, new, failover_ms, first_commit_ms = measure_leader_kill(backend, gateway)
        report(
            f"[bold]killed leader {old}[/] (SIGKILL): new leader {new} after "
            f"[bold]{failover_ms:.0f} ms[/], first order acked "
            f"{first_commit_ms:.0f} ms after the kill"
        )
        backend.start(old)
        backend.wait_healthy(old)
        report(f"{old} restarted and rejoined")

        second = send_burst(gateway, orders, "burst2")
        console.print(outcome_table("burst 2, after the failover", second))
        states = engine_states(backend)
        final_seq = max(int(str(s["last_exec_seq"])) for s in states.values())
        consumer = wait_consumer_caught_up(backend, final_seq, timeout_s=30)
        report(
            f"engine executions: {final_seq}; consumer saw up to seq {consumer.get('last_seq')} "
            f"(duplicates {consumer.get('duplicates')}, gaps {consumer.get('gaps')})"
        )
        replicas_agree = _wait_replicas_agree(backend, timeout_s=10)
        report(f"replicas agree on the state hash: {replicas_agree}")

    leftovers = [n for n in backend.plan.services if backend.facts(n).state.value == "running"]
    report(f"torn down; processes left: {leftovers or 'none'}")
    ok = (
        replicas_agree
        and not leftovers
        and int(str(consumer.get("last_seq") or 0)) >= final_seq
        and not consumer.get("gaps")
    )
    report("[bold green]demo passed[/]" if ok else "[bold red]demo found a problem[/]")
    return EXIT_OK if ok else EXIT_FAILED


def _wait_replicas_agree(backend: LocalBackend, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = engine_states(backend)
        hashes = {(s["state_hash"], s["last_applied"]) for s in states.values()}
        if len(hashes) == 1:
            return True
        time.sleep(0.2)
    return False
