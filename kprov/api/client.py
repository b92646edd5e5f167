"""The Knewton v0 API client: one pooled session, tokens, retries, typed errors.

Everything that knows HTTP lives here. Callers get dataclasses from ``models`` and exceptions
from ``errors``; they never see a ``requests.Response``.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from kprov.api.errors import (
    ApiError,
    AuthenticationError,
    NetworkError,
    TokenRefused,
    error_for_status,
)
from kprov.api.models import (
    Account,
    BatchItemResult,
    LearningInstance,
    Registration,
    Token,
)
from kprov.api.pacing import (
    RETRY_STATUSES,
    Pacer,
    RetryPolicy,
    endpoint_of,
)
from kprov.credentials import Secret

MAX_BATCH = 50
TOKEN_REFRESH_MARGIN = 30.0  # seconds before expiry at which a token is renewed proactively
DEFAULT_TIMEOUT = (10.0, 60.0)  # (connect, read) seconds; every request carries one
REGISTRATION_TYPES = ("learner", "instructor")
ADMIN = None  # the `as_user` value meaning "the partner admin's token"

log = logging.getLogger("kprov.http")

_SECRET_KEYS = frozenset(
    {"access_token", "refresh_token", "client_secret", "api_secret", "password", "secret"}
)


def redact(value: Any) -> Any:
    """Copy of a JSON-like value with token and secret fields replaced by '<redacted>'."""
    if isinstance(value, dict):
        return {
            k: "<redacted>" if str(k).lower() in _SECRET_KEYS else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _no_answer_reason(exc: Exception) -> tuple[str, bool]:
    """Why no answer came, and whether a connection was made (the request may have arrived)."""
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out", False
    if isinstance(reason, NameResolutionError):
        return "host name not resolved", False
    if isinstance(reason, NewConnectionError):
        refused = isinstance(reason.__cause__, ConnectionRefusedError)
        return ("connection refused" if refused else "cannot connect"), False
    return type(exc).__name__, True


def _error_fields(response: requests.Response) -> tuple[str, str | None]:
    """(message, error_id) from an error body, tolerating non-JSON and odd shapes."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:200] or response.reason or "no message"), None
    if isinstance(body, dict):
        message = body.get("message") or body.get("error_message") or body.get("error")
        error_id = body.get("error_id")
        return (str(message) if message else response.reason or "no message"), (
            str(error_id) if error_id else None
        )
    return str(body)[:200], None


