"""The engine node's HTTP/JSON API (PROTOCOL.md, "Engine node" / "HTTP").

HTTP/1.1 with keep-alive, so a client (the gateway, the harness polling /status every few
milliseconds) reuses one connection instead of paying a TCP handshake per request. Nagle is off
on accepted sockets: headers and body go out as two small writes, and Nagle plus the client's
delayed ACK would otherwise add ~40 ms to every answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from targets.reference.engine.commands import (
    CancelOrder,
    CommandError,
    NewOrder,
    parse_client_request,
)
from targets.reference.engine.node import Acked, NotLeader, SubmitOutcome, Unknown
from targets.reference.lean_http import LeanRequestHandler

MAX_BODY_BYTES = 64 * 1024
DEFAULT_EXECUTIONS_LIMIT = 1000
MAX_EXECUTIONS_LIMIT = 10000
# One encoder for every answer (json.dumps with options builds one per call).
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


class EngineApi(Protocol):
    """What the HTTP layer needs from the node (a fake would do in tests)."""

    def status(self) -> dict[str, object]: ...
    def submit(self, command: NewOrder | CancelOrder, timeout_s: float) -> SubmitOutcome: ...
    def submit_many(
        self, commands: Sequence[NewOrder | CancelOrder], timeout_s: float
    ) -> list[SubmitOutcome]: ...
    def order_record(self, client_order_id: str) -> dict[str, object] | None: ...
    def order_records(self, from_arrival: int, limit: int) -> list[dict[str, object]]: ...
    def execution_records(self, from_seq: int, limit: int) -> list[dict[str, object]]: ...


class EngineHttpServer(ThreadingHTTPServer):
    daemon_threads = True  # a keep-alive connection must not hold up shutdown
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: EngineApi, commit_timeout_s: float) -> None:
        super().__init__(address, EngineRequestHandler)
        self.api = api
        self.commit_timeout_s = commit_timeout_s


class EngineRequestHandler(LeanRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: EngineHttpServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/status":
            self._reply(HTTPStatus.OK, self.server.api.status())
        elif url.path == "/executions":
            self._get_executions(parse_qs(url.query))
        elif url.path == "/orders":
            self._get_orders(parse_qs(url.query))
        elif url.path.startswith("/orders/") and len(url.path) > len("/orders/"):
            client_order_id = unquote(url.path[len("/orders/") :])
            order = self.server.api.order_record(client_order_id)
            if order is None:
                self._reply(HTTPStatus.NOT_FOUND, {"error": "unknown order"})
            else:
                self._reply(HTTPStatus.OK, order)
        else:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route GET {url.path}"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self._read_json_body()
        if body is None:
            return
        if url.path != "/commands":
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route POST {url.path}"})
            return
        if isinstance(body, list):
            self._submit_list(body)
            return
        command = _parse_command(body)
        if isinstance(command, str):
            self._reply(HTTPStatus.BAD_REQUEST, {"outcome": "bad_request", "reason": command})
            return
        self._reply(*_outcome_answer(self.server.api.submit(command, self.server.commit_timeout_s)))

    def _submit_list(self, bodies: list[object]) -> None:
        """A list of commands (the gateway's batch): proposed together, one outcome each, in
        order. When every one is not_leader (nothing of it was proposed) the list is answered
        421 as a whole, like a lone command."""
        parsed = [_parse_command(body) for body in bodies]
        commands = [item for item in parsed if not isinstance(item, str)]
        outcomes = iter(self.server.api.submit_many(commands, self.server.commit_timeout_s))
        answers = [
            {"outcome": "bad_request", "reason": item}
            if isinstance(item, str)
            else _outcome_answer(next(outcomes))[1]
            for item in parsed
        ]
        if answers and all(answer["outcome"] == "not_leader" for answer in answers):
            self._reply(HTTPStatus.MISDIRECTED_REQUEST, answers[0])
            return
        self._reply(HTTPStatus.OK, {"outcomes": answers})

    def _get_executions(self, query: dict[str, list[str]]) -> None:
        try:
            from_seq = int(query.get("from_seq", ["1"])[0])
            limit = int(query.get("limit", [str(DEFAULT_EXECUTIONS_LIMIT)])[0])
        except ValueError:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "from_seq and limit are integers"})
            return
        limit = max(0, min(limit, MAX_EXECUTIONS_LIMIT))
        self._reply(
            HTTPStatus.OK, {"executions": self.server.api.execution_records(from_seq, limit)}
        )

    def _get_orders(self, query: dict[str, list[str]]) -> None:
        try:
            from_arrival = int(query.get("from_arrival", ["1"])[0])
            limit = int(query.get("limit", [str(DEFAULT_EXECUTIONS_LIMIT)])[0])
        except ValueError:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": "from_arrival and limit are integers"})
            return
        limit = max(0, min(limit, MAX_EXECUTIONS_LIMIT))
        self._reply(HTTPStatus.OK, {"orders": self.server.api.order_records(from_arrival, limit)})

    def _read_json_body(self) -> object | None:
        """The parsed body, or None after answering 400/413 (and closing the connection,
        since an unread body would be taken for the next request)."""
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._reply(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
            return None
        raw = self.rfile.read(length)
        try:
            body: object = json.loads(raw)
        except ValueError:
            self._reply(
                HTTPStatus.BAD_REQUEST, {"outcome": "bad_request", "reason": "body is not JSON"}
            )
            return None
        return body

    def _reply(self, status: HTTPStatus, body: object) -> None:
        self.send_whole(status, "application/json", _COMPACT_JSON.encode(body).encode())

    def log_message(self, format: str, *args: object) -> None:
        # One line per request would swamp stderr, where the harness parses ROLE lines.
        pass


def _parse_command(body: object) -> NewOrder | CancelOrder | str:
    """A client command, or why it is not one."""
    try:
        command = parse_client_request(body)
    except CommandError as error:
        return str(error)
    if not isinstance(command, NewOrder | CancelOrder):
        return "type"
    return command


def _outcome_answer(outcome: SubmitOutcome) -> tuple[HTTPStatus, dict[str, object]]:
    """The HTTP status a lone command is answered with, and its outcome object (also one
    entry of a list's answer)."""
    match outcome:
        case Acked(result=result):
            return HTTPStatus.OK, {"outcome": "acked", "result": result}
        case NotLeader(leader=leader):
            return HTTPStatus.MISDIRECTED_REQUEST, {"outcome": "not_leader", "leader": leader}
        case Unknown(reason=reason):
            return HTTPStatus.GATEWAY_TIMEOUT, {"outcome": "unknown", "reason": reason}
