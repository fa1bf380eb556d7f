"""`python -m targets.reference.gateway`: the order gateway of the reference system.

Logs to stderr: `READY gateway http=<host:port>` once listening, and one
`LEADER gateway leader=<id|none> previous=<id|none> cause=<...> mono_ns=<...> wall_ns=<...>`
line per leader change it observes. Exits 0 on SIGTERM or SIGINT, 2 on bad flags.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from targets.reference import gc_log, heap
from targets.reference.gateway.engine_client import (
    EngineClient,
    EngineClientSettings,
    EngineNode,
    log_to_stderr,
    parse_engine_nodes,
)
from targets.reference.gateway.http_api import GatewayHttpServer, serve_until_terminated
from targets.reference.gateway.risk import PriceError, RiskLimits, parse_price_ticks
from targets.reference.gateway.service import GatewayService


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not host:port")
    return host, int(port)


def engine_nodes(text: str) -> tuple[EngineNode, ...]:
    try:
        return parse_engine_nodes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def notional_ticks(text: str) -> int:
    try:
        return parse_price_ticks(text)
    except PriceError as error:
        raise argparse.ArgumentTypeError(f"max notional: {error}") from None


def percentage(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m targets.reference.gateway", description=__doc__.splitlines()[0]
    )
    add = parser.add_argument
    add("--http", type=host_port, required=True, help="host:port to serve on (port 0: any)")
    add("--engines", type=engine_nodes, required=True, help="n1=host:port,n2=host:port,...")
    add("--max-quantity", type=positive_int, default=10000)
    add("--max-notional", type=notional_ticks, default="10000000.00", help="currency units")
    add("--price-band-pct", type=percentage, default="10", help="allowed %% from reference")
    add("--connect-timeout-ms", type=positive_int, default=250, help="engine connect timeout")
    add("--read-timeout-ms", type=positive_int, default=3000, help="engine answer timeout")
    add("--retry-budget-ms", type=positive_int, default=2000, help="time to find a leader")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    gc_log.install("gateway")
    heap.freeze_survivors()  # no full collections of the history (heap.py)
    settings = EngineClientSettings(
        connect_timeout_s=options.connect_timeout_ms / 1000,
        read_timeout_s=options.read_timeout_ms / 1000,
        retry_budget_s=options.retry_budget_ms / 1000,
    )
    engine = EngineClient(options.engines, settings)
    limits = RiskLimits(options.max_quantity, options.max_notional, options.price_band_pct)
    try:
        server = GatewayHttpServer(options.http, GatewayService(engine, limits))
    except OSError as error:
        print(f"gateway: cannot listen on {options.http}: {error}", file=sys.stderr)
        return 3
    try:
        log_to_stderr(f"READY gateway http={server.address_text}")
        engine.discover_leader()  # only to log the first leader early; requests rediscover
        serve_until_terminated(server)
    finally:
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
