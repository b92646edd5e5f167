"""Retry policy as data, and the pacer every worker consults before it sends.

A 429 with Retry-After pauses *all* workers that share the client, not just the one that saw
it: otherwise the others keep hitting the limit and every one of them pays a penalty.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter (delay = uniform(0, min(cap, base*2^n)))."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_rate_limit_waits: int = 30  # 429s mean "nothing processed": worth more patience
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


class Pacer:
    """Shared gate in front of every request: honours a global pause after a 429."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self.rate_limited_count = 0

    def pause_all(self, seconds: float) -> None:
        """Make every worker wait *seconds* from now (a later pause extends, never shortens)."""
        with self._lock:
            self.rate_limited_count += 1
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def note_rate_limited(self) -> None:
        with self._lock:
            self.rate_limited_count += 1

    def wait_turn(self) -> None:
        """Block until no global pause is in force."""
        while True:
            with self._lock:
                remaining = self._paused_until - self._clock()
            if remaining <= 0:
                return
            self._sleep(remaining)
