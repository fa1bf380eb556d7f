"""A small real key-value server for the load and read-back tests: POST /put {"key", "value"},
POST /get {"key"} -> {"count": n}, POST /range {"prefix"} -> {"keys": [...]}.

    python kv_server.py HOST PORT [--lose-every N] [--double-every N]

`--lose-every N` acknowledges every N-th put without storing it (the bug the read-back must
catch); `--double-every N` stores every N-th put twice (as a retried append would).
"""

from __future__ import annotations

import argparse
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STORE: Counter[str] = Counter()
LOCK = threading.Lock()
OPTIONS = argparse.Namespace()
PUTS = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/put" and isinstance(body.get("key"), str):
            with LOCK:
                PUTS[0] += 1
                n = PUTS[0]
                if not (OPTIONS.lose_every and n % OPTIONS.lose_every == 0):
                    STORE[body["key"]] += (
                        2 if OPTIONS.double_every and n % OPTIONS.double_every == 0 else 1
                    )
            self._answer(200, {"ok": True, "revision": n})
        elif self.path == "/get":
            with LOCK:
                count = STORE.get(str(body.get("key")), 0)
            self._answer(200, {"count": count} if count else {})
        elif self.path == "/range":
            prefix = str(body.get("prefix", ""))
            with LOCK:
                keys = [k for k, n in STORE.items() if k.startswith(prefix) for _ in range(n)]
            self._answer(200, {"keys": keys})
        else:
            self._answer(400, {"error": "bad request"})

    def _answer(self, status: int, document: dict[str, object]) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--lose-every", type=int, default=0)
    parser.add_argument("--double-every", type=int, default=0)
    parser.parse_args(namespace=OPTIONS)
    server = ThreadingHTTPServer((OPTIONS.host, OPTIONS.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
