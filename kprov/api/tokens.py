"""OAuth tokens: one mint per user however many threads, renewed before they expire.

Credentials (the Basic value) go to the token URL and nowhere else. Every token is registered
with the scrubber the moment it arrives, so an echo of it is never printed.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kprov.api.answers import error_fields, parse_json
from kprov.api.errors import (
    ApiError,
    AuthenticationError,
    MalformedAnswer,
    NetworkError,
    RateLimited,
    RedirectRefused,
    ServerKeptRefusing,
    ServerWaitTooLong,
    TokenEndpointNotFound,
    TokenRefused,
    error_for_status,
)
from kprov.api.ids import answered_uuid
from kprov.api.models import Token
from kprov.api.scrub import Scrubber, redact
from kprov.api.transport import Requeue, Transport
from kprov.strict_json import DuplicateName

TOKEN_REFRESH_MARGIN = 30.0  # seconds before expiry at which a token is renewed proactively
TOKEN_PATH = "/oauth/token"
IN_SLOT_LOCK_WAIT = 0.05  # seconds a slot holder waits for another thread's renewal
_WHERE = {"method": "POST", "path": TOKEN_PATH}
MAX_LIFETIME = 10 * 365 * 86400.0  # seconds; a longer (or infinite) expires_in reads as this
# Refresh failures after which the client-credentials grant would fail the same way.
_UNREACHABLE = (
    NetworkError,
    RateLimited,
    RedirectRefused,
    ServerWaitTooLong,
    ServerKeptRefusing,
    TokenEndpointNotFound,
)
# A token endpoint's error answer may quote the credentials it was sent, in any encoding the
# scrubber may not know: only this much of it is ever shown (scrubbed, escaped, one line).
TOKEN_EXCERPT = 120
DEFAULT_REFUSED_HINT = (
    "The API key or secret was refused: check the profile's api_key and the secret "
    "(`kprov config show` says where it comes from)."
)
_TOKEN_TEXT = re.compile(r"[\x21-\x7e]+\Z")  # visible ASCII, no space, no CR/LF


class TokenCache:
    """Tokens by user (None: the partner admin), minted through *transport*."""

    def __init__(
        self,
        transport: Transport,
        *,
        token_url: str,
        basic: str,
        admin_scope: str | None,
        scrubber: Scrubber,
        clock: Callable[[], float],
        base_url: str = "",
        refused_hint: str | None = None,
    ) -> None:
        self._transport = transport
        self._token_url = token_url
        self._base_url = base_url
        self._refused_hint = refused_hint or DEFAULT_REFUSED_HINT
        self._basic = basic
        self._admin_scope = admin_scope
        self._scrubber = scrubber
        self._clock = clock
        self._tokens: dict[str | None, Token] = {}
        self._locks: dict[str | None, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, user: str | None) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(user, threading.Lock())

    def usable(self, token: Token | None) -> bool:
        return bool(token and token.access_token) and (
            token.renew_at is None or self._clock() < token.renew_at  # type: ignore[union-attr]
        )

    def get(self, user: str | None, *, in_slot: bool = False) -> Token:
        """A usable token for *user*; renewed (refresh, then client credentials) if not.

        *in_slot*: the caller holds a pacer slot (``Transport.send``'s authorize step). It then
        renews without asking the pacer for a second slot, and never waits long for this
        user's lock: the lock's holder may itself be waiting for a slot, so ``Requeue`` gives
        ours back instead of deadlocking the pool.
        """
        token = self._tokens.get(user)
        if self.usable(token):
            return token  # type: ignore[return-value]
        lock = self._lock(user)
        if not lock.acquire(timeout=IN_SLOT_LOCK_WAIT if in_slot else -1):

            def until_renewed() -> None:
                with lock:
                    pass

            raise Requeue(until_renewed)
        try:
            token = self._tokens.get(user)
            if self.usable(token):
                return token  # type: ignore[return-value]
            token = self._renew(user, token, paced=not in_slot)
            self._tokens[user] = token
            return token
        finally:
            lock.release()

    def invalidate(self, user: str | None, stale: Token) -> None:
        """After a 401: the next ``get`` renews (once, however many threads saw the 401)."""
        with self._lock(user):
            if self._tokens.get(user) is stale:
                self._tokens[user] = replace(stale, access_token="", renew_at=0.0)

    def forget(self, user: str) -> None:
        with self._guard:
            self._tokens.pop(user, None)
            self._locks.pop(user, None)

    def _renew(self, user: str | None, old: Token | None, paced: bool) -> Token:
        if old is not None and old.refresh_token:
            try:
                form = {"grant_type": "refresh_token", "refresh_token": old.refresh_token}
                return self._request(form, user, paced)
            except _UNREACHABLE:
                raise  # the token endpoint itself is out of reach: a second grant would be too
            except ApiError:
                # The refresh token expired, or its answer was refused, unusable or named
                # someone else: start again from the client credentials, never fail the item.
                pass
        form = {"grant_type": "client_credentials"}
        scope = user if user is not None else self._admin_scope
        if scope:
            form["scope"] = scope
        return self._request(form, user, paced)

    def _request(self, form: dict[str, str], user: str | None, paced: bool) -> Token:
        answer = self._transport.send(
            "POST",
            self._token_url,
            path=TOKEN_PATH,
            identity=user,
            authorize=lambda: self._basic,
            paced=paced,
            data=form,
            log_body=redact(form),
        )
        if answer.status >= 400:
            fields = error_fields(
                answer.body,
                content_type=answer.content_type,
                reason=answer.reason,
                scrubber=self._scrubber,
                limit=TOKEN_EXCERPT,
            )
            kwargs = {"status": answer.status, "error_id": fields.error_id, **_WHERE}
            if answer.status == 404:
                raise self._no_token_endpoint(fields.message, kwargs)
            if user is None and answer.status in (400, 401, 403):
                raise AuthenticationError(
                    fields.message,
                    hint=self._refused_hint,
                    **kwargs,  # type: ignore[arg-type]
                )
            if user is not None and answer.status < 500:
                raise TokenRefused(fields.message, **kwargs)  # type: ignore[arg-type]
            raise error_for_status(answer.status)(fields.message, **kwargs)  # type: ignore[arg-type]
        return self._parse(answer.body, answer.status, user)

    def _no_token_endpoint(self, message: str, kwargs: dict[str, Any]) -> ApiError:
        """A 404 for the token URL says the URL is wrong (for every request of the run alike),
        not that a row failed: a configuration error, naming the URL to fix."""
        derived = self._token_url == f"{self._base_url.rstrip('/')}/oauth/token"
        if derived or not self._base_url:
            hint = (
                f"Check the profile's base URL ({self._base_url or 'not known'}): it must be "
                "the API's root, ending with the API version (/v0), such as "
                "https://api.knewton.com/v0 (`kprov profile show` / KPROV_BASE_URL)."
            )
        else:
            hint = (
                f"Check the profile's token URL ({self._token_url}), or remove it to use the "
                "base URL's /oauth/token (KPROV_TOKEN_URL / `kprov profile show`)."
            )
        return TokenEndpointNotFound(
            f"there is no token endpoint at {self._token_url} ({message})",
            hint=hint,
            **kwargs,
        )

    def _parse(self, raw: bytes, status: int, user: str | None) -> Token:
        try:
            body = parse_json(raw)
        except DuplicateName:
            raise MalformedAnswer(
                "the token answer names a field twice in one object; which value is meant "
                "cannot be told",
                status=status,
                **_WHERE,
            ) from None
        except ValueError:
            raise MalformedAnswer("the token answer is not JSON", status=status, **_WHERE) from None
        if not isinstance(body, dict):
            raise MalformedAnswer("the token answer is not a JSON object", status=status, **_WHERE)
        access, refresh = body.get("access_token"), body.get("refresh_token")
        for value in (access, refresh):
            if isinstance(value, str):
                self._scrubber.add(value)  # before anything else can print it
        if not isinstance(access, str) or not access.strip():
            raise MalformedAnswer("the token answer has no access_token", status=status, **_WHERE)
        if not _TOKEN_TEXT.match(access):
            # It goes into a header: a CR/LF would split it, non-ASCII would not encode.
            raise MalformedAnswer(
                "the token answer's access_token is not a printable ASCII token",
                status=status,
                **_WHERE,
            )
        if refresh is not None and not (isinstance(refresh, str) and _TOKEN_TEXT.match(refresh)):
            refresh = None  # unusable: renew from the client credentials instead
        renew_at = None
        lifetime = _lifetime(body.get("expires_in"))
        if lifetime > 0:
            # Renew a little before expiry: 30 s, or a tenth of a short lifetime.
            renew_at = self._clock() + lifetime - min(TOKEN_REFRESH_MARGIN, lifetime / 10)
        account_id = body.get("account_id")
        if account_id is not None:
            account_id = answered_uuid(account_id, "token's account_id", **_WHERE)
        named = body.get("external_user_id")
        if user is not None and isinstance(named, str) and named != user:
            # A token for someone else must never act for this user.
            raise MalformedAnswer(
                "the token answer names another user than the one asked for",
                status=status,
                **_WHERE,
            )
        if not isinstance(named, str):
            named = body.get("scope") if isinstance(body.get("scope"), str) else None
        return Token(access, refresh or None, renew_at, account_id, named)


def _lifetime(expires_in: object) -> float:
    """Seconds a token lives, from ``expires_in`` of any shape; 0 when unknown.

    Whatever the server wrote (a string, a negative number, NaN, a 400-digit integer that no
    float holds) ends as a finite number: an absurd one must never stop the run.
    """
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        digits = expires_in.strip()
        expires_in = int(digits) if len(digits) <= 12 else int(MAX_LIFETIME)
    if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool):
        return 0.0
    if isinstance(expires_in, int):
        return float(min(max(expires_in, 0), int(MAX_LIFETIME)))
    if math.isnan(expires_in) or expires_in <= 0:
        return 0.0
    return min(expires_in, MAX_LIFETIME)
