"""When a request may go: retry policy as data, and the ``Pacer`` that composes the gates.

``Pacer`` is the one object the client consults around every attempt (``acquire`` before,
``release`` after) and the executor's scheduler consults before it hands work to a worker
(``try_reserve`` + ``using``), so no worker sleeps on a bucket while another could send.
It composes three small parts, each testable with a fake clock:
``SlidingWindowQuotas`` (per-token quotas, ``quotas.py``), ``RateLearner`` (the rate an
unknown server accepts, ``rate.py``) and ``InFlightCeiling`` (``--concurrency``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from kprov.api.quotas import (
    DOCUMENTED_QUOTAS,
    SHARED_BUCKETS,
    Bucket,
    SlidingWindowQuotas,
    endpoint_of,
    parse_quotas,
)
from kprov.api.rate import POLL, InFlightCeiling, RateLearner
from kprov.errors import Interrupted

__all__ = [
    "DOCUMENTED_QUOTAS",
    "RETRY_STATUSES",
    "SHARED_BUCKETS",
    "Pacer",
    "Reservation",
    "RetryPolicy",
    "endpoint_of",
    "parse_quotas",
    "parse_retry_after",
]

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter (delay = uniform(0, min(cap, base*2^n)))."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_rate_limit_waits: int = 30  # 429s mean "nothing processed": worth more patience
    # Attempts when the connection is refused or the host unresolvable (None: max_attempts);
    # interactive commands use 2, so a wrong URL fails in a second, not after six tries.
    connect_attempts: int | None = None
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def backoff(self, attempt: int) -> float:
        """Delay before retry number *attempt* (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.rng.uniform(0, ceiling)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is accepted too); None if absent or junk."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_millis(value: str | None) -> float:
    """X-Knewton-Rate-Delay (milliseconds) in seconds; 0.0 if absent or junk."""
    try:
        return max(0.0, float(value or 0) / 1000.0)
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class Reservation:
    """A send slot in one bucket, granted by ``Pacer.try_reserve`` to a task not yet started.

    It counts in the bucket's window from the moment it is granted; ``Pacer.using`` gives it
    back if the task ends without sending on it.
    """

    key: Bucket | None
    ticket: int | None = None


@dataclass(frozen=True)
class _Attempt:
    bucket: Bucket | None
    ticket: int | None
    sent_at: float


