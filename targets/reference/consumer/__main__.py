"""`python -m targets.reference.consumer`: the downstream consumer of the executions topic.

Logs `READY consumer http=<host:port>` to stderr once listening, and each new Kafka error once.
Exits 0 on SIGTERM or SIGINT, 2 on bad flags, 3 if the HTTP port cannot be bound.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from targets.reference.consumer.feed import ExecutionFeed, FeedSettings
from targets.reference.consumer.http_api import ConsumerHttpServer, serve_until_terminated


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not host:port")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m targets.reference.consumer", description=__doc__.splitlines()[0]
    )
    add = parser.add_argument
    add("--http", type=host_port, required=True, help="host:port to serve on (port 0: any)")
    add("--kafka", required=True, help="bootstrap host:port")
    add("--topic", default="executions")
    add("--group", default="hftchaos-consumer")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    feed = ExecutionFeed(FeedSettings(options.kafka, options.topic, options.group))
    try:
        server = ConsumerHttpServer(options.http, feed.status)
    except OSError as error:
        print(f"consumer: cannot listen on {options.http}: {error}", file=sys.stderr)
        feed.stop()
        return 3
    feed.start()
    try:
        print(f"READY consumer http={server.address_text}", file=sys.stderr, flush=True)
        serve_until_terminated(server)
    finally:
        feed.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
