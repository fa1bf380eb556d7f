"""The load master: a Locust master process that the harness's driver reads.

    python -m harness.load.master --gateway 127.0.0.1:8080 --rate 2000 --duration-s 30 \
        --workers 2 --bind 127.0.0.1:5557

It waits for `--workers` Locust workers (`worker.py`; the driver starts them here, see driver.py;
more can connect from other machines), has Locust spawn the users across them, fixes slot 0
a little ahead and tells each worker its share of the schedule. Then it only forwards: each
worker's `hftchaos_records` message becomes one line on stdout (`wire.py`), and when every
worker has sent `hftchaos_finished` (or the deadline passed, or a signal came) it writes the
summary and quits the workers. Logs go to stderr; a stray print cannot corrupt the stream.
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
from dataclasses import asdict, dataclass, fields
from typing import Any, TextIO

import gevent  # type: ignore[import-untyped]
from gevent.event import Event  # type: ignore[import-untyped]
from locust.env import Environment
from locust.event import Events
from locust.runners import MasterRunner

from harness.load import wire
from harness.load.schedule import NS_PER_S
from harness.load.worker import (
    BEGIN_MESSAGE,
    FINISHED_MESSAGE,
    RECORDS_MESSAGE,
    STOP_MESSAGE,
    LoadOptions,
    Sender,
    WorkerLoad,
    boot_id,
    wall_minus_monotonic_ns,
)

log = logging.getLogger("harness.load.master")

START_LEAD_NS = 50_000_000  # slot 0 lies this far ahead of the begin messages
WORKERS_TIMEOUT_S = 60.0  # for the workers to connect (imports take ~1 s each on 2 cores)
FINISH_GRACE_S = 3.0  # after a stop, for the workers to send what they have
SUMMED = ("slots_scheduled", "slots_claimed", "slots_sent", "failures", "records")


class Forwarder:
    """Writes what the workers send to the harness's pipe and counts their summaries."""

    def __init__(self, out: TextIO, workers: int) -> None:
        self._out = out
        self._broken = False
        self.workers = workers
        self.finished: dict[str, dict[str, Any]] = {}
        self.all_finished = Event()
        self.records = 0

    def write(self, text: str) -> None:
        if self._broken:
            return
        try:
            self._out.write(text)
            self._out.flush()
        except OSError as error:  # the reader is gone; keep running, stop writing
            self._broken = True
            log.error("cannot write records any more: %s", error)

    def on_records(self, msg: Any, **_: Any) -> None:
        self.records += len(msg.data)
        self.write(wire.records_line(msg.data))

    def on_finished(self, msg: Any, **_: Any) -> None:
        self.finished[msg.node_id] = msg.data
        if len(self.finished) >= self.workers:
            self.all_finished.set()


def summary(forwarder: Forwarder, start_ns: int | None, stopped_by: str) -> dict[str, Any]:
    parts = list(forwarder.finished.values())
    totals = {key: sum(int(part.get(key, 0)) for part in parts) for key in SUMMED}
    reasons = [str(part.get("stopped_by")) for part in parts if part.get("stopped_by")]
    if stopped_by == "completed":
        stopped_by = next((reason for reason in reasons if reason != "completed"), stopped_by)
    return {
        **totals,
        "requests": totals["slots_sent"],
        "forwarded": forwarder.records,
        "workers": forwarder.workers,
        "workers_finished": len(parts),
        "start_ns": start_ns,
        "end_ns": time.monotonic_ns(),
        "stopped_by": stopped_by,
    }


def wait_for_workers(runner: MasterRunner, workers: int, stopping: Event) -> bool:
    deadline = time.monotonic() + WORKERS_TIMEOUT_S
    while len(runner.clients.ready) < workers:
        if stopping.is_set() or time.monotonic() > deadline:
            return False
        gevent.sleep(0.02)
    return True


def begin(runner: MasterRunner, options: LoadOptions, not_before_ns: int = 0) -> int:
    """Spawns the users on the workers, then gives each its share; slot 0's instant, which
    is never before `not_before_ns` (a load started early, while a warm-up still runs, so
    that its own start-up is not a gap between the two)."""
    runner.start(options.users, spawn_rate=float(options.users))
    start_ns = max(time.monotonic_ns() + START_LEAD_NS, not_before_ns)
    shares = sorted(runner.clients.keys())
    for index, client_id in enumerate(shares):
        data = {
            "options": asdict(options),
            "share_index": index,
            "share_count": len(shares),
            "start_ns": start_ns,
            "boot_id": boot_id(),
            "wall_minus_monotonic_ns": wall_minus_monotonic_ns(),
        }
        runner.send_message(BEGIN_MESSAGE, data, client_id=client_id)
    return start_ns


