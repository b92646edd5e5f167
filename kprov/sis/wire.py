"""Talking to a SIS: the Knewton client's wire rules, reused, with OneRoster's sign-in.

Every request goes through ``kprov.api.transport.Transport``, so a SIS gets exactly what the
Knewton API gets: one pooled session, a total deadline per attempt, bounded retries with
backoff, 429s paced at the learned rate (``Pacer``), redirects refused, plain http only to
this machine, answers capped in size, and every secret and token registered with a
``Scrubber`` before anything could print it. The sign-in is OneRoster's:

- OAuth 1.0a, HMAC-SHA256, in the Authorization header (OneRoster 1.1; what ClassLink's own
  sample client sends), signed by ``oauthlib`` afresh for every attempt, so a resend after a
  429 carries a new nonce and timestamp (servers refuse a replayed nonce);
- OAuth 2 client credentials (OneRoster 1.2, and 1.1 at Infinite Campus and Aeries), through
  ``kprov.api.tokens.TokenCache``: one mint per source, renewed before it expires, renewed
  once after a 401.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from kprov.api.answers import error_fields
from kprov.api.errors import ApiError, AuthenticationError
from kprov.api.pacing import Pacer, RetryPolicy
from kprov.api.scrub import Scrubber
from kprov.api.tokens import TOKEN_PATH, TokenCache
from kprov.api.transport import Answer, Limits, Transport
from kprov.api.urls import check_credential_url, check_token_url, shown_url
from kprov.rosters.api_source import OAUTH2, ApiSource
from kprov.secret import Secret
from kprov.sis.errors import SisCredentialsRefused, SisWireError

AUTH_RETRIES = 2  # resends after a 401: a token renewed, or a fresh signature


@dataclass(frozen=True)
class PullOptions:
    """How patient a pull is, and the clocks and waits tests replace."""

    retry: RetryPolicy | None = None
    limits: Limits | None = None
    sleep: Callable[[float], None] | None = None  # None: real waits, ended by *cancel*
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # delta cursors
    cancel: threading.Event | None = None
    env: Mapping[str, str] | None = None  # where secret_env is looked up (None: os.environ)


class QueryTransport(Transport):
    """The Knewton transport, for URLs with a query: OneRoster pages (``?limit=&offset=``) and
    token URLs such as Infinite Campus's ``?appName=``. The query travels as requests'
    ``params`` (a string, sent exactly as built, so an OAuth 1.0a signature made over the
    whole URL still matches), and the URL rules apply to the rest."""

    def send(self, method: str, url: str, **kwargs: Any) -> Answer:
        base, sep, query = url.partition("?")
        if sep:
            kwargs["params"] = query
        return super().send(method, base, **kwargs)


class SisClient:
    """GETs against one source, signed in; every answer it returns is a 200."""

    def __init__(self, source: ApiSource, secret: Secret, options: PullOptions) -> None:
        self.source = source
        self.base_url = check_credential_url(source.url, "url")
        self.scrubber = Scrubber()
        self.scrubber.add(secret.reveal())
        self.scrubber.add(source.client_id + ":" + secret.reveal())
        self.pacer = Pacer(clock=options.clock, sleep=options.sleep or time.sleep)
        self.transport = QueryTransport(
            pacer=self.pacer,
            scrubber=self.scrubber,
            retry=options.retry,
            limits=options.limits or Limits.from_env(),
            cancel=options.cancel,
            sleep=options.sleep,
            clock=options.clock,
            pool_size=1,
        )
        self.tokens: TokenCache | None = None
        self._signer: Any = None
        self.sorted_pages = True  # False once the SIS refused `sort` (paging)
        if source.auth == OAUTH2:
            basic = self.scrubber.add_credentials(source.client_id, secret.reveal())
            self.tokens = TokenCache(
                self.transport,
                token_url=check_token_url(source.token_url),
                basic=basic,
                admin_scope=source.scope or None,
                scrubber=self.scrubber,
                clock=options.clock,
            )
        else:
            from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, Client

            self._signer = Client(
                source.client_id,
                client_secret=secret.reveal(),
                signature_method=SIGNATURE_HMAC_SHA256,
            )

    @property
    def request_count(self) -> int:
        return self.transport.request_count

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> SisClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, *, what: str, accept: frozenset[int] = frozenset()) -> Answer:
        """The 200 answer to GET *url* (or one of the *accept* statuses); *what* names the
        request in every error."""
        for attempt in range(AUTH_RETRIES + 1):
            answer = self._send(url, what)
            if answer.status != 401 or attempt == AUTH_RETRIES:
                break
            if self.tokens is not None:
                stale = self.tokens.get(None)
                self.tokens.invalidate(None, stale)
        if answer.status == 200 or answer.status in accept:
            return answer
        message = self._message(answer)
        if answer.status in (401, 403):
            raise SisCredentialsRefused(
                f"{what}: HTTP {answer.status}: {message}",
                hint="Check the source's client_id and secret with the SIS administrator (and "
                "that this client may read the collection); retrying will not help.",
            )
        raise SisWireError(f"{what}: HTTP {answer.status}: {message}")

    def _send(self, url: str, what: str) -> Answer:
        token_url = shown_url(self.source.token_url)
        try:
            if self.tokens is not None:
                self.tokens.get(None)  # mint before queueing, with pacing
            return self.transport.send(
                "GET",
                url,
                path=urlsplit(url).path,
                identity=None,
                authorize=lambda: self._authorization(url),
            )
        except AuthenticationError as exc:
            raise SisCredentialsRefused(
                f"the token endpoint {token_url} refused the client id and secret: "
                f"{exc.api_message}",
                hint="Check the source's client_id, secret and token_url (and scope, if the SIS "
                "wants one) with the SIS administrator.",
            ) from None
        except ApiError as exc:
            where = f"POST {token_url}" if exc.path == TOKEN_PATH else what
            raise SisWireError(f"{where}: {exc.api_message}") from None

    def _authorization(self, url: str) -> str:
        """Built after the pacer admitted the attempt: a fresh signature or a live token."""
        if self.tokens is not None:
            return f"Bearer {self.tokens.get(None, in_slot=True).access_token}"
        _uri, headers, _body = self._signer.sign(url, http_method="GET")
        return str(headers["Authorization"])

    def _message(self, answer: Answer) -> str:
        """The server's own words (imsx_description, or any usual field), scrubbed."""
        fields = error_fields(
            answer.body, content_type=answer.content_type, reason=answer.reason,
            scrubber=self.scrubber,
        )  # fmt: skip
        described = (fields.body or {}).get("imsx_description")
        if isinstance(described, str) and described.strip():
            return self.scrubber.clip(described)
        return fields.message
