"""The load worker: Locust used as a library, in a process of its own.

    python -m harness.load.worker --gateway 127.0.0.1:8080 --rate 200 --duration-s 30

Importing locust monkey-patches the standard library with gevent. That would disturb the
harness (threads, subprocesses, probes), so it happens in this process only; the harness runs
it through `harness.load.driver` and reads one JSON line per request from stdout (`wire.py`).
Log messages go to stderr; a stray print cannot corrupt the record stream.

Open loop: users claim the next slot of one shared schedule, sleep until its intended time (or
send at once if already late) and record intended, start and end times on CLOCK_MONOTONIC,
the clock of the harness. The run is bounded: at most rate * duration slots, no slot claimed
after the schedule's end, and a hard stop at duration + request timeout.

Users are `FastHttpUser`s (geventhttpclient, one keep-alive connection each): several times
cheaper per request than `HttpUser` (requests), which matters because one worker is one core.
Against a trivial local server on a 2-core machine it keeps schedule up to about 1500
requests/s; beyond that sends fall behind and the late slots show up as latency, as they should.
"""

from __future__ import annotations

# isort: off
import locust  # noqa: F401  first: importing it monkey-patches the standard library with gevent

# isort: on
import argparse
import json
import logging
import random
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TextIO

import gevent  # type: ignore[import-untyped]
from gevent.event import Event  # type: ignore[import-untyped]
from locust import FastHttpUser, constant, task
from locust.env import Environment
from locust.event import Events
from locust.exception import StopUser

from harness.load import wire
from harness.load.orderflow import (
    RESTING_STATUSES,
    OrderFlow,
    OrderIntent,
    client_order_id,
    outcome_of,
)
from harness.load.schedule import NS_PER_S, Slot, SlotSchedule
from harness.records import Outcome, RequestRecord

log = logging.getLogger("harness.load.worker")

FLUSH_INTERVAL_S = 0.05  # how stale the parent's live figures may be
START_LEAD_NS = 20_000_000  # slot 0 lies a little ahead, so no user starts out late
MAX_RESTING_PER_USER = 1000  # cancel candidates kept per user; older ones are forgotten
USER_CLASS = "FastHttpUser"


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    gateway: str
    rate_per_s: float
    duration_s: float
    users: int
    symbols: tuple[str, ...]
    accounts: int
    mid_price: float
    cancel_ratio: float
    request_timeout_s: float
    seed: int
    id_prefix: str


