"""How the OneRoster sandbox checks who is asking: OAuth 1.0a signatures and OAuth 2 tokens.

The OAuth 1.0a check is written by hand from RFC 5849 (section 3.4: the signature base string,
the parameter normalisation, HMAC with the key ``client_secret&``), not with the library kprov
signs with, so a signing mistake in the client cannot be mirrored here. It is strict: HMAC-SHA256
only (what OneRoster 1.1 requires), the timestamp within five minutes of the server's clock,
every nonce used once (a client that resends a signed request unchanged after a 429 is refused,
as a real server would). Parameters may come in the Authorization header or in the query.

OAuth 2 is the client-credentials grant of OneRoster 1.2 (RFC 6749 section 4.4): the client
id and secret in a Basic header (or the form), a bearer token with a lifetime.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

TIMESTAMP_WINDOW = 300.0  # seconds either side of the server's clock
_UNRESERVED = "-._~"


def _enc(text: str) -> str:
    """RFC 5849 3.6: percent-encode everything but unreserved characters, upper-case hex."""
    return quote(text, safe=_UNRESERVED)


def header_params(header: str) -> list[tuple[str, str]] | None:
    """The parameters of an ``Authorization: OAuth k="v", ...`` header, decoded; None if the
    header is not one."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "oauth":
        return None
    params: list[tuple[str, str]] = []
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or len(value) < 2 or value[0] != '"' or value[-1] != '"':
            return None
        params.append((unquote(name.strip()), unquote(value[1:-1])))
    return params


def base_string(method: str, url: str, params: list[tuple[str, str]]) -> str:
    """RFC 5849 3.4.1: METHOD & encoded base URI & encoded normalised parameters."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    default = (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    authority = host if port is None or default else f"{host}:{port}"
    uri = f"{scheme}://{authority}{parts.path or '/'}"
    pairs = sorted((_enc(k), _enc(v)) for k, v in params if k not in ("oauth_signature", "realm"))
    normal = "&".join(f"{k}={v}" for k, v in pairs)
    return "&".join([method.upper(), _enc(uri), _enc(normal)])


class OAuth1Checker:
    """Verifies OAuth 1.0a HMAC-SHA256 signed requests for one consumer key and secret."""

    def __init__(self, key: str, secret: str, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.secret = secret
        self.clock = clock
        self._nonces: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, method: str, url: str, authorization: str) -> str | None:
        """None if the request is signed right; else why not (for a 401 body)."""
        query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
        oauth = header_params(authorization) if authorization else None
        if authorization and oauth is None and not authorization.lower().startswith("bearer"):
            return "the Authorization header is not an OAuth 1.0a header"
        if oauth is None:
            oauth = [(k, v) for k, v in query if k.startswith("oauth_")]
            query = [(k, v) for k, v in query if not k.startswith("oauth_")]
        given = dict(oauth)
        if not given:
            return "no OAuth 1.0a parameters"
        if given.get("oauth_consumer_key") != self.key:
            return "unknown oauth_consumer_key"
        if given.get("oauth_signature_method") != "HMAC-SHA256":
            return "oauth_signature_method must be HMAC-SHA256"
        try:
            stamp = float(given.get("oauth_timestamp", ""))
        except ValueError:
            return "oauth_timestamp is not a number"
        if abs(self.clock() - stamp) > TIMESTAMP_WINDOW:
            return "oauth_timestamp is too far from the server's clock"
        nonce = given.get("oauth_nonce", "")
        if not nonce:
            return "no oauth_nonce"
        expected = hmac.new(
            f"{_enc(self.secret)}&".encode(),
            base_string(method, url, [*query, *oauth]).encode(),
            hashlib.sha256,
        ).digest()
        try:
            sent = base64.b64decode(given.get("oauth_signature", ""), validate=True)
        except (binascii.Error, ValueError):
            return "oauth_signature is not base64"
        if not hmac.compare_digest(expected, sent):
            return "the signature does not match"
        with self._lock:
            now = self.clock()
            self._nonces = {n: t for n, t in self._nonces.items() if t > now - 2 * TIMESTAMP_WINDOW}
            if nonce in self._nonces:
                return "this oauth_nonce was used already (a replayed request)"
            self._nonces[nonce] = now
        return None


class TokenIssuer:
    """Client-credentials tokens for one client id and secret, with a lifetime."""

    def __init__(
        self, client_id: str, secret: str, ttl: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.client_id = client_id
        self.secret = secret
        self.ttl = ttl
        self.clock = clock
        self.issued = 0
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def basic(self) -> str:
        return base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()

    def issue(self, authorization: str, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        """(status, JSON answer) for a token request."""
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic":
            good = hmac.compare_digest(value.strip(), self.basic())
        else:
            good = form.get("client_id") == self.client_id and hmac.compare_digest(
                form.get("client_secret", ""), self.secret
            )
        if not good:
            return 401, {"error": "invalid_client"}
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = self.clock() + self.ttl
            self.issued += 1
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": self.ttl}

    def check(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return "no bearer token"
        with self._lock:
            expires = self._tokens.get(token.strip())
        if expires is None:
            return "unknown token"
        if expires <= self.clock():
            return "the token expired"
        return None
