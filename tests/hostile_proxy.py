"""A seeded hostile proxy for tests: it stands between kprov and a server, and rewrites answers.

Written apart from ``kprov.sandbox`` on purpose (it shares no code with kprov): a hostile
mode built inside the sandbox shares the sandbox's reading of the protocol, and so the
client's; this proxy only knows HTTP. Each attack is a plain function of an ``Exchange``:

- ``before(exchange)`` may answer the request itself (``exchange.answer(...)``): nothing is
  forwarded then (a 429 storm, a 404 for a mistyped path);
- ``after(exchange)`` may rewrite what the server answered: status, headers (a list, so a
  header can be repeated), body bytes (so JSON can name a field twice, or not be UTF-8).

``exchange.request_headers`` and ``exchange.request_body`` hold what kprov sent, so an attack
can echo the Authorization header or the form in any encoding. ``proxy.seen`` lists
(method, path, status) of every exchange, for assertions on what was (not) sent.
"""

from __future__ import annotations

import http.client
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer"}


@dataclass
class Exchange:
    method: str
    path: str  # with its query
    request_headers: dict[str, str]
    request_body: bytes
    rng: random.Random
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    answered: bool = False

    def answer(self, status: int, body: bytes | str = b"", **headers: str) -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = [(k.replace("_", "-"), v) for k, v in headers.items()]
        self.answered = True

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


Attack = Callable[[Exchange], None]


@dataclass
class HostileProxy:
    upstream: str  # e.g. http://127.0.0.1:PORT (no path)
    before: Attack | None = None
    after: Attack | None = None
    seed: int = 7
    seen: list[tuple[str, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # one write per answer: headers and body in separate packets
            # meet the client's delayed ACK (40 ms a request on loopback)

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self.lock:
            rng = random.Random(self.rng.random())
        exchange = Exchange(handler.command, handler.path, dict(handler.headers.items()), body, rng)
        if self.before is not None:
            self.before(exchange)
        if not exchange.answered:
            self._forward(exchange)
            if self.after is not None:
                self.after(exchange)
        with self.lock:
            self.seen.append((exchange.method, exchange.path, exchange.status))
        handler.send_response_only(exchange.status)
        for name, value in exchange.headers:
            if name.lower() not in HOP_BY_HOP:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(exchange.body)))
        handler.end_headers()
        handler.wfile.write(exchange.body)
        handler.wfile.flush()

    def _forward(self, exchange: Exchange) -> None:
        target = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(str(target.hostname), target.port, timeout=10)
        headers = {k: v for k, v in exchange.request_headers.items() if k.lower() != "host"}
        try:
            connection.request(exchange.method, exchange.path, exchange.request_body, headers)
            answer = connection.getresponse()
            exchange.status = answer.status
            exchange.headers = list(answer.getheaders())
            exchange.body = answer.read()
        finally:
            connection.close()