class LineWriter:
    """Buffers record lines and writes them every FLUSH_INTERVAL_S: live enough for the
    parent's display without a system call per request."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending: list[str] = []
        self._broken = False
        self.records = 0

    def record(self, record: RequestRecord) -> None:
        self._pending.append(wire.record_line(record))
        self.records += 1

    def line(self, text: str) -> None:
        self._pending.append(text)

    def flush(self) -> None:
        if not self._pending or self._broken:
            return
        text, self._pending = "".join(self._pending), []
        try:
            self._stream.write(text)
            self._stream.flush()
        except OSError as error:  # the reader is gone; keep running, stop writing
            self._broken = True
            log.error("cannot write records any more: %s", error)

    def flush_forever(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL_S)
            self.flush()


class LoadRun:
    """State shared by all users of one run. Under gevent only one greenlet runs at a time,
    and nothing here yields, so claiming a slot and drawing its order is atomic."""

    def __init__(self, options: WorkerOptions, writer: LineWriter) -> None:
        self.options = options
        self.writer = writer
        self.flow = OrderFlow(
            options.symbols,
            options.accounts,
            options.mid_price,
            options.seed,
            cancel_ratio=options.cancel_ratio,
        )
        self.schedule: SlotSchedule | None = None
        self.go = Event()
        self.done = Event()
        self.stopped_by = "completed"
        self.sent = 0
        self._users_started = 0
        self._users_finished = 0

    def begin(self, schedule: SlotSchedule) -> None:
        self.schedule = schedule
        self.go.set()

    def stop(self, why: str) -> None:
        if not self.done.is_set():
            self.stopped_by = why
            log.info("stopping: %s", why)
        if self.schedule is not None:
            self.schedule.close()
        self.done.set()

    def user_started(self) -> int:
        self._users_started += 1
        return self._users_started

    def user_finished(self) -> None:
        self._users_finished += 1
        if self._users_finished >= self.options.users:
            self.done.set()

    def claim(self) -> tuple[Slot, bool, OrderIntent] | None:
        if self.schedule is None:
            return None
        slot = self.schedule.claim(time.monotonic_ns())
        if slot is None:
            return None
        step = self.flow.next()
        return slot, step.cancel, step.order


class OrderFlowUser(FastHttpUser):
    """One sender: claims slots, sends new orders or cancels of its own resting ones."""

    abstract = True
    wait_time = constant(0)
    load: ClassVar[LoadRun]

    def on_start(self) -> None:
        self.index = self.load.user_started()
        self.random = random.Random(self.load.options.seed * 1_000_003 + self.index)
        self.sequence = 0
        self.resting: list[str] = []

    @task
    def trade(self) -> None:
        self.load.go.wait()
        claimed = self.load.claim()
        if claimed is None:
            self.load.user_finished()
            raise StopUser()
        slot, cancel, order = claimed
        delay_ns = slot.intended_ns - time.monotonic_ns()
        if delay_ns > 0:
            gevent.sleep(delay_ns / NS_PER_S)
        if cancel and self.resting:
            target = self.resting.pop(self.random.randrange(len(self.resting)))
            path, name = f"/orders/{target}/cancel", "/orders/[id]/cancel"
            self._send("cancel", target, path, name, {}, slot.intended_ns)
        else:
            self.sequence += 1
            order_id = client_order_id(self.load.options.id_prefix, self.index, self.sequence)
            body = order.body(order_id)
            reply = self._send("new", order_id, "/orders", "/orders", body, slot.intended_ns)
            self._remember_if_resting(order_id, reply)

    def _send(
        self,
        kind: str,
        order_id: str,
        path: str,
        name: str,
        body: dict[str, object],
        intended_ns: int,
    ) -> dict[str, Any]:
        """Sends one request and records it; returns the reply body if it was acked."""
        self.load.sent += 1
        record = _RecordBuilder(kind, order_id, intended_ns, self.index)
        try:
            with self.client.post(path, json=body, name=name, catch_response=True) as response:
                end_ns = time.monotonic_ns()
                status = response.status_code or None
                reply = _json_object(response.content)
                outcome = outcome_of(status)
                if status is None:
                    error = getattr(response, "error", None)
                    reason = f"{type(error).__name__}: {error}"[:200]
                else:
                    reason = str(reply.get("reason", ""))
                if outcome in (Outcome.ACKED, Outcome.REJECTED):
                    response.success()
                else:
                    response.failure(reason or outcome.value)
        except gevent.GreenletExit:
            # Stopped with the request in flight: it may or may not have reached the gateway.
            reason = "load stopped before the reply came"
            self.load.writer.record(record.done(time.monotonic_ns(), Outcome.UNKNOWN, None, reason))
            raise
        if outcome is not Outcome.ACKED:
            self.load.writer.record(record.done(end_ns, outcome, status, reason))
            return {}
        executions = reply.get("executions")
        fills = len(executions) if isinstance(executions, list) else 0
        self.load.writer.record(record.done(end_ns, outcome, status, reason, fills))
        return reply

    def _remember_if_resting(self, order_id: str, reply: dict[str, Any]) -> None:
        order = reply.get("order")
        if isinstance(order, dict) and order.get("status", "new") in RESTING_STATUSES:
            self.resting.append(order_id)
            if len(self.resting) > MAX_RESTING_PER_USER:
                del self.resting[0]


class _RecordBuilder:
    """Stamps the start when created, just before the request goes out."""

    def __init__(self, kind: str, order_id: str, intended_ns: int, user: int) -> None:
        self.kind, self.order_id, self.intended_ns, self.user = kind, order_id, intended_ns, user
        self.start_ns = time.monotonic_ns()

    def done(
        self, end_ns: int, outcome: Outcome, status: int | None, reason: str, fills: int = 0
    ) -> RequestRecord:
        return RequestRecord(
            kind=self.kind,
            client_order_id=self.order_id,
            intended_ns=self.intended_ns,
            start_ns=self.start_ns,
            end_ns=end_ns,
            outcome=outcome,
            http_status=status,
            reason=reason,
            user=self.user,
            fills=fills,
        )


def _json_object(content: bytes | None) -> dict[str, Any]:
    if not content:
        return {}
    try:
        parsed = json.loads(content)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def run(options: WorkerOptions, out: TextIO) -> int:
    writer = LineWriter(out)
    load = LoadRun(options, writer)
    user_class = type(
        "OrderFlowUser",
        (OrderFlowUser,),
        {
            "abstract": False,
            "load": load,
            "host": f"http://{options.gateway}",
            "network_timeout": options.request_timeout_s,
            "connection_timeout": options.request_timeout_s,
        },
    )
    events = Events()  # type: ignore[no-untyped-call]  # locust leaves __init__ unannotated
    environment = Environment(user_classes=[user_class], events=events)
    runner = environment.create_local_runner()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, load.stop, f"signal {signal.Signals(signum).name}")
    flusher = gevent.spawn(writer.flush_forever)
    try:
        runner.start(options.users, spawn_rate=float(options.users))
        if runner.spawning_greenlet is not None:
            runner.spawning_greenlet.join()  # every user exists before slot 0 is due
        start_ns = time.monotonic_ns() + START_LEAD_NS
        schedule = SlotSchedule(start_ns, options.rate_per_s, options.duration_s)
        load.begin(schedule)
        writer.line(wire.notice_line(wire.STARTED_KIND, {"start_ns": start_ns}))
        log.info(
            "%d slots from %d users at %g/s", schedule.total, options.users, schedule.rate_per_s
        )
        hard_stop_s = START_LEAD_NS / NS_PER_S + options.duration_s + options.request_timeout_s
        if not load.done.wait(timeout=hard_stop_s):
            load.stop("deadline (duration + request timeout)")
        schedule.close()
        runner.quit()
        runner.user_greenlets.join(timeout=1.0)  # let stopped users record what was in flight
        _record_unsent(writer, schedule, options.id_prefix)
    finally:
        flusher.kill()
        writer.line(wire.notice_line(wire.SUMMARY_KIND, _summary(environment, load)))
        writer.flush()
    return 0


def _record_unsent(writer: LineWriter, schedule: SlotSchedule, id_prefix: str) -> None:
    now_ns = time.monotonic_ns()
    for slot in schedule.unclaimed(due_before_ns=now_ns):
        writer.record(
            RequestRecord(
                kind="new",
                client_order_id=f"{id_prefix}-unsent-{slot.index}",
                intended_ns=slot.intended_ns,
                start_ns=now_ns,
                end_ns=now_ns,
                outcome=Outcome.ERROR,
                reason=wire.UNSENT_REASON,
            )
        )


def _summary(environment: Environment, load: LoadRun) -> dict[str, Any]:
    total = environment.stats.total
    schedule = load.schedule
    return {
        "user_class": USER_CLASS,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "median_ms": total.median_response_time if total.num_requests else None,
        "p99_ms": total.get_response_time_percentile(0.99) if total.num_requests else None,
        "slots_scheduled": schedule.total if schedule else 0,
        "slots_claimed": schedule.claimed if schedule else 0,
        "slots_sent": load.sent,
        "records": load.writer.records,
        "start_ns": schedule.start_ns if schedule else None,
        "end_ns": time.monotonic_ns(),
        "stopped_by": load.stopped_by,
    }


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _address(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {text!r}")
    return text


def parse_options(argv: Sequence[str] | None = None) -> WorkerOptions:
    parser = argparse.ArgumentParser(prog="python -m harness.load.worker", description=__doc__)
    parser.add_argument("--gateway", type=_address, required=True, help="host:port")
    parser.add_argument("--rate", type=_positive(float), required=True, help="requests per s")
    parser.add_argument("--duration-s", type=_positive(float), required=True)
    parser.add_argument("--users", type=_positive(int), default=16)
    parser.add_argument("--symbols", default="ACME,GLOBEX", help="comma-separated")
    parser.add_argument("--accounts", type=_positive(int), default=4)
    parser.add_argument("--mid-price", type=_positive(float), default=100.0)
    parser.add_argument("--cancel-ratio", type=_ratio, default=0.1)
    parser.add_argument("--request-timeout-s", type=_positive(float), default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--id-prefix", default="load")
    args = parser.parse_args(argv)
    symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    if not symbols:
        parser.error("--symbols needs at least one symbol")
    return WorkerOptions(
        gateway=args.gateway,
        rate_per_s=args.rate,
        duration_s=args.duration_s,
        users=args.users,
        symbols=symbols,
        accounts=args.accounts,
        mid_price=args.mid_price,
        cancel_ratio=args.cancel_ratio,
        request_timeout_s=args.request_timeout_s,
        seed=args.seed,
        id_prefix=args.id_prefix,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    records_out = sys.stdout
    sys.stdout = sys.stderr  # only the record stream may reach the parent's pipe
    return run(options, records_out)


if __name__ == "__main__":
    sys.exit(main())
