"""Sending one request safely: pacing, a fresh token at the moment of sending, retries, limits.

Every attempt: wait for the pacer, *then* build the Authorization header (a token never ages
in a queue), check the stop signal, send with a total deadline and a body-size cap, never
follow a redirect. Every wait (backoff, a server's Retry-After) can be interrupted and is
capped. What comes back is an ``Answer`` with its body already read; what did not come back
is a ``NetworkError`` naming ``host:port`` and what happened.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from kprov.api.answers import parse_json
from kprov.api.deadline import Deadline
from kprov.api.errors import (
    MalformedAnswer,
    NetworkError,
    RedirectRefused,
    ServerWaitTooLong,
)
from kprov.api.exchange import Answer, TooBig, asked_wait, read_capped
from kprov.api.failures import WIRE_ERRORS, NoAnswer, cut_short, deadline_passed, describe_failure
from kprov.api.limits import ENV_MAX_SERVER_WAIT, Limits
from kprov.api.pacing import RETRY_STATUSES, Pacer, RetryPolicy, endpoint_of
from kprov.api.scrub import Scrubber, redact
from kprov.api.stall import StallWatch
from kprov.api.urls import parse_endpoint
from kprov.api.wire import Wire
from kprov.errors import Interrupted

log = logging.getLogger("kprov.http")

TOKEN_ENDPOINT = "POST /oauth/token"  # the quota key of the token endpoint (shared per IP)
_WAIT_HEADERS = ("retry-after", "x-knewton-rate-delay")
TOKEN_LOG_EXCERPT = 200  # --debug shows at most this much of a token answer (it may quote one)
WaitObserver = Callable[[str, float], None]  # (what is waited for, seconds; 0 when it ends)
# Each call's URL is checked (and named host:port in messages); a run sends to a few URLs,
# thousands of times each, so a URL's reading is kept (an unsafe one raises, never cached).
_endpoint_of_url = functools.lru_cache(maxsize=1024)(parse_endpoint)


@dataclass
class _Call:
    """One call being sent: what the attempts share."""

    method: str
    path: str
    where: str  # host:port
    endpoint: str  # the quota key: "POST /registrations", "DELETE /registrations/{id}"...
    identity: str | None
    paced: bool
    maybe_applied: bool = False  # an attempt may have been applied (its answer was lost)


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
        self.on_wait: WaitObserver | None = None  # the progress display, told of long waits
        self.stall = StallWatch(self.limits.max_server_wait, clock, ENV_MAX_SERVER_WAIT)
        self.request_count = 0
        self.answered_ok = 0  # 2xx answers: the credential worked (the ledger keeps when)
        self._count_lock = threading.Lock()
        self.wire = Wire(pool_size=pool_size)

    def close(self) -> None:
        self.wire.close()

    # ------------------------------------------------------------------ waits

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Interrupted("interrupted: nothing more was sent")

    def wait(self, seconds: float, what: str = "") -> None:
        """Wait *seconds*, returning early (with Interrupted) once the run is stopped; a wait
        of a second or more for *what* is shown (``on_wait``) while it lasts."""
        observer = self.on_wait if what and seconds >= 1 else None
        if observer is not None:
            observer(what, seconds)
        try:
            if seconds > 0:
                if self.sleep is not None:
                    self.sleep(seconds)
                else:
                    self.cancel.wait(seconds)
        finally:
            if observer is not None:
                observer(what, 0.0)
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
        Whatever stops the call says whether an attempt of it may have been applied
        (``outcome_unknown``): a 429, a 503 or a refused connection prove nothing was done.
        """
        # endpoint_of() reads "/oauth/token" as "/oauth/{id}": name the token bucket here.
        endpoint = TOKEN_ENDPOINT if path == "/oauth/token" else endpoint_of(method, path)
        extra = {**(headers or {})}
        if self.request_label:
            extra["request-label"] = self.request_label
        call = _Call(method, path, _endpoint_of_url(url).where, endpoint, identity, paced)
        try:
            return self._send(call, url, authorize, log_body, extra, body)
        except (Interrupted, ServerWaitTooLong) as stop:
            stop.outcome_unknown = call.maybe_applied
            raise

    def _send(
        self,
        call: _Call,
        url: str,
        authorize: Callable[[], str | None],
        log_body: Any,
        extra: dict[str, str],
        body: dict[str, Any],
    ) -> Answer:
        method, path, where, endpoint = call.method, call.path, call.where, call.endpoint
        attempt = connect_failures = rate_waits = 0
        resent_after_unknown = False
        while True:
            attempt += 1
            self.check_cancel()
            if call.paced:
                self.pacer.acquire(call.identity, endpoint, cancel=self.cancel)
            try:
                auth = authorize()
                self.check_cancel()
                if call.maybe_applied:
                    resent_after_unknown = True
                answer = self._attempt(method, url, path, where, extra, auth, body)
            except Requeue as requeue:  # another thread renews the token: let it have a slot
                self._give_back(call)
                requeue.until()
                attempt -= 1
                continue
            except NoAnswer as failure:
                self._give_back(call)
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
                        outcome_unknown=failure.maybe_applied or call.maybe_applied,
                        hint="Check the network (and any proxy), and that the profile's base "
                        "URL names the API.",
                    ) from None
                call.maybe_applied = call.maybe_applied or failure.maybe_applied
                self.stall.refused(endpoint, f"no answer ({failure.what})")
                self._wait_or_stop(call, self.retry.backoff(attempt), failure.what)
                continue
            except BaseException:
                self._give_back(call)
                raise
            if log.isEnabledFor(logging.DEBUG):
                self._log_exchange(method, path, log_body, answer)
            server_wait = self._settle(answer, call)
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
                self.stall.succeeded(endpoint)
                if 200 <= answer.status < 300:
                    with self._count_lock:
                        self.answered_ok += 1
                return _with_flag(answer, resent_after_unknown)
            self.stall.refused(endpoint, str(answer.status), self._asked_spelling(answer))
            if answer.status == 429:
                attempt -= 1  # nothing was processed: a 429 does not use up an attempt
                rate_waits += 1
                if rate_waits > self.retry.max_rate_limit_waits:
                    return _with_flag(answer, resent_after_unknown)
                self._wait_or_stop(call, server_wait, f"answered {answer.status}")
                continue
            if attempt >= self.retry.max_attempts:
                return _with_flag(answer, resent_after_unknown)
            if answer.status != 503:  # 503 says "not processed"; other 5xx may follow a change
                call.maybe_applied = True
            wait = max(server_wait, self.retry.backoff(attempt))
            self._wait_or_stop(call, wait, f"answered {answer.status}")

    def _give_back(self, call: _Call) -> None:
        """Free the slot of an attempt that got no answer."""
        if call.paced:
            self.pacer.release(call.identity, call.endpoint, status=None, headers={})

    def _wait_or_stop(self, call: _Call, seconds: float, why: str) -> None:
        """Wait before a resend, unless the endpoint's refusals would outlast the budget (the
        pacer's hold on the bucket counts: the resend waits for it too)."""
        held = self.pacer.delay(call.identity, call.endpoint) if call.paced else 0.0
        self.stall.check(
            call.endpoint,
            call.where,
            max(seconds, held),
            method=call.method,
            path=call.path,
            applied=call.maybe_applied,
        )
        self.wait(seconds, f"the server ({call.where} {why} to {call.endpoint})")

    def _asked_spelling(self, answer: Answer) -> str | None:
        """The wait headers of a refusal as the server wrote them, for the stall message."""
        shown = [
            f"{name}: {self.scrubber.clip(answer.headers[name], 24)}"
            for name in ("Retry-After", "X-Knewton-Rate-Delay")
            if name in answer.headers
        ]
        return ", ".join(shown) or None

    def _settle(self, answer: Answer, call: _Call) -> float:
        """Release the pacer; return the wait the server asked, refusing one over the cap.

        A wait over the cap is not shown to the pacer at all: it would pause every worker.
        """
        identity, endpoint, where = call.identity, call.endpoint, call.where
        asked = asked_wait(answer.headers)
        cap = self.limits.max_server_wait
        headers = answer.headers
        if asked > cap:
            headers = {k: v for k, v in headers.items() if k.lower() not in _WAIT_HEADERS}
        server_wait = asked if answer.status in (429, 503) else 0.0
        if call.paced:
            server_wait = max(
                server_wait,
                self.pacer.release(identity, endpoint, status=answer.status, headers=headers),
            )
        if answer.status in RETRY_STATUSES and server_wait > cap:
            why = (
                f"asked kprov to wait {server_wait:.0f} s before resending"
                if asked >= server_wait
                else f"keeps refusing ({answer.status}): the next resend would be "
                f"{server_wait:.0f} s away"
            )
            raise ServerWaitTooLong(
                f"{where} {why}; kprov waits at most {cap:g} s",
                status=answer.status,
                method=call.method,
                path=call.path,
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
                response = self.wire.send(
                    method, url, headers=headers, authorization=auth, timeout=timeout, **body
                )
                try:
                    raw = read_capped(response.iter_content(65536), limits.max_body)
                    short = cut_short(response, method)
                finally:
                    response.close()
        except TooBig:
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
            headers=response.headers,  # case-insensitive already
            body=raw,
            reason=response.reason or "",
        )

    def _log_exchange(self, method: str, path: str, sent: Any, answer: Answer) -> None:
        try:
            shown = json.dumps(redact(parse_json(answer.body)))
        except (ValueError, RecursionError):
            shown = answer.body.decode("utf-8", "replace")
        limit = TOKEN_LOG_EXCERPT if path == "/oauth/token" else 2000
        log.debug(
            "%s %s %s -> %s; answer: %s",
            method,
            path,
            self.scrubber.clip(json.dumps(redact(sent)), 2000) if sent is not None else "",
            answer.status,
            self.scrubber.clip(shown, limit),
        )


def _with_flag(answer: Answer, resent_after_unknown: bool) -> Answer:
    if answer.resent_after_unknown is resent_after_unknown:
        return answer  # the common case: nothing to change, nothing to copy
    return replace(answer, resent_after_unknown=resent_after_unknown)
