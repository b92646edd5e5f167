"""The documented per-token quotas, and a sliding-window counter that spends them exactly.

The API counts requests per access token and endpoint in any 60-second window, so a bucket
may send its whole quota at once and then wait for the oldest send to leave the window:
spacing sends evenly (the first release) made 101 batches take 68 s instead of ~60 s and
250 registrations take 41 s though they fit in one window.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

# The documented per-minute quotas, per access token and endpoint (rate limits page).
DOCUMENTED_QUOTAS: dict[str, int] = {
    "POST /accounts": 750,
    "POST /batch": 90,
    "POST /registrations": 375,
    "DELETE /registrations": 375,
    "POST /learning-instances": 750,
    "DELETE /accounts": 150,
    # Not in the table: assumed as strict as DELETE /accounts rather than left unpaced.
    "DELETE /learning-instances": 150,
    "GET": 15,  # every GET, whatever its path
    "POST /oauth/token": 6000,  # 100 token requests per second per IP
}
# Counted per IP, not per token: one bucket whoever asks.
SHARED_BUCKETS = frozenset({"POST /oauth/token"})
# Window of each quota, in seconds (per minute unless listed): the token limit is per second.
WINDOWS: dict[str, float] = {"POST /oauth/token": 1.0}
MINUTE = 60.0
# A send leaves our window this long after its answer came, so the server (which counted it
# when it arrived, before it answered) has surely dropped it too.
WINDOW_MARGIN = 0.01


def endpoint_of(method: str, path: str) -> str:
    """'DELETE /registrations/abc' -> 'DELETE /registrations/{id}'; '/oauth/token' kept."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] != "oauth" and parts[2] != "current":
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
        quotas[_normal(key)] = int(value)
    return quotas


def _normal(key: str) -> str:
    method, _, path = " ".join(key.split()).partition(" ")
    return f"{method.upper()} {path}".strip()


@dataclass(frozen=True)
class Quota:
    """At most *limit* sends in any *window* seconds."""

    limit: int
    window: float


class QuotaTable:
    """Which quota counts a request: the exact endpoint, its collection, or its method.

    'DELETE /registrations/{id}' is counted by 'DELETE /registrations', 'GET /accounts/current'
    by 'GET'. Per-minute figures come from configuration; the token endpoint's is per second.
    """

    def __init__(self, per_minute: Mapping[str, int]) -> None:
        self.per_minute = {_normal(k): v for k, v in per_minute.items()}

    def entry(self, endpoint: str) -> str | None:
        """The table key that counts *endpoint*, None if nothing does."""
        for key in (endpoint, endpoint.removesuffix("/{id}"), endpoint.split(" ", 1)[0]):
            if key in self.per_minute:
                return key
        return None

    def quota(self, entry: str) -> Quota:
        window = WINDOWS.get(entry, MINUTE)
        return Quota(max(1, round(self.per_minute[entry] * window / MINUTE)), window)

    def bucket(self, identity: str | None, endpoint: str) -> tuple[str | None, str] | None:
        """The (token, entry) bucket a request counts against; None when it is not limited."""
        entry = self.entry(endpoint)
        if entry is None:
            return None
        return ("*" if entry in SHARED_BUCKETS else identity, entry)


Bucket = tuple[str | None, str]


@dataclass
class _Window:
    quota: Quota
    answered: deque[float] = field(default_factory=deque)  # answer times, in order
    pending: dict[int, float] = field(default_factory=dict)  # ticket -> send time
    blocked_until: float = 0.0
    strikes: int = 0  # token-limited 429s since the last success

    def prune(self, now: float) -> None:
        horizon = now - self.quota.window - WINDOW_MARGIN
        while self.answered and self.answered[0] <= horizon:
            self.answered.popleft()

    def delay(self, now: float) -> float:
        """Seconds until one more send fits in every window; 0 when one fits now."""
        self.prune(now)
        wait = max(0.0, self.blocked_until - now)
        excess = len(self.answered) + len(self.pending) - self.quota.limit
        if excess < 0:
            return wait
        if excess < len(self.answered):  # the (excess+1)-th oldest answer must leave
            leaves = self.answered[excess] + self.quota.window + WINDOW_MARGIN
        else:  # sends still unanswered fill the quota: their answers will say when
            leaves = min(self.pending.values()) + self.quota.window + WINDOW_MARGIN
        return max(wait, leaves - now, 0.001)


class SlidingWindowQuotas:
    """Per-bucket sliding windows: a send is counted from its reservation until a window
    after its answer (the latest moment the server can have counted it). Not thread-safe:
    the ``Pacer`` holds its lock around every call. Times are passed in (testable)."""

    BACKOFF_BASE = 1.0

    def __init__(self, quotas: Mapping[str, int]) -> None:
        self.table = QuotaTable(quotas)
        self._windows: dict[Bucket, _Window] = {}
        self._tickets = itertools.count(1)
        self._owner: dict[int, Bucket] = {}

    def bucket(self, identity: str | None, endpoint: str) -> Bucket | None:
        return self.table.bucket(identity, endpoint)

    def _window(self, bucket: Bucket) -> _Window:
        window = self._windows.get(bucket)
        if window is None:
            window = self._windows[bucket] = _Window(self.table.quota(bucket[1]))
        return window

    def delay(self, bucket: Bucket | None, now: float) -> float:
        """Exact seconds until *bucket* admits a send (0: now). Reserves nothing."""
        return 0.0 if bucket is None else self._window(bucket).delay(now)

    def reserve(self, bucket: Bucket | None, now: float) -> int | None:
        """Count one send in *bucket* from now on; the ticket settles or cancels it."""
        if bucket is None:
            return None
        ticket = next(self._tickets)
        self._window(bucket).pending[ticket] = now
        self._owner[ticket] = bucket
        return ticket

    def settle(self, ticket: int | None, now: float) -> None:
        """The answer came (or the attempt ended) at *now*: the send leaves a window later."""
        if ticket is None or (bucket := self._owner.pop(ticket, None)) is None:
            return
        window = self._windows[bucket]
        window.pending.pop(ticket, None)
        if window.answered and window.answered[-1] > now:
            now = window.answered[-1]  # keep the deque ordered whatever the caller's clock
        window.answered.append(now)

    def cancel(self, ticket: int | None) -> None:
        """Nothing was sent for *ticket*: give its place back."""
        if ticket is not None and (bucket := self._owner.pop(ticket, None)) is not None:
            self._windows[bucket].pending.pop(ticket, None)

    def on_success(self, bucket: Bucket | None) -> None:
        if bucket is not None and bucket in self._windows:
            self._windows[bucket].strikes = 0

    def on_token_limited(self, bucket: Bucket | None, now: float, server_wait: float) -> float:
        """The server counts this token's window differently (a lower quota, another client
        on the same token): hold the bucket back, longer each time it happens again.
        Returns how long the bucket is held."""
        if bucket is None:  # no quota configured for it: wait a little, each time
            return max(server_wait, self.BACKOFF_BASE)
        window = self._window(bucket)
        window.strikes += 1
        backoff = min(window.quota.window, self.BACKOFF_BASE * 2 ** (window.strikes - 1))
        hold = max(server_wait, backoff)
        window.blocked_until = max(window.blocked_until, now + hold)
        return hold
