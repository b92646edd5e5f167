"""Sending one request safely: pacing, a fresh token at the moment of sending, retries, limits.

Every attempt: wait for the pacer, *then* build the Authorization header (a token never ages
in a queue), check the stop signal, send with a total deadline and a body-size cap, never
follow a redirect. Every wait (backoff, a server's Retry-After) can be interrupted and is
capped. What comes back is an ``Answer`` with its body already read; what did not come back
is a ``NetworkError`` naming ``host:port`` and what happened.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

from kprov.api.answers import parse_json
from kprov.api.deadline import Deadline, DeadlineAdapter
from kprov.api.errors import (
    MalformedAnswer,
    NetworkError,
    RedirectRefused,
    ServerWaitTooLong,
)
from kprov.api.failures import WIRE_ERRORS, NoAnswer, cut_short, deadline_passed, describe_failure
from kprov.api.pacing import RETRY_STATUSES, Pacer, RetryPolicy, endpoint_of, parse_retry_after
from kprov.api.scrub import Scrubber, redact
from kprov.api.urls import parse_endpoint
from kprov.errors import ConfigError, Interrupted

log = logging.getLogger("kprov.http")

ENV_MAX_SERVER_WAIT = "KPROV_MAX_SERVER_WAIT"
ENV_REQUEST_DEADLINE = "KPROV_REQUEST_DEADLINE"
TOKEN_ENDPOINT = "POST /oauth/token"  # the quota key of the token endpoint (shared per IP)
_WAIT_HEADERS = ("retry-after", "x-knewton-rate-delay")


@dataclass(frozen=True)
class Limits:
    """Time and size bounds of every request (seconds, bytes)."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # silence allowed between two received bytes
    deadline: float = 60.0  # connect + headers + whole body, per attempt
    max_body: int = 16 * 1024 * 1024
    max_server_wait: float = 120.0  # a longer Retry-After / rate delay stops the call

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Limits:
        """KPROV_REQUEST_DEADLINE and KPROV_MAX_SERVER_WAIT (seconds) over the defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for name, attr in (
            (ENV_REQUEST_DEADLINE, "deadline"),
            (ENV_MAX_SERVER_WAIT, "max_server_wait"),
        ):
            raw = env.get(name, "").strip()
            if raw:
                try:
                    values[attr] = float(raw)
                except ValueError:
                    values[attr] = -1.0
                if not values[attr] > 0:
                    raise ConfigError(f"{name} must be a number of seconds above 0, not {raw!r}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer, body read (within the cap)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    reason: str = ""
    resent_after_unknown: bool = False  # an earlier attempt of this call may have been applied

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


class _HeaderAuth(requests.auth.AuthBase):
    """Sets Authorization; passing auth at all also stops requests reading ~/.netrc."""

    def __init__(self, value: str | None) -> None:
        self.value = value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.value:
            request.headers["Authorization"] = self.value
        return request


class Requeue(Exception):
    """Raised by an authorize step that cannot have a token now without waiting on a thread
    that may need this slot: the attempt gives its slot back, waits ``until()`` that thread is
    done, and queues again."""

    def __init__(self, until: Callable[[], None]) -> None:
        super().__init__("requeue")
        self.until = until


class Transport:
    """One pooled session and the rules every attempt follows; shared by all threads."""

    def __init__(
        self,
        *,
        pacer: Pacer,
        scrubber: Scrubber,
        retry: RetryPolicy | None = None,
        limits: Limits | None = None,
        cancel: threading.Event | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        request_label: str | None = None,
        pool_size: int = 8,
    ) -> None:
        self.pacer = pacer
        self.scrubber = scrubber
        self.retry = retry or RetryPolicy()
        self.limits = limits or Limits()
        self.cancel = cancel or threading.Event()
        self.sleep = sleep  # None: wait on *cancel*, so Ctrl-C ends every wait at once
        self.clock = clock
        self.request_label = request_label
        self.request_count = 0
        self.answered_ok = 0  # 2xx answers: the credential worked (the ledger keeps when)
        self._count_lock = threading.Lock()
        self.session = requests.Session()
        adapter = DeadlineAdapter(pool_connections=2, pool_maxsize=max(1, pool_size), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "kprov"

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------------ waits

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Interrupted("interrupted: nothing more was sent")

    def wait(self, seconds: float) -> None:
        """Wait *seconds*, returning early (with Interrupted) once the run is stopped."""
        if seconds > 0:
            if self.sleep is not None:
                self.sleep(seconds)
            else:
                self.cancel.wait(seconds)
        self.check_cancel()

    # ------------------------------------------------------------------- send

    def send(
        self,
        method: str,
        url: str,
        *,
        path: str,
        identity: str | None,
        authorize: Callable[[], str | None],
        paced: bool = True,
        log_body: Any = None,
        headers: Mapping[str, str] | None = None,
        **body: Any,
    ) -> Answer:
        """Send until an answer that is not worth retrying; 3xx raise RedirectRefused.

        *authorize* is called after the pacer admitted the attempt and returns the
        Authorization value. *paced* False skips the pacer (a token renewal made while this
        thread already holds a slot: asking for a second one could deadlock the pool).
        """
        # endpoint_of() reads "/oauth/token" as "/oauth/{id}": name the token bucket here.
        endpoint = TOKEN_ENDPOINT if path == "/oauth/token" else endpoint_of(method, path)
        where = parse_endpoint(url).where
        extra = {**(headers or {})}
        if self.request_label:
            extra["request-label"] = self.request_label
        attempt = connect_failures = rate_waits = 0
        resent_after_unknown = maybe_applied = False

        def give_back() -> None:  # the slot of an attempt that got no answer
            if paced:
                self.pacer.release(identity, endpoint, status=None, headers={})

        while True:
            attempt += 1
            self.check_cancel()
            if paced:
                self.pacer.acquire(identity, endpoint, cancel=self.cancel)
            try:
                auth = authorize()
                self.check_cancel()
                if maybe_applied:
                    resent_after_unknown = True
                answer = self._attempt(method, url, path, where, extra, auth, body)
            except Requeue as requeue:  # another thread renews the token: let it have a slot
                give_back()
                requeue.until()
                attempt -= 1
                continue
            except NoAnswer as failure:
                give_back()
                connect_failures += failure.connecting
                log.debug("%s %s -> no answer (%s)", method, path, failure.what)
                limit = self.retry.max_attempts
                if failure.connecting and self.retry.connect_attempts:
                    limit = min(limit, self.retry.connect_attempts)
                tries = connect_failures if failure.connecting else attempt
                if not failure.retry or tries >= limit:
                    raise NetworkError(
                        f"no answer from {where}: {failure.what} "
                        f"({attempt} attempt{'s' if attempt > 1 else ''})",
                        method=method,
                        path=path,
                        outcome_unknown=failure.maybe_applied or maybe_applied,
                        hint="Check the network (and any proxy), and that the profile's base "
                        "URL names the API.",
                    ) from None
                maybe_applied = maybe_applied or failure.maybe_applied
                self.wait(self.retry.backoff(attempt))
                continue
            except BaseException:
                give_back()
                raise
            if log.isEnabledFor(logging.DEBUG):
                self._log_exchange(method, path, log_body, answer)
            server_wait = self._settle(answer, identity, endpoint, paced, where, method, path)
            if 300 <= answer.status < 400:
                location = self.scrubber.clip(answer.headers.get("Location", "nowhere"), 200)
                raise RedirectRefused(
                    f"the API answered {answer.status} -> {location}; kprov does not follow "
                    "redirects with credentials",
                    status=answer.status,
                    method=method,
                    path=path,
                    hint="Set the profile's base URL (or token URL) to where the API really is.",
                )
            if answer.status not in RETRY_STATUSES:
                if 200 <= answer.status < 300:
                    with self._count_lock:
                        self.answered_ok += 1
                return _with_flag(answer, resent_after_unknown)
            if answer.status == 429:
                attempt -= 1  # nothing was processed: a 429 does not use up an attempt
                rate_waits += 1
                if rate_waits > self.retry.max_rate_limit_waits:
                    return _with_flag(answer, resent_after_unknown)
                self.wait(server_wait)
                continue
            if attempt >= self.retry.max_attempts:
                return _with_flag(answer, resent_after_unknown)
            if answer.status != 503:  # 503 says "not processed"; other 5xx may follow a change
                maybe_applied = True
            self.wait(max(server_wait, self.retry.backoff(attempt)))

    def _settle(
        self,
        answer: Answer,
        identity: str | None,
        endpoint: str,
        paced: bool,
        where: str,
        method: str,
        path: str,
    ) -> float:
        """Release the pacer; return the wait the server asked, refusing one over the cap.

        A wait over the cap is not shown to the pacer at all: it would pause every worker.
        """
        asked = asked_wait(answer.headers)
        cap = self.limits.max_server_wait
        headers = answer.headers
        if asked > cap:
            headers = {k: v for k, v in headers.items() if k.lower() not in _WAIT_HEADERS}
        server_wait = asked if answer.status in (429, 503) else 0.0
        if paced:
            server_wait = max(
                server_wait,
                self.pacer.release(identity, endpoint, status=answer.status, headers=headers),
            )
        if answer.status in RETRY_STATUSES and server_wait > cap:
            raise ServerWaitTooLong(
                f"{where} asked kprov to wait {server_wait:.0f} s before "
                f"resending; kprov waits at most {cap:.0f} s",
                status=answer.status,
                method=method,
                path=path,
                hint=f"Try again later, or raise {ENV_MAX_SERVER_WAIT} (seconds).",
            )
        return server_wait

    def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        where: str,
        headers: dict[str, str],
        auth: str | None,
        body: dict[str, Any],
    ) -> Answer:
        with self._count_lock:
            self.request_count += 1
        limits = self.limits
        timeout = (
            min(limits.connect_timeout, limits.deadline),
            min(limits.read_timeout, limits.deadline),
        )
        started = self.clock()
        deadline = Deadline(limits.deadline)
        try:
            with deadline:
                response = self.session.request(
                    method,
                    url,
                    headers=headers,
                    auth=_HeaderAuth(auth),
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                    **body,
                )
                try:
                    raw = _read_capped(response.iter_content(65536), limits.max_body)
                    short = cut_short(response, method)
                finally:
                    response.close()
        except _TooBig:
            raise MalformedAnswer(
                f"the answer from {where} is larger than {limits.max_body} bytes",
                method=method,
                path=path,
            ) from None
        except WIRE_ERRORS as exc:
            late = deadline.expired or self.clock() - started >= limits.deadline - 0.05
            raise describe_failure(exc, late, limits.deadline) from None
        if deadline.expired:
            # The watchdog shut the socket, and http.client reads that end-of-file as the end
            # of the headers (or of a body without Content-Length), raising nothing: what
            # arrived is a fragment, never an answer to parse.
            raise deadline_passed(limits.deadline)
        if short is not None:
            raise short
        return Answer(
            status=response.status_code,
            headers=CaseInsensitiveDict(response.headers),
            body=raw,
            reason=response.reason or "",
        )

    def _log_exchange(self, method: str, path: str, sent: Any, answer: Answer) -> None:
        try:
            shown = json.dumps(redact(parse_json(answer.body)))
        except (ValueError, RecursionError):
            shown = answer.body.decode("utf-8", "replace")
        log.debug(
            "%s %s %s -> %s; answer: %s",
            method,
            path,
            self.scrubber.clip(json.dumps(redact(sent)), 2000) if sent is not None else "",
            answer.status,
            self.scrubber.clip(shown, 2000),
        )


def asked_wait(headers: Mapping[str, str]) -> float:
    """Seconds the server asked before a resend: Retry-After, or X-Knewton-Rate-Delay (ms)."""
    retry_after = parse_retry_after(headers.get("Retry-After")) or 0.0
    delay = parse_retry_after(headers.get("X-Knewton-Rate-Delay"))
    return max(retry_after, (delay or 0.0) / 1000.0)


class _TooBig(Exception):
    pass


def _read_capped(chunks: Iterator[bytes], cap: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > cap:
            raise _TooBig
        parts.append(chunk)
    return b"".join(parts)


def _with_flag(answer: Answer, resent_after_unknown: bool) -> Answer:
    return replace(answer, resent_after_unknown=resent_after_unknown)