class KnewtonClient:
    """A thread-safe client for the documented v0 endpoints.

    ``as_user`` on a method selects whose token is used: ``None`` is the partner admin, an
    external user id is that user's own token (the 2-legged ``scope`` flow), cached per user.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        api_secret: Secret,
        token_url: str | None = None,
        admin_external_id: str | None = None,
        pool_size: int = 8,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        cancel: threading.Event | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        request_label: str | None = None,
        test_accounts: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url or f"{self.base_url}/oauth/token"
        self._basic = Secret(
            "Basic " + base64.b64encode(f"{api_key}:{api_secret.reveal()}".encode()).decode()
        )
        self._admin_scope = admin_external_id
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self.pacer = pacer or Pacer(clock=clock, sleep=sleep)
        self.cancel = cancel or threading.Event()  # set: no new request is sent
        self._request_label = request_label
        self._test_accounts = test_accounts
        self._tokens: dict[str | None, Token] = {}
        self._token_locks: dict[str | None, threading.Lock] = {}
        self._token_locks_guard = threading.Lock()
        self.request_count = 0
        self._count_lock = threading.Lock()
        self._calls = threading.local()  # per-thread facts about the call in progress

        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(1, pool_size), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "kprov"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> KnewtonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- tokens

    def _token_lock(self, user: str | None) -> threading.Lock:
        with self._token_locks_guard:
            return self._token_locks.setdefault(user, threading.Lock())

    def token_for(self, user: str | None = ADMIN) -> Token:
        """A valid token for the admin (None) or a user; one mint per user, however many threads."""
        token = self._tokens.get(user)
        if token and not self._expiring(token):
            return token
        with self._token_lock(user):
            token = self._tokens.get(user)
            if token and not self._expiring(token):
                return token
            token = self._renew(user, token)
            self._tokens[user] = token
            return token

    def _expiring(self, token: Token) -> bool:
        return token.renew_at is not None and self._clock() >= token.renew_at

    def _invalidate(self, user: str | None, stale: Token) -> None:
        """Drop *stale* after a 401 so the next token_for() refreshes it (once, not per thread)."""
        with self._token_lock(user):
            if self._tokens.get(user) is stale:
                self._tokens[user] = Token(
                    access_token="",
                    refresh_token=stale.refresh_token,
                    renew_at=0.0,
                    account_id=stale.account_id,
                )

    def _renew(self, user: str | None, old: Token | None) -> Token:
        if old is not None and old.refresh_token:
            try:
                return self._token_request(
                    {"grant_type": "refresh_token", "refresh_token": old.refresh_token}, user
                )
            except (AuthenticationError, TokenRefused):
                pass  # refresh token expired too: start again from the client credentials
        form = {"grant_type": "client_credentials"}
        scope = user if user is not None else self._admin_scope
        if scope:
            form["scope"] = scope
        return self._token_request(form, user)

    def _token_request(self, form: dict[str, str], user: str | None) -> Token:
        response = self._send(
            "POST",
            self.token_url,
            path="/oauth/token",
            headers={"Authorization": self._basic.reveal()},
            identity=user,
            data=form,
            log_body=redact(form),
        )
        if response.status_code >= 400:
            message, error_id = _error_fields(response)
            if user is None and response.status_code in (400, 401, 403):
                raise AuthenticationError(
                    message,
                    status=response.status_code,
                    error_id=error_id,
                    method="POST",
                    path="/oauth/token",
                    hint="The API key or secret was refused: check the profile's api_key "
                    "and run `kprov auth login` again (or fix KPROV_API_SECRET).",
                )
            cls = (
                TokenRefused
                if user is not None and response.status_code < 500
                else (error_for_status(response.status_code))
            )
            raise cls(
                message,
                status=response.status_code,
                error_id=error_id,
                method="POST",
                path="/oauth/token",
            )
        body = self._json(response, "POST", "/oauth/token")
        access = body.get("access_token")
        if not access:
            raise ApiError(
                "token response has no access_token",
                method="POST",
                path="/oauth/token",
                status=response.status_code,
            )
        expires_in = body.get("expires_in")
        renew_at = None
        if isinstance(expires_in, (int, float)) and expires_in > 0:
            # Renew a little before expiry: 30 s, or a tenth of a short lifetime.
            margin = min(TOKEN_REFRESH_MARGIN, float(expires_in) / 10)
            renew_at = self._clock() + float(expires_in) - margin
        account_id = body.get("account_id")
        return Token(
            access_token=str(access),
            refresh_token=body.get("refresh_token"),
            renew_at=renew_at,
            account_id=str(account_id) if account_id else None,
        )

    # ------------------------------------------------------------- transport

    def _send(
        self,
        method: str,
        url: str,
        *,
        path: str,
        headers: dict[str, str],
        identity: str | None = ADMIN,
        log_body: Any = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send with pacing and retries on 429/5xx/connection errors; returns the last answer.

        Raises NetworkError when no answer came back after every attempt.
        """
        if self._request_label:
            headers = {**headers, "request-label": self._request_label}
        endpoint = endpoint_of(method, path)
        attempt = 0
        rate_limit_waits = 0
        self._calls.resent_after_unknown = False

        while True:
            attempt += 1
            self.pacer.acquire(identity, endpoint, cancel=self.cancel)
            started = self._clock()
            with self._count_lock:
                self.request_count += 1
            try:
                response = self.session.request(
                    method, url, headers=headers, timeout=self._timeout, **kwargs
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                self.pacer.release(identity, endpoint, status=None, headers={})
                log.debug("%s %s -> no answer (%s)", method, path, type(exc).__name__)
                why, connected = _no_answer_reason(exc)
                limit = self._retry.max_attempts
                if not connected and self._retry.connect_attempts is not None:
                    limit = min(limit, self._retry.connect_attempts)
                if attempt >= limit:
                    raise NetworkError(
                        f"no answer from {_host_port(url)} after {attempt} attempt(s): {why}",
                        method=method,
                        path=path,
                        outcome_unknown=True,
                        hint="Check the network, the proxy and the profile's base URL "
                        "(`kprov config show`).",
                    ) from None
                if not isinstance(exc, requests.exceptions.ConnectTimeout):
                    self._calls.resent_after_unknown = True  # it may have been applied
                self._sleep(self._retry.backoff(attempt))
                continue

            status = response.status_code
            server_wait = self.pacer.release(
                identity, endpoint, status=status, headers=response.headers
            )
            if log.isEnabledFor(logging.DEBUG):
                self._log_exchange(method, path, log_body, response, self._clock() - started)
            if status not in RETRY_STATUSES:
                return response
            if status == 429:
                # Nothing was processed: resend unchanged. A 429 does not use up an attempt.
                attempt -= 1
                rate_limit_waits += 1
                if rate_limit_waits > self._retry.max_rate_limit_waits:
                    return response
                if server_wait:
                    self._sleep(server_wait)
                continue
            if attempt >= self._retry.max_attempts:
                return response
            if status != 503:  # 503 says "not processed"; other 5xx may follow a change
                self._calls.resent_after_unknown = True
            self._sleep(max(server_wait, self._retry.backoff(attempt)))

    def _log_exchange(
        self,
        method: str,
        path: str,
        body: Any,
        response: requests.Response,
        elapsed: float,
    ) -> None:
        try:
            answer: Any = redact(response.json())
        except ValueError:
            answer = response.text[:500]
        log.debug(
            "%s %s %s -> %s in %.0f ms; answer: %s",
            method,
            path,
            json.dumps(body)[:2000] if body is not None else "",
            response.status_code,
            elapsed * 1000,
            json.dumps(answer)[:2000],
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        as_user: str | None = ADMIN,
        body: Any = None,
        extra_headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """An authenticated call; a 401 refreshes (or re-acquires) the token once, transparently."""
        refreshed = False
        while True:
            token = self.token_for(as_user)
            headers = {"Authorization": f"Bearer {token.access_token}", **(extra_headers or {})}
            kwargs: dict[str, Any] = {}
            if body is not None:
                kwargs["json"] = body
            response = self._send(
                method,
                self.base_url + path,
                path=path,
                headers=headers,
                identity=as_user,
                log_body=body,
                **kwargs,
            )
            if response.status_code == 401 and not refreshed:
                refreshed = True
                self._invalidate(as_user, token)
                continue
            if response.status_code >= 400:
                message, error_id = _error_fields(response)
                cls = error_for_status(response.status_code)
                raise cls(
                    message,
                    status=response.status_code,
                    error_id=error_id,
                    method=method,
                    path=path,
                    outcome_unknown=response.status_code >= 500,
                )
            return response

    @staticmethod
    def _json(response: requests.Response, method: str, path: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise ApiError(
                "answer is not JSON", status=response.status_code, method=method, path=path
            ) from None
        if not isinstance(body, dict):
            raise ApiError(
                "answer is not a JSON object",
                status=response.status_code,
                method=method,
                path=path,
            )
        return body

    def _creation_headers(self) -> dict[str, str]:
        return {"X-Knewton-Test": "true"} if self._test_accounts else {}

    # -------------------------------------------------------------- accounts

    def create_account(self, external_user_id: str) -> Account:
        response = self._request(
            "POST",
            "/accounts",
            body={"external_user_id": external_user_id},
            extra_headers=self._creation_headers(),
        )
        return Account.from_json(self._json(response, "POST", "/accounts"))

    def get_account(self, account_id: str) -> Account:
        path = f"/accounts/{account_id}"
        return Account.from_json(self._json(self._request("GET", path), "GET", path))

    def current_account(self, as_user: str | None = ADMIN) -> Account:
        response = self._request("GET", "/accounts/current", as_user=as_user)
        return Account.from_json(self._json(response, "GET", "/accounts/current"))

    def delete_account(self, account_id: str) -> None:
        self._request("DELETE", f"/accounts/{account_id}")

    def account_id_of(self, external_user_id: str) -> str:
        """Recover the account id of an external id: the user's own token, then its account.

        The token response's ``account_id`` is used when present, saving a GET (reads have the
        smallest quota); otherwise ``GET /accounts/current`` under that user's own token.
        Raises TokenRefused when no account has that external id. The user's token is not kept:
        recovery touches each user once, and a million cached tokens would be a leak.
        """
        try:
            token = self.token_for(external_user_id)
            if token.account_id:
                return token.account_id
            return self.current_account(as_user=external_user_id).id
        finally:
            self.forget_user(external_user_id)

    def forget_user(self, external_user_id: str) -> None:
        """Drop a user's cached token."""
        with self._token_locks_guard:
            self._tokens.pop(external_user_id, None)
            self._token_locks.pop(external_user_id, None)

    def batch_create_accounts(self, external_user_ids: Iterable[str]) -> list[BatchItemResult]:
        """One POST /batch of at most 50 account creations; results in request order."""
        ids = list(external_user_ids)
        if not ids:
            return []
        if len(ids) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} requests, got {len(ids)}")
        body = {
            "requests": [
                {"method": "post", "relative_url": "/accounts", "body": {"external_user_id": i}}
                for i in ids
            ]
        }
        response = self._request(
            "POST", "/batch", body=body, extra_headers=self._creation_headers()
        )
        payload = self._json(response, "POST", "/batch")
        items = payload.get("responses")
        if not isinstance(items, list) or len(items) != len(ids):
            raise ApiError(
                f"batch answer has {len(items) if isinstance(items, list) else 'no'} "
                f"responses for {len(ids)} requests",
                status=response.status_code,
                method="POST",
                path="/batch",
                outcome_unknown=True,
            )
        return [self._batch_item(ext, item) for ext, item in zip(ids, items, strict=True)]

    @staticmethod
    def _batch_item(external_user_id: str, item: Any) -> BatchItemResult:
        if not isinstance(item, dict):
            return BatchItemResult(external_user_id, 0, error_message="malformed batch item")
        code = item.get("code")
        status = int(code) if isinstance(code, (int, str)) and str(code).isdigit() else 0
        body = item.get("body")
        if not isinstance(body, dict):
            body = {}

        account_id = body.get("account_id") or body.get("id")
        if 200 <= status < 300 and account_id:
            return BatchItemResult(external_user_id, status, account_id=str(account_id))
        message = body.get("error_message") or body.get("message") or f"item failed ({status})"
        return BatchItemResult(external_user_id, status, error_message=str(message))

    # ---------------------------------------------------- learning instances

    def create_learning_instance(
        self,
        *,
        graph_id: str,
        name: str,
        start_date: str | None = None,
        end_date: str | None = None,
    ) -> LearningInstance:
        body: dict[str, Any] = {"graph_id": graph_id, "name": name}
        if start_date:
            body["start_date"] = start_date
        if end_date:
            body["end_date"] = end_date
        response = self._request("POST", "/learning-instances", body=body)
        instance = LearningInstance.from_json(self._json(response, "POST", "/learning-instances"))
        if getattr(self._calls, "resent_after_unknown", False):
            # An earlier attempt may have created one too; the API cannot list instances.
            instance = replace(instance, possible_duplicate=True)
        return instance

    def get_learning_instance(self, instance_id: str) -> LearningInstance:
        path = f"/learning-instances/{instance_id}"
        return LearningInstance.from_json(self._json(self._request("GET", path), "GET", path))

    def delete_learning_instance(self, instance_id: str) -> None:
        self._request("DELETE", f"/learning-instances/{instance_id}")

    # --------------------------------------------------------- registrations

    def create_registration(
        self,
        *,
        registration_type: str,
        account_id: str,
        learning_instance_id: str,
        as_user: str | None = ADMIN,
    ) -> Registration:
        """Register an account. Instructors: admin token; learners: an instructor's token."""
        if registration_type not in REGISTRATION_TYPES:
            raise ValueError(f"registration type must be one of {REGISTRATION_TYPES}")
        body = {
            "type": registration_type,
            "account_id": account_id,
            "learning_instance_id": learning_instance_id,
        }
        response = self._request("POST", "/registrations", body=body, as_user=as_user)
        return Registration.from_json(self._json(response, "POST", "/registrations"))

    def get_registration(self, registration_id: str, as_user: str | None = ADMIN) -> Registration:
        path = f"/registrations/{registration_id}"
        response = self._request("GET", path, as_user=as_user)
        return Registration.from_json(self._json(response, "GET", path))

    def delete_registration(self, registration_id: str, as_user: str | None = ADMIN) -> None:
        self._request("DELETE", f"/registrations/{registration_id}", as_user=as_user)