class Pacer:
    """The one gate around every attempt: quota bucket, learned rate, in-flight ceiling.

    Contract (the client and the executor rely on exactly this):
    - ``acquire(identity, endpoint, cancel=...)`` blocks until this attempt may be sent; it
      raises ``Interrupted`` (without sending) once *cancel* is set, also while it waits.
      A reservation made by ``try_reserve`` and installed with ``using`` on this thread is
      consumed instead of waiting for the bucket.
    - ``release(identity, endpoint, status=..., headers=...)`` after the answer (status None:
      no answer came); frees the in-flight slot, learns from the answer, and returns how many
      seconds the server asked *this* request to wait before it is resent (Retry-After on a
      429/503, X-Knewton-Rate-Delay), 0.0 when it asked nothing. A 429 that gave no wait
      and keeps coming back gets an exponential wait of its own (1, 2, 4 ... s).
    - ``try_reserve(identity, endpoint)``: a ``Reservation`` when the bucket admits a send now,
      else the seconds until it will (never blocks).
    - ``rate_limited_count``: 429 answers seen.

    Order inside ``acquire``: the quota bucket first (holding nothing, so a long quota wait
    blocks no other bucket), then a place in flight, then the rate spacing (milliseconds).
    """

    def __init__(
        self,
        *,
        quotas: Mapping[str, int] | None = None,
        ceiling: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        learner: RateLearner | None = None,
    ) -> None:
        self.quotas = SlidingWindowQuotas(quotas or {})
        self.rate = learner or RateLearner()
        self.ceiling = InFlightCeiling(ceiling)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._local = threading.local()
        self.rate_limited_count = 0

    # ------------------------------------------------------------- dispatcher

    def try_reserve(self, identity: str | None, endpoint: str) -> Reservation | float:
        bucket = self.quotas.bucket(identity, endpoint)
        with self._lock:
            now = self._clock()
            wait = self.quotas.delay(bucket, now)
            if wait > 0:
                return wait
            return Reservation(bucket, self.quotas.reserve(bucket, now))

    def delay(self, identity: str | None, endpoint: str) -> float:
        """Seconds until the bucket admits a send (a hold after a token-limited 429 too)."""
        bucket = self.quotas.bucket(identity, endpoint)
        with self._lock:
            return self.quotas.delay(bucket, self._clock())

    @contextmanager
    def using(self, reservation: Reservation | None) -> Iterator[None]:
        """Let the next ``acquire`` on this thread for the same bucket use *reservation*."""
        self._local.reservation = reservation
        try:
            yield
        finally:
            unused = getattr(self._local, "reservation", None)
            self._local.reservation = None
            if unused is not None:
                with self._lock:
                    self.quotas.cancel(unused.ticket)

    # ----------------------------------------------------------------- client

    def acquire(
        self, identity: str | None, endpoint: str, *, cancel: threading.Event | None = None
    ) -> None:
        _check(cancel)
        bucket = self.quotas.bucket(identity, endpoint)
        reservation = getattr(self._local, "reservation", None)
        if reservation is not None and reservation.key == bucket:
            self._local.reservation = None
            ticket = reservation.ticket
        else:
            ticket = self._wait_for_bucket(bucket, cancel)
        try:
            self.ceiling.enter(cancel)
        except Interrupted:
            self._give_back(ticket)
            raise
        try:
            sent_at = self._wait_for_rate(cancel)
        except Interrupted:
            self.ceiling.leave()
            self._give_back(ticket)
            raise
        self._local.attempt = _Attempt(bucket, ticket, sent_at)

    def release(
        self,
        identity: str | None,
        endpoint: str,
        *,
        status: int | None,
        headers: Mapping[str, str],
    ) -> float:
        attempt: _Attempt | None = getattr(self._local, "attempt", None)
        self._local.attempt = None
        if attempt is not None:
            self.ceiling.leave()
        with self._lock:
            now = self._clock()
            if attempt is None:
                attempt = _Attempt(self.quotas.bucket(identity, endpoint), None, now)
            self.quotas.settle(attempt.ticket, now)
            if status is None:
                return 0.0
            return self._learn(attempt, now, status, headers)

    # --------------------------------------------------------------- internals

    def _learn(
        self, attempt: _Attempt, now: float, status: int, headers: Mapping[str, str]
    ) -> float:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        held = parse_millis(headers.get("X-Knewton-Rate-Delay"))
        if status == 429:
            self.rate_limited_count += 1
            asked = retry_after if retry_after is not None else held
            scope = headers.get("X-Knewton-Rate-Exceeded", "").strip().lower()
            if scope == "token-limited":
                hold = self.quotas.on_token_limited(attempt.bucket, now, asked)
                return asked if attempt.bucket is not None else hold
            return max(asked, self.rate.on_refused(now, attempt.sent_at))
        self.rate.on_accepted(now)
        if status < 400:
            self.quotas.on_success(attempt.bucket)
        if held > 0:  # let through, but held back for going over the IP's rate
            self.rate.on_refused(now, attempt.sent_at, refused=False)
        return (retry_after or 0.0) if status == 503 else 0.0

    def _wait_for_bucket(self, bucket: Bucket | None, cancel: threading.Event | None) -> int | None:
        while True:
            with self._lock:
                now = self._clock()
                wait = self.quotas.delay(bucket, now)
                if wait <= 0:
                    return self.quotas.reserve(bucket, now)
            self._sleep(min(wait, POLL))
            _check(cancel)

    def _wait_for_rate(self, cancel: threading.Event | None) -> float:
        while True:
            with self._lock:
                now = self._clock()
                wait = self.rate.delay(now)
                if wait <= 0:
                    self.rate.take(now)
                    return now
            self._sleep(min(wait, POLL))
            _check(cancel)

    def _give_back(self, ticket: int | None) -> None:
        with self._lock:
            self.quotas.cancel(ticket)


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Interrupted("interrupted: nothing more was sent")
