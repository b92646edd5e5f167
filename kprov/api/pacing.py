"""When a request may go: retry policy as data, quota buckets, the in-flight ceiling.

``Pacer`` is the one object the client consults around every attempt (``acquire`` before,
``release`` after) and the executor's scheduler consults before it hands work to a worker
(``try_reserve`` + ``using``), so no worker sleeps on a bucket while another could send.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

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


class ConcurrencyWindow:
    """Shared gate in front of every request: global pauses and adaptive concurrency.

    - A 429 with Retry-After, or one that limits the IP or the partner (not just one token),
      pauses *every* worker: the others would only hit the same limit.
    - The number of requests in flight adapts (AIMD): halved on a 429, grown by about one per
      round of successes, never above the ``--concurrency`` ceiling.
    """

    def __init__(
        self,
        *,
        ceiling: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slot_free = threading.Condition(self._lock)
        self._paused_until = 0.0
        self._ceiling = float(ceiling) if ceiling else math.inf
        self._window = self._ceiling
        self._in_flight = 0
        self._global_strikes = 0
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self.rate_limited_count = 0

    @property
    def window(self) -> float:
        return self._window

    def pause_all(self, seconds: float) -> None:
        """Make every worker wait *seconds* from now (a later pause extends, never shortens)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def back_off_all(self) -> float:
        """Exponential pause for everyone after an IP- or partner-wide 429; returns it."""
        with self._lock:
            self._global_strikes += 1
            delay = min(self._backoff_cap, self._backoff_base * 2 ** (self._global_strikes - 1))
            self._paused_until = max(self._paused_until, self._clock() + delay)
        return delay

    def wait_turn(self) -> None:
        """Block until no global pause is in force."""
        while True:
            with self._lock:
                remaining = self._paused_until - self._clock()
            if remaining <= 0:
                return
            self._sleep(remaining)

    def enter(self) -> None:
        """Wait out any global pause, then for a free in-flight slot."""
        self.wait_turn()
        if self._ceiling == math.inf:
            with self._lock:
                self._in_flight += 1
            return
        with self._slot_free:
            while self._in_flight >= max(1, int(self._window)):
                self._slot_free.wait(0.5)
            self._in_flight += 1

    def leave(self, *, rate_limited: bool = False) -> None:
        with self._slot_free:
            self._in_flight -= 1
            if rate_limited:
                self.rate_limited_count += 1
                if self._ceiling != math.inf:
                    self._window = max(1.0, self._window / 2)
            else:
                self._global_strikes = 0
                if self._window < self._ceiling:
                    self._window = min(self._ceiling, self._window + 1.0 / self._window)
            self._slot_free.notify_all()


# The documented per-minute quotas, per access token and endpoint (rate limits page).
DOCUMENTED_QUOTAS: dict[str, int] = {
    "POST /accounts": 750,
    "POST /batch": 90,
    "POST /registrations": 375,
    "DELETE /registrations": 375,
    "POST /learning-instances": 750,
    "DELETE /accounts": 150,
    "GET": 15,  # every GET
    "POST /oauth/token": 6000,  # 100 token requests per second per IP: one shared bucket
}
SHARED_BUCKETS = frozenset({"POST /oauth/token"})


def endpoint_of(method: str, path: str) -> str:
    """'DELETE /registrations/abc' -> 'DELETE /registrations/{id}' (quota keys)."""
    parts = path.split("/")
    if len(parts) > 2 and parts[2] != "current":
        path = "/".join([*parts[:2], "{id}", *parts[3:]])
    return f"{method.upper()} {path}"


def parse_quotas(spec: str) -> dict[str, int]:
    """'off' -> {}; 'documented' -> the documented quotas; 'POST /batch=90,GET=15' -> those."""
    spec = spec.strip()
    if spec.lower() in ("off", "none", "0"):
        return {}
    if spec.lower() in ("", "documented", "default", "knewton"):
        return dict(DOCUMENTED_QUOTAS)
    quotas = dict(DOCUMENTED_QUOTAS)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, _, value = part.rpartition("=")
        if not key or not value.strip().isdigit() or int(value) <= 0:
            raise ValueError(f"rate limit {part!r} is not 'METHOD /path=PER_MINUTE'")
        quotas[" ".join(key.split())] = int(value)
    return quotas


