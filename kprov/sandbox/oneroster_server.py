"""A OneRoster 1.1 and 1.2 REST server over a bundle, for trying and testing pulls (stdlib only).

It serves ``/ims/oneroster/v1p1/{collection}`` and ``/ims/oneroster/rostering/v1p2/{collection}``
for orgs, academicSessions, classes, users and enrollments, the way the IMS REST bindings
describe them: the records under the collection's name (``{"users": [...]}``), ``limit`` and
``offset`` paging with its own page-size cap (a request for 100 gets at most ``page_cap``, as
real servers cap), ``X-Total-Count`` and ``Link`` headers, ``sort``/``orderBy`` and a
``filter`` of one predicate (``dateLastModified>'2026-01-01T00:00:00Z'``). Requests are signed
with OAuth 1.0a (HMAC-SHA256) or carry an OAuth 2 bearer token from ``POST /oauth/token``
(client credentials); ``auth`` chooses which it accepts. It shares no code with kprov's client
(see ``oneroster_auth`` and ``oneroster_data``); ``oneroster_hostile`` makes it difficult.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from kprov.sandbox.oneroster_auth import OAuth1Checker, TokenIssuer
from kprov.sandbox.oneroster_data import COLLECTIONS, V11, V12, RosterData, parse_moment
from kprov.sandbox.oneroster_hostile import OneRosterHostility

BASES = {"/ims/oneroster/v1p1": V11, "/ims/oneroster/rostering/v1p2": V12}
TOKEN_PATH = "/oauth/token"
AUTH_SCHEMES = ("oauth1", "oauth2", "both")
_PREDICATE = re.compile(r"^\s*(\w+)\s*(>=|<=|!=|=|>|<)\s*'([^']*)'\s*$")


def _imsx(description: str, minor: str) -> dict[str, Any]:
    """An error body as the bindings write one (imsx_StatusInfo)."""
    return {
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": description,
        "imsx_CodeMinor": {"imsx_codeMinorField": [
            {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": minor}
        ]},
    }  # fmt: skip


class OneRosterHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OneRosterSandbox

    def setup(self) -> None:
        super().setup()
        # headers and body are separate writes: without NODELAY, Nagle + delayed ACK add 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _refuse(self, status: int, why: str, minor: str) -> None:
        if self.server.hostile.active("echo"):
            why += (f" (you sent Authorization: {self.headers.get('Authorization', '')}; "
                    f"the secret for this client is {self.server.secret})")  # fmt: skip
        self._send(status, _imsx(why, minor))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        self.server.count(f"POST {path}")
        if path != TOKEN_PATH or self.server.tokens is None:
            self._send(404, _imsx(f"no such endpoint: POST {path}", "unknownobject"))
            return
        form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        status, answer = self.server.tokens.issue(self.headers.get("Authorization", ""), form)
        if status != 200 and self.server.hostile.active("echo"):
            sent = self.headers.get("Authorization", "")
            answer["error_description"] = (
                f"refused {sent!r} with form {raw.decode(errors='replace')}"
            )
        self._send(status, answer)

    def do_GET(self) -> None:
        try:
            self._get()
        except Exception as exc:  # a sandbox bug: say so, never hang up without an answer
            self._send(500, _imsx(f"sandbox error: {type(exc).__name__}", "server_busy"))

    def _get(self) -> None:
        parts = urlsplit(self.path)
        base, _, collection = parts.path.rstrip("/").rpartition("/")
        version = BASES.get(base)
        self.server.count(f"GET {collection}")
        if version is None or collection not in COLLECTIONS:
            self._send(404, _imsx(f"no such collection: {parts.path}", "unknownobject"))
            return
        why = self.server.authenticate("GET", self._full_url(), self.headers.get("Authorization"))
        if why is not None:
            self._refuse(401, why, "unauthorisedrequest")
            return
        hostile = self.server.hostile
        if hostile.active("redirect", collection):
            self._send(307, {}, {"Location": f"https://elsewhere.example{self.path}"})
            return
        if hostile.active("no-sort", collection) and "sort=" in parts.query:
            self._send(400, _imsx("sort is not supported", "invalid_sort_field"))
            return
        if hostile.active("429", collection):
            self._send(429, _imsx("too many requests", "server_busy"),
                       {"Retry-After": self.server.retry_after})  # fmt: skip
            return
        try:
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            limit, offset = int(query.get("limit", "100")), int(query.get("offset", "0"))
            if limit < 1 or offset < 0:
                raise ValueError("limit must be 1 or more and offset 0 or more")
            records = self._select(collection, version, query)
        except ValueError as exc:
            self._send(400, _imsx(str(exc), "invalid_selection_field"))
            return
        if hostile.active("fail", collection, offset=offset):
            self._refuse(500, "internal error while reading the page", "server_busy")
            return
        self._page(collection, records, query, limit, offset, version)

    def _full_url(self) -> str:
        return f"http://{self.headers.get('Host', '')}{self.path}"

    def _select(self, collection: str, version: str, query: dict[str, str]) -> list[dict[str, Any]]:
        href = f"http://{self.headers.get('Host', '')}" + next(
            b for b, v in BASES.items() if v == version
        )
        records = self.server.data.view(collection, version, href)
        if collection == "users" and self.server.hostile.active("secret-in-data"):
            target = self.server.data.secret_target
            for record in records:
                if record["sourcedId"] == target:
                    record["givenName"] = f"Ann {self.server.secret}"
        if query.get("filter"):
            records = _filtered(records, query["filter"])
        sort = query.get("sort")
        if sort:
            if sort not in ("sourcedId", "dateLastModified"):
                raise ValueError(f"cannot sort by {sort!r}")
            descending = query.get("orderBy", "asc").lower() == "desc"
            records.sort(key=lambda r: str(r.get(sort, "")), reverse=descending)
        return records

    def _page(
        self,
        collection: str,
        records: list[dict[str, Any]],
        query: dict[str, str],
        limit: int,
        offset: int,
        version: str,
    ) -> None:
        hostile = self.server.hostile
        size = min(limit, self.server.page_cap)
        if hostile.active("short", collection):
            size = hostile.page_size(size)
        start = max(0, offset - 1) if hostile.active("shift", collection, offset=offset) else offset
        page = records[start : start + size]
        total = len(records)
        headers = {"Link": self._links(query, offset, len(page), total, collection)}
        if hostile.active("shrink", collection, offset=offset):
            total -= 1
        if hostile.active("wrong-total", collection):
            total = len(page)
        if not hostile.active("no-total", collection):
            headers["X-Total-Count"] = str(total)
        if hostile.active("no-envelope", collection, offset=offset):
            body: Any = {"data": page}
        elif hostile.active("dup-json", collection, offset=offset):
            body = f'{{"{collection}": {json.dumps(page)}, "{collection}": []}}'.encode()
        else:
            body = {collection: page}
        self._send(200, body, headers)

    def _links(self, query: dict[str, str], offset: int, count: int, total: int, name: str) -> str:
        path = urlsplit(self.path).path
        skip = 1 if self.server.hostile.active("bad-links", name) else 0

        def link(at: int, rel: str) -> str:
            return f'<{path}?{urlencode({**query, "offset": str(at)})}>; rel="{rel}"'

        links = [link(0, "first")]
        if offset + count < total:
            links.append(link(offset + count + skip, "next"))
        step = max(count, 1)
        links.append(link(max(0, (total - 1) // step * step), "last"))
        return ", ".join(links)


def _filtered(records: list[dict[str, Any]], expression: str) -> list[dict[str, Any]]:
    """Records matching one predicate; dates compared as dates. ValueError if unsupported."""
    found = _PREDICATE.match(expression)
    if found is None:
        raise ValueError(f"unsupported filter {expression!r} (one predicate: field op 'value')")
    field, op, value = found.groups()
    if field == "dateLastModified":
        wanted: Any = parse_moment(value)

        def key(record: dict[str, Any]) -> Any:
            return parse_moment(record.get("dateLastModified") or "1970-01-01T00:00:00Z")
    else:
        wanted = value

        def key(record: dict[str, Any]) -> Any:
            return str(record.get(field, ""))

    tests: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b, "!=": lambda a, b: a != b, ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    }  # fmt: skip
    return [r for r in records if tests[op](key(r), wanted)]


class OneRosterSandbox(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        data: RosterData,
        *,
        client_id: str,
        secret: str,
        auth: str = "both",
        page_cap: int = 3,
        token_ttl: float = 3600.0,
        hostile: OneRosterHostility | None = None,
        retry_after: str = "1",
        clock: Callable[[], float] = time.time,
        verbose: bool = False,
    ) -> None:
        if auth not in AUTH_SCHEMES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_SCHEMES)}")
        super().__init__(address, OneRosterHandler)
        self.data = data
        self.secret = secret
        self.page_cap = max(1, page_cap)
        self.hostile = hostile or OneRosterHostility()
        self.retry_after = retry_after
        self.verbose = verbose
        self.oauth1 = OAuth1Checker(client_id, secret, clock) if auth != "oauth2" else None
        self.tokens = TokenIssuer(client_id, secret, token_ttl, clock) if auth != "oauth1" else None
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def count(self, label: str) -> None:
        with self._lock:
            self.requests[label] += 1

    def authenticate(self, method: str, url: str, authorization: str | None) -> str | None:
        """None when the request may read; else why not."""
        header = (authorization or "").strip()
        if header.lower().startswith("bearer ") and self.tokens is not None:
            return self.tokens.check(header)
        signed = header.lower().startswith("oauth ") or "oauth_signature=" in url
        if signed and self.oauth1 is not None:
            return self.oauth1.check(method, url, header)
        return "this server needs " + (
            "an OAuth 1.0a signature or an OAuth 2 bearer token" if self.oauth1 and self.tokens
            else "an OAuth 1.0a signature (HMAC-SHA256)" if self.oauth1
            else "an OAuth 2 bearer token from POST /oauth/token"
        )  # fmt: skip

    def url(self, version: str = V11) -> str:
        host, port = self.server_address[:2]
        base = next(b for b, v in BASES.items() if v == version)
        return f"http://{host!s}:{port}{base}"

    @property
    def token_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{TOKEN_PATH}"

    def start_background(self) -> OneRosterSandbox:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True,
            name="kprov-oneroster-sandbox",
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