def run(options: LoadOptions, workers: int, bind: str, out: TextIO, not_before_ns: int = 0) -> int:
    forwarder = Forwarder(out, workers)
    events = Events()  # type: ignore[no-untyped-call]  # locust leaves __init__ unannotated
    user_class = type("Sender", (Sender,), {"load": WorkerLoad()})  # the workers' class name
    environment = Environment(user_classes=[user_class], events=events)
    host, _, port = bind.rpartition(":")
    runner = environment.create_master_runner(host, int(port))
    runner.register_message(RECORDS_MESSAGE, forwarder.on_records)
    runner.register_message(FINISHED_MESSAGE, forwarder.on_finished)
    stopping, reason = Event(), ["completed"]

    def stop(why: str) -> None:
        if not stopping.is_set():
            reason[0] = why
            log.info("stopping: %s", why)
            stopping.set()
            runner.send_message(STOP_MESSAGE, {"reason": why})

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop, f"signal {signal.Signals(signum).name}")
    gc.freeze()  # as in the worker: the imports' objects are not garbage; don't walk them
    start_ns: int | None = None
    try:
        if not wait_for_workers(runner, workers, stopping):
            stop(f"only {len(runner.clients.ready)} of {workers} workers connected")
            return 3
        start_ns = begin(runner, options, not_before_ns)
        forwarder.write(wire.notice_line(wire.STARTED_KIND, {"start_ns": start_ns}))
        log.info("%d workers, %d users, %g/s", workers, options.users, options.rate_per_s)
        lead_s = (start_ns - time.monotonic_ns()) / NS_PER_S
        hard_stop_s = max(lead_s, 0.0) + options.duration_s + options.request_timeout_s
        if not gevent.wait([forwarder.all_finished, stopping], timeout=hard_stop_s, count=1):
            stop("deadline (duration + request timeout)")
        if not forwarder.all_finished.is_set():
            forwarder.all_finished.wait(timeout=FINISH_GRACE_S)
    finally:
        forwarder.write(
            wire.notice_line(wire.SUMMARY_KIND, summary(forwarder, start_ns, reason[0]))
        )
        runner.quit()
    return 0


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


@dataclass(frozen=True)
class MasterOptions:
    """What the master alone needs, beside the options it hands every worker."""

    load: LoadOptions
    workers: int
    bind: str
    not_before_ns: int  # CLOCK_MONOTONIC; 0: as soon as the workers are ready


def parse_options(argv: Sequence[str] | None = None) -> MasterOptions:
    parser = argparse.ArgumentParser(prog="python -m harness.load.master", description=__doc__)
    parser.add_argument("--gateway", type=_address, required=True, help="host:port")
    parser.add_argument(
        "--rate", dest="rate_per_s", type=_positive(float), required=True, help="requests per s"
    )
    parser.add_argument("--duration-s", type=_positive(float), required=True)
    parser.add_argument("--users", type=_positive(int), default=16, help="over all workers")
    parser.add_argument("--symbols", default="ACME,GLOBEX", help="comma-separated")
    parser.add_argument("--accounts", type=_positive(int), default=4)
    parser.add_argument("--mid-price", type=_positive(float), default=100.0)
    parser.add_argument("--cancel-ratio", type=_ratio, default=0.1)
    parser.add_argument("--request-timeout-s", type=_positive(float), default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--id-prefix", default="load")
    parser.add_argument("--targets", default="", help="host:port,... (default: the gateway)")
    parser.add_argument("--http-profile", default="", help="the scenario's load.http as JSON")
    parser.add_argument("--user-class", default="", help="load.user_class as JSON")
    parser.add_argument("--workers", type=_positive(int), default=1, help="to wait for")
    parser.add_argument("--bind", type=_address, default="127.0.0.1:5557", help="host:port")
    parser.add_argument(
        "--not-before-ns", type=int, default=0, help="earliest slot 0, CLOCK_MONOTONIC ns"
    )
    args = parser.parse_args(argv)
    symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    if not symbols:
        parser.error("--symbols needs at least one symbol")
    if args.users < args.workers:
        parser.error(f"--users ({args.users}) must be at least --workers ({args.workers})")
    chosen = {field.name: getattr(args, field.name) for field in fields(LoadOptions)}
    targets = tuple(_address(t.strip()) for t in args.targets.split(",") if t.strip())
    options = LoadOptions(**{**chosen, "symbols": symbols, "targets": targets})
    return MasterOptions(options, args.workers, args.bind, args.not_before_ns)


def main(argv: Sequence[str] | None = None) -> int:
    chosen = parse_options(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    records_out = sys.stdout
    sys.stdout = sys.stderr  # only the record stream may reach the parent's pipe
    return run(chosen.load, chosen.workers, chosen.bind, records_out, chosen.not_before_ns)


if __name__ == "__main__":
    sys.exit(main())
