"""Seeded fault injection and rate limiting for the sandbox."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class Fault(Enum):
    NONE = "none"
    UNAVAILABLE_BEFORE = "503"  # 503, nothing applied
    ERROR_AFTER = "500after"  # the change is applied, then a 500 is answered
    DROP_BEFORE = "drop"  # connection closed without an answer, nothing applied
    DROP_AFTER = "dropafter"  # applied, then the connection is closed without an answer
    RATE_LIMITED = "429"  # 429 with Retry-After: 1, nothing applied


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault per API request (the token endpoint is spared)."""

    unavailable: float = 0.0
    error_after: float = 0.0
    drop: float = 0.0
    rate_limited: float = 0.0

    @classmethod
    def from_total(cls, total: float) -> FaultRates:
        """--fail-rate: a realistic mix adding up to *total*."""
        return cls(
            unavailable=total * 0.4,
            error_after=total * 0.3,
            drop=total * 0.2,
            rate_limited=total * 0.1,
        )

    @classmethod
    def parse(cls, spec: str) -> FaultRates:
        """'503=0.05,500after=0.03,drop=0.02,429=0.01' -> FaultRates."""
        names = {
            "503": "unavailable",
            "500after": "error_after",
            "drop": "drop",
            "429": "rate_limited",
        }
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, number = part.partition("=")
            if key not in names:
                raise ValueError(f"unknown fault {key!r}; use one of {', '.join(names)}")
            rate = float(number)
            if not 0 <= rate <= 1:
                raise ValueError(f"fault rate {rate} is not between 0 and 1")
            values[names[key]] = rate
        return cls(**values)

    @property
    def total(self) -> float:
        return self.unavailable + self.error_after + self.drop + self.rate_limited


class FaultInjector:
    """Draws one fault per request from a seeded generator (thread-safe)."""

    def __init__(self, rates: FaultRates, seed: int | None = None) -> None:
        self.rates = rates
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def draw(self) -> Fault:
        if self.rates.total <= 0:
            return Fault.NONE
        with self._lock:
            roll = self._rng.random()
            half = self._rng.random() < 0.5
        for fault, rate in (
            (Fault.UNAVAILABLE_BEFORE, self.rates.unavailable),
            (Fault.ERROR_AFTER, self.rates.error_after),
            (Fault.DROP_AFTER if half else Fault.DROP_BEFORE, self.rates.drop),
            (Fault.RATE_LIMITED, self.rates.rate_limited),
        ):
            if roll < rate:
                return fault
            roll -= rate
        return Fault.NONE


class RequestRateLimiter:
    """A global token bucket: *rate* requests per second, at most *burst* saved up (default:
    one second's worth). A refused request learns when the next token comes: ``retry_after``
    says it in whole seconds, rounded up as HTTP allows ("ceil": ``Retry-After: 1`` for a
    2.5 ms wait, the hard case), exactly in fractional seconds ("exact"), or not at all
    ("none", as the Knewton API documents its 429s)."""

    RETRY_AFTER_STYLES = ("ceil", "exact", "none")

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        retry_after: str = "ceil",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or (burst is not None and burst < 1):
            raise ValueError("the rate must be above 0 and the burst at least 1")
        if retry_after not in self.RETRY_AFTER_STYLES:
            raise ValueError(f"retry_after must be one of {', '.join(self.RETRY_AFTER_STYLES)}")
        self.rate = rate
        self.burst = float(burst) if burst is not None else max(1.0, rate)
        self.retry_after = retry_after
        self._clock = clock
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        return self.admit() is None

    def admit(self) -> float | None:
        """None when the request may go; else the seconds until the next token."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            return (1 - self._tokens) / self.rate

    def refusal_headers(self, wait: float) -> dict[str, str]:
        """The 429's headers for a request refused *wait* seconds before the next token."""
        headers = {"X-Knewton-Rate-Exceeded": "ip-limited"}
        if self.retry_after == "ceil":
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        elif self.retry_after == "exact":
            headers["Retry-After"] = f"{wait:.4f}"
        return headers


# The documented per-minute quotas (per access token and endpoint), read from the rate-limits
# page independently of the client's copy.
KNEWTON_QUOTAS = {
    "POST /accounts": 750,
    "POST /batch": 90,
    "POST /registrations": 375,
    "DELETE /registrations/{id}": 375,
    "POST /learning-instances": 750,
    "DELETE /accounts/{id}": 150,
}
KNEWTON_GET_QUOTA = 15
KNEWTON_TOKEN_REQUESTS_PER_SECOND = 100


class KnewtonLimits:
    """Sliding-window quotas as the API documents them; a 429 carries no Retry-After."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], list[float]] = {}
        self.refused = 0

    def _admit(self, key: tuple[str, str], limit: int, span: float) -> bool:
        now = time.monotonic()
        with self._lock:
            stamps = self._windows.setdefault(key, [])
            cutoff = now - span
            drop = 0
            while drop < len(stamps) and stamps[drop] <= cutoff:
                drop += 1
            if drop:
                del stamps[:drop]
            if len(stamps) >= limit:
                self.refused += 1
                return False
            stamps.append(now)
            return True

    def admit_token_request(self) -> bool:
        return self._admit(("*", "POST /oauth/token"), KNEWTON_TOKEN_REQUESTS_PER_SECOND, 1.0)

    def admit(self, account_id: str, label: str) -> bool:
        """Count one request of *account_id*'s token on endpoint *label* (per minute)."""
        limit = KNEWTON_GET_QUOTA if label.startswith("GET ") else KNEWTON_QUOTAS.get(label)
        if limit is None:
            return True
        bucket = "GET" if label.startswith("GET ") else label
        return self._admit((account_id, bucket), limit, 60.0)
