"""The sandbox's HTTP/1.1 server (standard library only), with latency, faults and limits."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kprov.sandbox import hostile_wire
from kprov.sandbox.faults import (
    Fault,
    FaultInjector,
    FaultRates,
    KnewtonLimits,
    RequestRateLimiter,
)
from kprov.sandbox.hostile import Hostility, Reply
from kprov.sandbox.store import Principal, SandboxError, SandboxStore

API_PREFIX = "/v0"
_ID = r"([A-Za-z0-9-]+)"
# (method, path pattern, endpoint label, handler name); labels key the request counters.
ROUTES: list[tuple[str, re.Pattern[str], str, str]] = [
    ("POST", re.compile(r"^/accounts$"), "POST /accounts", "create_account"),
    ("GET", re.compile(r"^/accounts/current$"), "GET /accounts/current", "current_account"),
    ("GET", re.compile(rf"^/accounts/{_ID}$"), "GET /accounts/{id}", "get_account"),
    ("DELETE", re.compile(rf"^/accounts/{_ID}$"), "DELETE /accounts/{id}", "delete_account"),
    ("POST", re.compile(r"^/batch$"), "POST /batch", "batch"),
    ("POST", re.compile(r"^/learning-instances$"), "POST /learning-instances", "create_instance"),
    (
        "GET",
        re.compile(rf"^/learning-instances/{_ID}$"),
        "GET /learning-instances/{id}",
        "get_instance",
    ),
    (
        "DELETE",
        re.compile(rf"^/learning-instances/{_ID}$"),
        "DELETE /learning-instances/{id}",
        "delete_instance",
    ),
    ("POST", re.compile(r"^/registrations$"), "POST /registrations", "create_registration"),
    ("GET", re.compile(rf"^/registrations/{_ID}$"), "GET /registrations/{id}", "get_registration"),
    (
        "DELETE",
        re.compile(rf"^/registrations/{_ID}$"),
        "DELETE /registrations/{id}",
        "delete_registration",
    ),
]


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SandboxHTTPServer
    _delivery: str | None = None  # how a hostile mode wants this request's answer sent

    def setup(self) -> None:
        super().setup()
        # Headers and body are separate writes: without NODELAY, Nagle + delayed ACK add 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # ---------------------------------------------------------------- plumbing

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        raw = isinstance(body, hostile_wire.RawJson)  # JSON no json.dumps writes (a name twice)
        payload = b"" if body is None else body.payload if raw else json.dumps(body).encode()
        if body is not None:
            headers = {"Content-Type": "application/json", **(headers or {})}
        self._send(status, payload, headers or {})

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        """Answer at once, or as a hostile delivery decided for this request says."""
        delivery, self._delivery = getattr(self, "_delivery", None), None
        if delivery == "stall":
            self.server.stopping.wait()  # applied, never answered (until the server stops)
            self._drop()
            return
        if delivery in ("trickle", "trickle-body"):
            self._trickle(status, payload, headers, body_only=delivery == "trickle-body")
            return
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _trickle(
        self, status: int, payload: bytes, headers: dict[str, str], *, body_only: bool
    ) -> None:
        """One byte every trickle interval (headers too, unless *body_only*)."""
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        lines += [f"{k}: {v}" for k, v in {**headers, "Content-Length": len(payload)}.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        slow = payload if body_only else head + payload
        if body_only:
            self.wfile.write(head)
        interval = self.server.hostile.trickle_interval
        for index in range(len(slow)):
            if self.server.stopping.wait(interval):
                break
            try:
                self.wfile.write(slow[index : index + 1])
            except OSError:
                break  # the client gave up: as it should
        self._drop()

    def _header_map(self) -> dict[str, str]:
        return {key.title(): value for key, value in self.headers.items()}

    def _hostile_reply(self, reply: Reply) -> None:
        self._send(reply.status, reply.payload, reply.headers)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(2)

    def _handle(self, method: str) -> None:
        raw = self._read_body()
        url = urlsplit(self.path)
        if url.path.startswith("/_sandbox/"):
            self._inspect(url.path)
            return
        store = self.server.store
        if not url.path.startswith(API_PREFIX + "/"):
            self._answer(404, {"message": "not found", "error_id": "no-route"})
            return
        path = url.path[len(API_PREFIX) :]
        if self.server.latency:
            time.sleep(self.server.latency)
        limiter = self.server.limiter
        wait = limiter.admit() if limiter is not None else None
        if limiter is not None and wait is not None:
            with store.lock:
                store.requests["429"] += 1
            self._answer(429, {"message": "rate limit exceeded"}, limiter.refusal_headers(wait))
            return
        if path == "/oauth/token" and method == "POST":
            limits = self.server.knewton_limits
            if limits is not None and not limits.admit_token_request():
                self._quota_exceeded("ip-limited")
                return
            self._token(raw)
            return
        for route_method, pattern, label, handler in ROUTES:
            match = pattern.match(path)
            if route_method == method and match:
                # "current" is matched first; it never reaches the {id} routes.
                self._route(label, handler, match.groups(), raw)
                return
        self._answer(
            405 if any(p.match(path) for _, p, _, _ in ROUTES) else 404,
            {"message": f"no route for {method} {path}", "error_id": "no-route"},
        )

    def _quota_exceeded(self, scope: str) -> None:
        store = self.server.store
        with store.lock:
            store.requests["429"] += 1
        self._answer(429, {"message": "rate limit exceeded"}, {"X-Knewton-Rate-Exceeded": scope})

    def _token(self, raw: bytes) -> None:
        store = self.server.store
        with store.lock:
            store.requests["POST /oauth/token"] += 1
        basic = None
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                basic = base64.b64decode(header[6:]).decode()
            except (ValueError, UnicodeDecodeError):
                basic = None
        if not (self.headers.get("Content-Type") or "").startswith(
            "application/x-www-form-urlencoded"
        ):
            self._answer(
                400,
                {"message": "token requests must be form-encoded", "error_id": "bad-content-type"},
            )
            return
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        hostile = self.server.hostile
        if hostile:
            reply = hostile.before_token(self._header_map(), raw)
            if reply is not None:
                self._hostile_reply(reply)
                return
            self._delivery = hostile.delivery(token=True)
        try:
            answer = store.issue_token(basic, form)
        except SandboxError as exc:
            self._answer(exc.status, exc.body())
            return
        if hostile:
            with store.lock:
                owner = store.tokens[answer["access_token"]][0]
            answer = hostile.distort_token(answer, owner)
        self._answer(200, answer)

    def _route(self, label: str, handler: str, args: tuple[str, ...], raw: bytes) -> None:
        store = self.server.store
        with store.lock:
            store.requests[label] += 1
            if self.headers.get("X-Knewton-Test", "").lower() == "true":
                store.requests[f"{label} marked X-Knewton-Test"] += 1

        fault = self.server.faults.draw()
        if fault is Fault.UNAVAILABLE_BEFORE:
            self._answer(503, {"message": "service unavailable", "error_id": "injected-503"})
            return
        if fault is Fault.RATE_LIMITED:
            self._answer(
                429,
                {"message": "rate limit exceeded"},
                {"Retry-After": "1", "X-Knewton-Rate-Exceeded": "token-limited"},
            )
            return
        if fault is Fault.DROP_BEFORE:
            self._drop()
            return
        hostile = self.server.hostile
        if hostile:
            reply = hostile.before_api(label, self.path, self._header_map(), raw)
            if reply is not None:
                self._hostile_reply(reply)
                return
        try:
            auth = self.headers.get("Authorization", "")
            who = store.principal(auth[7:] if auth.startswith("Bearer ") else None)
            limits = self.server.knewton_limits
            if limits is not None and not limits.admit(who.account_id, label):
                self._quota_exceeded("token-limited")
                return
            body = json.loads(raw) if raw else None
            if hostile and hostile_wire.replays(hostile, label.split(" ")[0]):
                with contextlib.suppress(SandboxError):  # delivered once before: applied
                    self._dispatch(handler, who, args, body)
            status, answer = self._dispatch(handler, who, args, body)
        except SandboxError as exc:
            exc = store.reword(exc)
            with store.lock:
                store.requests[f"HTTP {exc.status}"] += 1  # e.g. 401s seen: tokens that aged
            self._answer(exc.status, exc.body() if exc.message else None)
            return
        except json.JSONDecodeError:
            self._answer(400, {"message": "body is not JSON", "error_id": "bad-json"})
            return
        if fault is Fault.ERROR_AFTER:
            self._answer(500, {"message": "internal error", "error_id": "injected-500"})
            return
        if fault is Fault.DROP_AFTER:
            self._drop()
            return
        if hostile:
            answer = hostile.distort(label, answer, store.admin_id, self._header_map())
            self._delivery = hostile.delivery(token=False)
        self._answer(status, answer)

    def _dispatch(
        self, handler: str, who: Principal, args: tuple[str, ...], body: Any
    ) -> tuple[int, Any]:
        store = self.server.store
        if handler == "current_account":
            with store.lock:
                return 200, store.account_json(who.account_id)
        if handler in ("delete_account", "delete_instance", "delete_registration"):
            getattr(store, handler)(who, *args)
            return 204, None
        if handler in ("create_account", "batch", "create_instance", "create_registration"):
            return 200, getattr(store, handler)(who, body)
        return 200, getattr(store, handler)(who, *args)

    def _inspect(self, path: str) -> None:
        store = self.server.store
        if path == "/_sandbox/state":
            self._answer(200, store.snapshot())
        elif path == "/_sandbox/stats":
            with store.lock:
                self._answer(
                    200, {"requests": dict(store.requests), "max_batch_seen": store.max_batch_seen}
                )
        else:
            self._answer(404, {"message": "not found"})


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        store: SandboxStore,
        *,
        latency_ms: float = 0.0,
        faults: FaultInjector | None = None,
        rate_limit: float | None = None,
        burst: float | None = None,
        retry_after: str = "ceil",
        knewton_limits: bool = False,
        verbose: bool = False,
        hostile: Hostility | None = None,
    ) -> None:
        super().__init__(address, SandboxHandler)
        self.store = store
        self.hostile = hostile or Hostility()
        self.hostile.install(store)
        self.stopping = threading.Event()  # set by stop(): stalled and trickling answers end
        self.latency = latency_ms / 1000.0
        self.faults = faults or FaultInjector(FaultRates())
        self.limiter = (
            RequestRateLimiter(rate_limit, burst=burst, retry_after=retry_after)
            if rate_limit
            else None
        )
        self.knewton_limits = KnewtonLimits() if knewton_limits else None
        self.verbose = verbose
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, timed out) is normal here, not worth a traceback."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{API_PREFIX}"

    def start_background(self) -> SandboxHTTPServer:
        """Serve from a daemon thread (tests, the in-process sandbox profile)."""
        # A short poll: shutdown() waits for the loop's next look at its flag (0.5 s by
        # default, which added up to ~40 s of a test suite that starts 100 sandboxes).
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
            name="kprov-sandbox",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.close()
