"""A load worker: one Locust worker process, one share of the open-loop schedule.

    python -m harness.load.worker --master 127.0.0.1:5557

Started by the driver next to the master (`master.py`; how many: driver.py), or by hand on
another machine against a master's address (README, "Load from several machines"). Importing
locust monkey-patches the standard library with gevent, so this runs in its own process.

The master sends `hftchaos_begin` with the load options, this worker's share of the schedule
(worker i of n sends slots i, i + n, ...) and slot 0's instant. Each user (a sender) then
loops without Locust's per-task machinery: claim the next slot of the share, draw its request
from the `Traffic` (`traffic.py`), sleep until the slot is due (or send at once if late), POST
it over its own keep-alive connection (`http_post.py`) and append one row (`wire.RECORD_FIELDS`)
with the intended, start and end instants. Every FLUSH_INTERVAL_S the rows go to the master as
one `hftchaos_records` message; the master writes them to the harness. At the end (the share
exhausted, a stop, a signal) slots due but never sent are recorded as failures, and
`hftchaos_finished` carries this worker's counts.

Clock: instants are CLOCK_MONOTONIC. A worker on the master's machine (same kernel boot id)
uses the master's clock as is: the times are exact. One on another machine maps its clock onto
the master's through the wall clocks, so its times are as good as the machines' clock sync.
"""

from __future__ import annotations

# isort: off
import locust  # noqa: F401  first: importing it monkey-patches the standard library with gevent

# isort: on
import argparse
import gc
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gevent  # type: ignore[import-untyped]
from gevent.event import Event  # type: ignore[import-untyped]
from locust import User, constant, task
from locust.env import Environment
from locust.event import Events
from locust.exception import StopUser

from harness.load import wire
from harness.load.http_post import KeepAlivePost, ReplyError
from harness.load.http_traffic import HttpTraffic
from harness.load.schedule import NS_PER_S, Share, Slot, SlotSchedule
from harness.load.traffic import OrderTraffic, OrderTrafficOptions, Request, Traffic
from harness.load.user_class import UserClassError, UserTasks, load_user_class
from harness.records import Outcome
from harness.scenario.http_load import HttpProfile, UserClassSpec

log = logging.getLogger("harness.load.worker")

BEGIN_MESSAGE = "hftchaos_begin"
RECORDS_MESSAGE = "hftchaos_records"
FINISHED_MESSAGE = "hftchaos_finished"
STOP_MESSAGE = "hftchaos_stop"
FLUSH_INTERVAL_S = 0.05  # how stale the harness's live figures may be
STOP_JOIN_S = 1.0  # stopped senders get this long to record what they had in flight
QUIT_GRACE_S = 5.0  # after finishing, wait this long for the master's quit, then exit anyway
BOOT_ID = "/proc/sys/kernel/random/boot_id"


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """What the master is started with and sends every worker in `hftchaos_begin`."""

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
    # Every address the senders spread over (default: the gateway alone), and what they
    # send: the order flow, or the scenario's `load.http` / `load.user_class` as JSON text.
    targets: tuple[str, ...] = ()
    http_profile: str = ""
    user_class: str = ""

    @classmethod
    def from_message(cls, fields: dict[str, Any]) -> LoadOptions:
        return cls(
            **{
                **fields,
                "symbols": tuple(fields["symbols"]),
                "targets": tuple(fields.get("targets", ())),
            }
        )

    @property
    def addresses(self) -> tuple[str, ...]:
        return self.targets or (self.gateway,)


def boot_id() -> str:
    try:
        with open(BOOT_ID, encoding="ascii") as source:
            return source.read().strip()
    except OSError:
        return ""


def wall_minus_monotonic_ns() -> int:
    return time.time_ns() - time.monotonic_ns()


def clock_offset_ns(master_boot_id: str, master_wall_minus_monotonic_ns: int) -> int:
    """Our monotonic clock minus the master's: 0 on the same machine (one clock)."""
    if master_boot_id and master_boot_id == boot_id():
        return 0
    return master_wall_minus_monotonic_ns - wall_minus_monotonic_ns()


