"""A chat-webhook receiver on loopback for tests: records every POST, answers as scripted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self) -> None:
        self.documents: list[Any] = []
        self.paths: list[str] = []
        self.statuses: list[int] = []  # answers to give, in order (then 200)
        self.stall = 0.0  # seconds to wait before answering
        self.location = ""  # with a 3xx: where it points
        self.url = ""


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's name for it
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            state.paths.append(self.path)
            try:
                state.documents.append(json.loads(body))
            except ValueError:
                state.documents.append(body)
            if state.stall:
                time.sleep(state.stall)
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.handle_error = lambda *_args: None  # type: ignore[method-assign]  # a client gone: fine
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/secret-path"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
