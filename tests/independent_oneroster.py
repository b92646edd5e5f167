"""An independent OneRoster 1.1 / 1.2 REST server for tests, written apart from kprov.sandbox.

It shares no code with kprov (its CSV-to-JSON binding, paging, OAuth 1.0a signature check and
OAuth 2 tokens are its own reading of the specifications), so a misreading that kprov's client
and kprov's sandbox share cannot pass unseen. It serves a OneRoster CSV bundle shaped
like real exports (tests/data/rosters/oneroster-quirks) with:

- its own page-size cap (``cap``: a page never holds more, whatever ``limit`` asks);
- OAuth 1.0a: the signature base string built by hand from RFC 5849 section 3.4.1 (query
  parameters and the oauth_* header parameters, each percent-encoded, sorted by name then
  value, so repeated parameters count), HMAC-SHA256, a nonce never accepted twice;
- OAuth 2 client credentials: POST ``/oauth/token`` with HTTP Basic, a bearer token after;
- ``filter=dateLastModified>'...'`` (the one filter a delta sends), 400 for any other;
- hostile options, each off by default (``Options``), to answer the way real SISes do.

``server.seen`` lists (path with query, status) of every request; ``server.elsewhere`` what a
second server ("another host") received, to prove credentials never follow a redirect.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

ROOT = Path(__file__).parent / "data" / "rosters" / "oneroster-quirks"
BASE = {"1.1": "/ims/oneroster/v1p1", "1.2": "/ims/oneroster/rostering/v1p2"}
COLLECTIONS = ("orgs", "academicSessions", "classes", "users", "enrollments")


@dataclass
class Options:
    cap: int = 2  # records a page holds at most
    overlap: bool = False  # each page after the first repeats the last record of the one before
    total_lie: int = 0  # X-Total-Count says this many more than there are
    empty_first: bool = False  # the first page of every collection is empty, the total is not
    link_elsewhere: bool = False  # a Link rel="next" header pointing at another host
    redirect: str = ""  # this collection's pages are answered 302 to another host
    fail: str = ""  # this collection's second page is answered 500, for ever
    no_envelope: str = ""  # this collection's pages come as {"data": [...]}
    gzip: bool = False  # every answer gzip-encoded
    trickle: float = 0.0  # seconds between the chunks of a chunked answer
    latin1: str = ""  # this collection's pages are not UTF-8 (one byte of Latin-1 in them)
    role_singular: bool = False  # 1.2 users carry "role": "student" instead of "roles"
    empty_roles: bool = False  # 1.2 users carry "roles": []
    token_answer: dict[str, Any] | None = None  # the token answer, instead of the usual one
    echo_secret: bool = False  # 401s quote the client secret (and the Authorization header)
    refuse: bool = False  # every request is answered 401, credentials right or wrong


def bundle_records(folder: Path, version: str) -> dict[str, list[dict[str, Any]]]:
    """The bundle's CSV rows as the REST binding's JSON records (this module's own reading)."""

    def rows(name: str) -> list[dict[str, str]]:
        with (folder / f"{name}.csv").open(encoding="utf-8-sig", newline="") as handle:
            return list(csv.DictReader(handle))

    def ref(value: str, kind: str) -> dict[str, str] | None:
        return {"sourcedId": value, "type": kind} if value else None

    def refs(value: str, kind: str) -> list[dict[str, str]]:
        return [{"sourcedId": v.strip(), "type": kind} for v in value.split(",") if v.strip()]

    def common(row: dict[str, str]) -> dict[str, Any]:
        modified = row.get("dateLastModified") or "2023-05-01T00:00:00Z"
        status = row.get("status") or "active"
        return {"sourcedId": row["sourcedId"], "status": status, "dateLastModified": modified}

    found: dict[str, list[dict[str, Any]]] = {}
    found["orgs"] = [
        {**common(r), "name": r["name"], "type": r["type"], "identifier": r["identifier"],
         "parent": ref(r.get("parentSourcedId", ""), "org")}
        for r in rows("orgs")
    ]  # fmt: skip
    found["academicSessions"] = [
        {**common(r), "title": r["title"], "type": r["type"], "startDate": r["startDate"],
         "endDate": r["endDate"], "parent": ref(r.get("parentSourcedId", ""), "academicSession"),
         "schoolYear": r["schoolYear"]}
        for r in rows("academicSessions")
    ]  # fmt: skip
    found["classes"] = [
        {**common(r), "title": r["title"], "classCode": r["classCode"],
         "classType": r["classType"].lower(), "location": r["location"],
         "grades": [g.strip() for g in r["grades"].split(",")],
         "course": ref(r["courseSourcedId"], "course"), "school": ref(r["schoolSourcedId"], "org"),
         "terms": refs(r["termSourcedIds"], "academicSession")}
        for r in rows("classes")
    ]  # fmt: skip
    enrolled = rows("enrollments")
    found["enrollments"] = [
        {**common(r), "role": r["role"], "primary": r["primary"].lower() == "true",
         "beginDate": r["beginDate"], "endDate": r["endDate"],
         "class": ref(r["classSourcedId"], "class"), "school": ref(r["schoolSourcedId"], "org"),
         "user": ref(r["userSourcedId"], "user")}
        for r in enrolled
    ]  # fmt: skip
    users = []
    for r in rows("users"):
        user = {**common(r), "enabledUser": r["enabledUser"].lower() == "true",
                "username": r["username"], "givenName": r["givenName"],
                "familyName": r["familyName"], "email": r["email"]}  # fmt: skip
        if version == "1.1":
            user["role"] = r["role"]
            user["orgs"] = refs(r["orgSourcedIds"], "org")
        else:  # no roles.csv in this export: a user's roles are the ones it is enrolled with
            kinds = sorted({e["role"] for e in enrolled if e["userSourcedId"] == r["sourcedId"]})
            org = ref(r["primaryOrgSourcedId"], "org")
            user["roles"] = [{"roleType": "primary", "role": k, "org": org} for k in kinds]
            user["primaryOrg"] = org
        users.append(user)
    found["users"] = users
    return found


def _pct(text: str) -> str:
    return quote(text, safe="-._~")


class IndependentOneRoster:
    """The server, on a free loopback port, in a thread; ``stop()`` ends it."""

    def __init__(self, version: str, key: str, secret: str, options: Options | None = None,
                 folder: Path | None = None) -> None:  # fmt: skip
        self.version = version
        self.key, self.secret = key, secret
        self.options = options or Options()
        tag = "v1p1" if version == "1.1" else "v1p2"
        self.records = bundle_records(folder or ROOT / tag, version)
        self.tokens: set[str] = set()
        self.nonces: set[str] = set()
        self.seen: list[tuple[str, int]] = []
        self.elsewhere: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.http = self._serve(self._handle)
        self.other = self._serve(self._other_host)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}{BASE[self.version]}"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/oauth/token"

    def stop(self) -> None:
        for server in (self.http, self.other):
            server.shutdown()
            server.server_close()

    # ---------------------------------------------------------------- plumbing

    @staticmethod
    def _serve(handle: Any) -> ThreadingHTTPServer:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 1 << 16  # one write per answer: headers and body in separate packets
            # meet the client's delayed ACK (40 ms a request on loopback)

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                handle(self)

            do_POST = do_GET

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return server

    def _other_host(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.elsewhere.append({"path": h.path, **{k.lower(): v for k, v in h.headers.items()}})
        self._send(h, 200, {"orgs": [], "users": [], "classes": [], "enrollments": [],
                            "academicSessions": []})  # fmt: skip

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: Any,
              headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:  # fmt: skip
        data = raw if raw is not None else json.dumps(body).encode()
        extra = dict(headers or {})
        if self.options.gzip:
            data = gzip.compress(data)
            extra["Content-Encoding"] = "gzip"
        with self.lock:
            self.seen.append((h.path, status))
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        for name, value in extra.items():
            h.send_header(name, value)
        if self.options.trickle:
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            for i in range(0, len(data), 64):
                chunk = data[i : i + 64]
                h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                h.wfile.flush()
                time.sleep(self.options.trickle)
            h.wfile.write(b"0\r\n\r\n")
        else:
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()

    # ---------------------------------------------------------------- auth

    def _authorized(self, h: BaseHTTPRequestHandler, path: str, query: str) -> bool:
        header = h.headers.get("Authorization", "")
        if self.version == "1.2" or self.options.token_answer is not None:
            return header.startswith("Bearer ") and header[7:] in self.tokens
        if not header.startswith("OAuth "):
            return False
        given = {}
        for part in header[6:].split(","):
            name, _, value = part.strip().partition("=")
            given[unquote(name)] = unquote(value.strip('"'))
        signature = given.pop("oauth_signature", "")
        given.pop("realm", None)
        if given.get("oauth_consumer_key") != self.key:
            return False
        if given.get("oauth_signature_method") != "HMAC-SHA256":
            return False
        if abs(time.time() - int(given.get("oauth_timestamp", "0"))) > 600:
            return False
        params = [(unquote(k), unquote(v)) for k, v in (
            p.partition("=")[::2] for p in query.split("&") if p)]  # fmt: skip
        params += list(given.items())
        normal = "&".join(f"{k}={v}" for k, v in sorted((_pct(k), _pct(v)) for k, v in params))
        host = h.headers.get("Host", "")
        base = "&".join(["GET", _pct(f"http://{host}{path}"), _pct(normal)])
        key = f"{_pct(self.secret)}&".encode()
        expected = base64.b64encode(hmac.new(key, base.encode(), hashlib.sha256).digest()).decode()
        nonce = given.get("oauth_nonce", "")
        with self.lock:
            if not hmac.compare_digest(expected, signature) or nonce in self.nonces:
                return False
            self.nonces.add(nonce)
        return True

    def _token(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        form = dict(parse_qsl(h.rfile.read(length).decode()))
        basic = h.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()
        if (
            self.options.refuse
            or basic != expected
            or form.get("grant_type") != "client_credentials"
        ):
            self._refuse(h, basic)
            return
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        answer = {"access_token": token, "token_type": "bearer", "expires_in": 3600}
        if self.options.token_answer is not None:
            answer = {k: token if v == "TOKEN" else v for k, v in self.options.token_answer.items()}
        self._send(h, 200, answer)

    def _refuse(self, h: BaseHTTPRequestHandler, authorization: str) -> None:
        body: dict[str, Any] = {"imsx_codeMajor": "failure", "imsx_severity": "error",
                                "imsx_description": "unauthorized"}  # fmt: skip
        if self.options.echo_secret:
            raw = self.secret.encode()
            body["imsx_description"] = (
                f"bad credentials {self.secret!r} from {authorization}; as sent: "
                f"{quote(self.secret, safe='').lower()} {raw.hex()} "
                f"{self.secret[:6]}\n{self.secret[6:]}"
            )
            body["error_description"] = base64.b64encode(raw).decode()
        self._send(h, 401, body, {"WWW-Authenticate": f'OAuth realm="{self.secret}"'})

    # ---------------------------------------------------------------- collections

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        if split.path == "/oauth/token" and h.command == "POST":
            self._token(h)
            return
        base = BASE[self.version]
        name = split.path[len(base) + 1 :] if split.path.startswith(base + "/") else ""
        if name not in COLLECTIONS:
            self._send(h, 404, {"imsx_codeMajor": "failure", "imsx_description": "no such path"})
            return
        if self.options.refuse or not self._authorized(h, split.path, split.query):
            self._refuse(h, h.headers.get("Authorization", ""))
            return
        query = parse_qsl(split.query, keep_blank_values=True)
        asked = dict(query)
        options = self.options
        if options.redirect == name:
            other = f"http://127.0.0.1:{self.other.server_address[1]}{split.path}?{split.query}"
            self._send(h, 302, {}, {"Location": other})
            return
        records = self.records[name]
        if "filter" in asked:
            field_name, _, value = asked["filter"].partition(">")
            if field_name != "dateLastModified" or not value.startswith("'"):
                self._send(h, 400, {"imsx_codeMajor": "failure", "imsx_description": "filter"})
                return
            records = [r for r in records if r["dateLastModified"] > value.strip("'")]
        if asked.get("sort") == "sourcedId":
            records = sorted(records, key=lambda r: str(r["sourcedId"]))
        offset, limit = int(asked.get("offset", 0)), int(asked.get("limit", 100))
        if options.fail == name and offset > 0:
            self._send(h, 500, {"imsx_codeMajor": "failure", "imsx_description": "internal"})
            return
        start = max(offset - 1, 0) if options.overlap and offset else offset
        page = [] if options.empty_first and offset == 0 else records[start : start + min(
            limit, options.cap)]  # fmt: skip
        page = [self._shaped(r) if name == "users" else r for r in page]
        headers = {"X-Total-Count": str(len(records) + options.total_lie)}
        if options.link_elsewhere:
            other = f"http://127.0.0.1:{self.other.server_address[1]}{split.path}"
            headers["Link"] = f'<{other}?limit={limit}&offset={offset + limit}>; rel="next"'
        body = {"data": page} if options.no_envelope == name else {name: page}
        if options.latin1 == name:
            self._send(h, 200, None, headers, raw=json.dumps(body).encode() + b" \xe9")
            return
        self._send(h, 200, body, headers)

    def _shaped(self, user: dict[str, Any]) -> dict[str, Any]:
        if self.version != "1.2":
            return user
        if self.options.role_singular:
            roles = user.get("roles") or [{"role": "student"}]
            return {**{k: v for k, v in user.items() if k != "roles"}, "role": roles[0]["role"]}
        if self.options.empty_roles:
            return {**user, "roles": []}
        return user