def share_seed(options: LoadOptions, share: Share) -> int:
    """Each share its own random stream, reproducible."""
    return options.seed * 7919 + share.index


def traffic_for(options: LoadOptions, share: Share) -> Traffic | None:
    """What the senders send; None for a user's own Locust class, which sends it itself."""
    seed = share_seed(options, share)
    if options.user_class:
        return None
    if options.http_profile:
        profile = HttpProfile.model_validate_json(options.http_profile)
        return HttpTraffic(profile, seed, options.id_prefix)
    return OrderTraffic(
        OrderTrafficOptions(
            symbols=options.symbols,
            accounts=options.accounts,
            mid_price=options.mid_price,
            cancel_ratio=options.cancel_ratio,
            seed=seed,
            id_prefix=options.id_prefix,
        )
    )


class WorkerLoad:
    """This process's share of the run. Under gevent only one greenlet runs at a time and
    nothing here yields, so claiming a slot and drawing its request is atomic."""

    def __init__(self) -> None:
        self.go = Event()
        self.done = Event()
        self.rows: list[tuple[Any, ...]] = []
        self.stopped_by = "completed"
        self.sent = 0
        self.failures = 0  # sent, answered neither acked nor rejected
        self.records = 0
        self.offset_ns = 0
        self.share = Share()
        self.options: LoadOptions | None = None
        self.schedule: SlotSchedule | None = None
        self.traffic: Traffic | None = None
        self.user_class: type[User] | None = None
        self._user_tasks: UserTasks | None = None
        self._senders = 0
        self._senders_finished = 0

    def begin(self, data: dict[str, Any]) -> None:
        self.options = LoadOptions.from_message(data["options"])
        self.share = Share(data["share_index"], data["share_count"])
        self.offset_ns = clock_offset_ns(data["boot_id"], data["wall_minus_monotonic_ns"])
        self.traffic = traffic_for(self.options, self.share)
        if self.options.user_class:
            spec = UserClassSpec.model_validate_json(self.options.user_class)
            try:
                self.user_class = load_user_class(spec)
            except UserClassError as error:
                log.error("%s", error)
                self.stop(str(error))
                return
        self.schedule = SlotSchedule(
            data["start_ns"], self.options.rate_per_s, self.options.duration_s, self.share
        )
        log.info(
            "share %d of %d: %d slots, clock offset %d ns",
            self.share.index,
            self.share.count,
            self.schedule.total,
            self.offset_ns,
        )
        self.go.set()

    def stop(self, why: str) -> None:
        if not self.done.is_set():
            self.stopped_by = why
            log.info("stopping: %s", why)
        if self.schedule is not None:
            self.schedule.close()
        self.done.set()

    def now_ns(self) -> int:
        """The master's clock."""
        return time.monotonic_ns() - self.offset_ns

    def sender_started(self) -> int:
        self._senders += 1
        return self._senders

    def sender_finished(self) -> None:
        self._senders_finished += 1
        if self._senders_finished >= self._senders:
            self.done.set()

    def user_tasks(self, environment: Environment) -> UserTasks:
        """The user's class, instantiated per sender on first use (in the worker's greenlets)."""
        assert self.user_class is not None and self.options is not None
        if self._user_tasks is None:
            seed = share_seed(self.options, self.share)
            self._user_tasks = UserTasks(self.user_class, environment, self.options.addresses, seed)
        return self._user_tasks

    def claim_slot(self) -> Slot | None:
        return None if self.schedule is None else self.schedule.claim(self.now_ns())

    def wait_until_due(self, slot: Slot) -> None:
        # A loop, not one sleep: gevent's timers count from the loop's cached time, which may
        # be stale, so a sleep can end early; never send before the slot.
        while (delay_ns := slot.intended_ns - self.now_ns()) > 0:
            gevent.sleep(delay_ns / NS_PER_S)

    def claim(self, sender: int) -> tuple[Slot, Request] | None:
        if self.traffic is None or (slot := self.claim_slot()) is None:
            return None
        return slot, self.traffic.next_request(sender, slot.index)

    def record(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        self.records += 1

    def summary(self) -> dict[str, Any]:
        schedule = self.schedule
        return {
            "share_index": self.share.index,
            "slots_scheduled": schedule.total if schedule else 0,
            "slots_claimed": schedule.claimed if schedule else 0,
            "slots_sent": self.sent,
            "failures": self.failures,
            "records": self.records,
            "stopped_by": self.stopped_by,
        }


class Sender(User):
    """One sender: claims slots of this worker's share and sends them, one at a time."""

    wait_time = constant(0)
    load: ClassVar[WorkerLoad]

    def on_start(self) -> None:
        self.local_index = self.load.sender_started()

    @task
    def send_share(self) -> None:
        load = self.load
        load.go.wait()
        # Unique over all workers, so every sender's order ids are too.
        sender = self.local_index * load.share.count + load.share.index
        if load.user_class is not None:
            self._call_user_tasks(sender)
        assert load.options is not None and load.traffic is not None
        clients = [_client(address, load.options) for address in load.options.addresses]
        current = sender % len(clients)
        try:
            while (claimed := load.claim(sender)) is not None:
                slot, request = claimed
                load.wait_until_due(slot)
                outcome = self._send(clients[current], sender, slot, request)
                # Like a client with several endpoints: after an answer that says nothing
                # works here, the next request (never this one again) goes to the next one.
                if outcome in (Outcome.ERROR, Outcome.UNKNOWN):
                    current = (current + 1) % len(clients)
        finally:
            for client in clients:
                client.close()
            load.sender_finished()
        raise StopUser()

    def _call_user_tasks(self, sender: int) -> None:
        """The user's own class sends: one of its tasks per slot (harness/load/user_class.py)."""
        load = self.load
        assert load.options is not None
        tasks = load.user_tasks(self.environment)
        try:
            while (slot := load.claim_slot()) is not None:
                load.wait_until_due(slot)
                request_id = f"{load.options.id_prefix}-{slot.index}"
                name, call = tasks.call(sender, request_id)
                identity = (name, request_id)
                load.sent += 1
                start_ns = load.now_ns()
                try:
                    judged = call()
                except gevent.GreenletExit:
                    times = (start_ns, load.now_ns())
                    reason = "load stopped before the task returned"
                    row = _row(identity, slot.intended_ns, times, Outcome.UNKNOWN, None, reason, 0)
                    load.record(row)
                    raise
                times = (start_ns, load.now_ns())
                if judged.outcome not in (Outcome.ACKED, Outcome.REJECTED):
                    load.failures += 1
                outcome, status, reason = judged.outcome, judged.status, judged.reason
                load.record(
                    _row(identity, slot.intended_ns, times, outcome, status, reason, sender)
                )
        finally:
            load.sender_finished()
        raise StopUser()

    def _send(self, post: KeepAlivePost, sender: int, slot: Slot, request: Request) -> Outcome:
        load = self.load
        traffic = load.traffic
        assert traffic is not None
        load.sent += 1
        status: int | None
        identity = (request.kind, request.request_id)
        start_ns = load.now_ns()
        try:
            if request.headers is None:
                reply = post.post(request.path, request.body)
            else:
                reply = post.send(request.method, request.path, request.headers, request.body)
            end_ns = load.now_ns()
            status = reply.status
            meaning = traffic.reply(sender, request, status, reply.body)
        except ReplyError as error:
            end_ns, status = load.now_ns(), None
            meaning = traffic.reply(sender, request, None, str(error).encode())
        except gevent.GreenletExit:
            # Stopped with the request in flight: it may or may not have reached the server.
            reason = "load stopped before the reply came"
            times = (start_ns, load.now_ns())
            load.record(
                _row(identity, slot.intended_ns, times, Outcome.UNKNOWN, None, reason, sender)
            )
            raise
        if meaning.outcome not in (Outcome.ACKED, Outcome.REJECTED):
            load.failures += 1
        times = (start_ns, end_ns)
        load.record(
            _row(
                identity,
                slot.intended_ns,
                times,
                meaning.outcome,
                status,
                meaning.reason,
                sender,
                meaning.fills,
            )
        )
        return meaning.outcome


def _client(address: str, options: LoadOptions) -> KeepAlivePost:
    host, _, port = address.rpartition(":")
    return KeepAlivePost(host.strip("[]"), int(port), options.request_timeout_s)


def _row(
    request: tuple[str, str],
    intended_ns: int,
    times_ns: tuple[int, int],
    outcome: Outcome,
    status: int | None,
    reason: str,
    sender: int,
    fills: int = 0,
) -> tuple[Any, ...]:
    """One record in `wire.RECORD_FIELDS` order; `request` is (kind, id)."""
    kind, request_id = request
    start_ns, end_ns = times_ns
    return (kind, request_id, intended_ns, start_ns, end_ns, outcome.value, status, reason,
            sender, fills)  # fmt: skip


def unsent_rows(load: WorkerLoad) -> list[tuple[Any, ...]]:
    """Slots of this share due before now that no sender claimed (every one was waiting)."""
    if load.schedule is None or load.options is None:
        return []
    now_ns = load.now_ns()
    prefix = load.options.id_prefix
    return [
        _row(
            ("new", f"{prefix}-unsent-{slot.index}"),
            slot.intended_ns,
            (now_ns, now_ns),
            Outcome.ERROR,
            None,
            wire.UNSENT_REASON,
            0,
        )
        for slot in load.schedule.unclaimed(due_before_ns=now_ns)
    ]


def flush(load: WorkerLoad, environment: Environment) -> None:
    if load.rows and environment.runner is not None:
        rows, load.rows = load.rows, []
        environment.runner.send_message(RECORDS_MESSAGE, rows)


def flush_forever(load: WorkerLoad, environment: Environment) -> None:
    while True:
        gevent.sleep(FLUSH_INTERVAL_S)
        flush(load, environment)


def finish(load: WorkerLoad, environment: Environment) -> None:
    """Once the share is done or stopped: what was in flight, what was never sent, the counts."""
    load.done.wait()
    if load.schedule is not None:
        load.schedule.close()
    runner = environment.runner
    assert runner is not None
    gevent.joinall(list(runner.user_greenlets), timeout=STOP_JOIN_S)
    runner.user_greenlets.kill(block=True, timeout=STOP_JOIN_S)
    for row in unsent_rows(load):
        load.record(row)
    flush(load, environment)
    runner.send_message(FINISHED_MESSAGE, load.summary())
    log.info("finished: %s", load.summary())


def run(master: str) -> int:
    load = WorkerLoad()
    user_class = type("Sender", (Sender,), {"load": load})
    events = Events()  # type: ignore[no-untyped-call]  # locust leaves __init__ unannotated
    environment = Environment(user_classes=[user_class], events=events)
    host, _, port = master.rpartition(":")
    runner = environment.create_worker_runner(host, int(port))
    runner.register_message(BEGIN_MESSAGE, lambda msg, **_: load.begin(msg.data))
    runner.register_message(
        STOP_MESSAGE,
        lambda msg, **_: load.stop(str(msg.data.get("reason", "stopped by the master"))),
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, load.stop, f"signal {signal.Signals(signum).name}")
    # Everything imported so far (Locust, gevent, ZeroMQ: ~10^5 objects) lives as long as the
    # process: take it out of the collector's reach, or every full collection walks it all and
    # stalls every sender of this worker at once (a send-lateness spike).
    gc.freeze()
    flusher = gevent.spawn(flush_forever, load, environment)
    finisher = gevent.spawn(finish, load, environment)
    finisher.join()
    flusher.kill()
    runner.greenlet.join(timeout=QUIT_GRACE_S)  # the master's quit ends it
    return 0


def _address(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {text!r}")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.load.worker", description=__doc__)
    parser.add_argument("--master", type=_address, required=True, help="the master's host:port")
    options = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    sys.stdout = sys.stderr  # nothing of ours goes to stdout; logs only
    return run(options.master)


if __name__ == "__main__":
    sys.exit(main())