class QuotaLimiter:
    """Paces each (token, endpoint) pair at its per-minute quota, evenly, never above it.

    Requests are given slots ``60/quota`` seconds apart (plus a small safety margin), so any
    minute-long window holds at most the quota: the API never has a reason to answer 429 in
    steady state. A ``token-limited`` 429 pushes that bucket back and slows it a little; the
    pace recovers towards the quota as requests succeed.
    """

    SAFETY = 1.02

    def __init__(
        self,
        quotas: Mapping[str, int],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.quotas = dict(quotas)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next: dict[tuple[str | None, str], float] = {}
        self._slowdown: dict[tuple[str | None, str], float] = {}

    def quota_of(self, endpoint: str) -> int | None:
        return self.quotas.get(endpoint) or self.quotas.get(endpoint.split(" ", 1)[0])

    def interval(self, endpoint: str) -> float | None:
        quota = self.quota_of(endpoint)
        return None if not quota else 60.0 / quota * self.SAFETY

    def key(self, identity: str | None, endpoint: str) -> tuple[str | None, str]:
        """The bucket a request counts against."""
        if endpoint in SHARED_BUCKETS:
            return ("*", endpoint)
        if endpoint not in self.quotas and endpoint.split(" ", 1)[0] in self.quotas:
            return (identity, endpoint.split(" ", 1)[0])
        return (identity, endpoint)

    def acquire(self, identity: str | None, endpoint: str) -> None:
        """Wait for this token's next slot on this endpoint."""
        base = self.interval(endpoint)
        if base is None:
            return
        key = self.key(identity, endpoint)
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(key, now))
            self._next[key] = slot + base * self._slowdown.get(key, 1.0)
        if slot > now:
            self._sleep(slot - now)

    def on_success(self, identity: str | None, endpoint: str) -> None:
        key = self.key(identity, endpoint)
        with self._lock:
            factor = self._slowdown.get(key)
            if factor is not None:
                factor = max(1.0, factor - 0.02)
                if factor == 1.0:
                    del self._slowdown[key]
                else:
                    self._slowdown[key] = factor

    def on_token_limited(self, identity: str | None, endpoint: str, delay: float) -> None:
        """The API says this token is over its quota: back off this bucket only."""
        base = self.interval(endpoint) or 1.0
        key = self.key(identity, endpoint)
        with self._lock:
            factor = min(4.0, self._slowdown.get(key, 1.0) * 1.25)
            self._slowdown[key] = factor
            self._next[key] = max(self._next.get(key, 0.0), self._clock() + max(delay, base * 2))

    def delay(self, identity: str | None, endpoint: str) -> float:
        """Seconds until this bucket admits a send; 0 when one may go now. Reserves nothing."""
        if self.interval(endpoint) is None:
            return 0.0
        key = self.key(identity, endpoint)
        with self._lock:
            return max(0.0, self._next.get(key, 0.0) - self._clock())


@dataclass(frozen=True)
class Reservation:
    """A send slot in one bucket, granted by ``Pacer.try_reserve`` to a task not yet started."""

    key: tuple[str | None, str]


class Pacer:
    """The one gate around every attempt: quota bucket, (learned) rate, in-flight ceiling.

    Contract (the client and the executor rely on exactly this):
    - ``acquire(identity, endpoint, cancel=...)`` blocks until this attempt may be sent; it
      raises ``Interrupted`` (without sending) once *cancel* is set, also while it waits.
      A reservation made by ``try_reserve`` and installed with ``using`` on this thread is
      consumed instead of waiting for the bucket.
    - ``release(identity, endpoint, status=..., headers=...)`` after the answer (status None:
      no answer came); frees the in-flight slot, learns from the answer, and returns how many
      seconds the server asked *this* request to wait before it is resent (Retry-After on a
      429/503, X-Knewton-Rate-Delay), 0.0 when it asked nothing.
    - ``try_reserve(identity, endpoint)``: a ``Reservation`` when the bucket admits a send now,
      else the seconds until it will (never blocks).
    - ``rate_limited_count``: 429 answers seen.
    """

    def __init__(
        self,
        *,
        quotas: Mapping[str, int] | None = None,
        ceiling: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limiter = QuotaLimiter(quotas or {}, clock=clock, sleep=sleep)
        self.window = ConcurrencyWindow(ceiling=ceiling, clock=clock, sleep=sleep)
        self._local = threading.local()

    @property
    def rate_limited_count(self) -> int:
        return self.window.rate_limited_count

    def try_reserve(self, identity: str | None, endpoint: str) -> Reservation | float:
        wait = self.limiter.delay(identity, endpoint)
        if wait > 0:
            return wait
        self.limiter.acquire(identity, endpoint)  # admits at once: the bucket was free
        return Reservation(self.limiter.key(identity, endpoint))

    @contextmanager
    def using(self, reservation: Reservation | None) -> Iterator[None]:
        """Let the next ``acquire`` on this thread for the same bucket use *reservation*."""
        self._local.reservation = reservation
        try:
            yield
        finally:
            self._local.reservation = None

    def acquire(
        self, identity: str | None, endpoint: str, *, cancel: threading.Event | None = None
    ) -> None:
        _check(cancel)
        reservation = getattr(self._local, "reservation", None)
        if reservation is not None and reservation.key == self.limiter.key(identity, endpoint):
            self._local.reservation = None
        else:
            self.limiter.acquire(identity, endpoint)
        self.window.enter()
        if cancel is not None and cancel.is_set():
            self.window.leave()
            _check(cancel)

    def release(
        self,
        identity: str | None,
        endpoint: str,
        *,
        status: int | None,
        headers: Mapping[str, str],
    ) -> float:
        self.window.leave(rate_limited=status == 429)
        if status is None:
            return 0.0
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if status != 429:
            if status < 400:
                self.limiter.on_success(identity, endpoint)
            return (retry_after or 0.0) if status == 503 else 0.0
        scope = headers.get("X-Knewton-Rate-Exceeded", "").strip().lower()
        hint = parse_retry_after(headers.get("X-Knewton-Rate-Delay"))
        hint = hint / 1000.0 if hint is not None else 0.0  # the header is in milliseconds
        if retry_after is not None:
            self.window.pause_all(retry_after)
        elif scope == "token-limited":
            self.limiter.on_token_limited(identity, endpoint, hint)
        else:  # ip-limited, partner-limited, partner-soft-limited, or unsaid
            self.window.back_off_all()
        return 0.0


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        from kprov.errors import Interrupted

        raise Interrupted("stopped before sending: the run was interrupted")
