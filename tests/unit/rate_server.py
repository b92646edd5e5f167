"""A simulated token-bucket server and a pool of workers, on a simulated clock.

Discrete events, no threads, no sleeps: a whole semester of requests runs in milliseconds
and the same seed gives the same run. Workers take the next request, wait until the rate
learner lets it go, send it; the server admits it if its bucket has a token when it arrives
(otherwise 429 with an integer Retry-After, which that request alone waits out).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from kprov.api.rate import RateLearner


@dataclass
class TokenBucketServer:
    """*rate* requests per second, *burst* saved up at most; *rate* may change over time."""

    rate: float
    burst: float
    rate_at: Callable[[float], float] | None = None
    _tokens: float = field(init=False)
    _stamp: float = 0.0

    def __post_init__(self) -> None:
        self._tokens = self.burst

    def admit(self, now: float) -> bool:
        rate = self.rate_at(now) if self.rate_at else self.rate
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


@dataclass
class Run:
    wall: float
    refused: int
    cuts: int
    accepted_at: list[float]

    def achieved_rate(self, start: float, end: float) -> float:
        """Accepted requests per second between *start* and *end*."""
        return sum(start <= t < end for t in self.accepted_at) / (end - start)

    def steady_rate(self, after: float) -> float:
        """Accepted per second from *after* until 95 % were accepted (stragglers left out)."""
        return self.achieved_rate(after, self.accepted_at[int(len(self.accepted_at) * 0.95)])


def simulate(
    server: TokenBucketServer,
    learner: RateLearner,
    *,
    requests: int,
    workers: int = 16,
    latency: float = 0.020,
    overhead: float = 0.008,
    retry_after: float = 1.0,
    jitter: float = 0.002,
    seed: int = 7,
    slow_first: int = 0,
    slow_latency: float = 0.15,
) -> Run:
    """Send *requests* through *learner* to *server*; each worker spends *overhead* of client
    time per request (16 workers at 20 + 8 ms send ~570/s, as kprov measured). The first
    *slow_first* requests take *slow_latency* (account batches before the registrations)."""
    rng = random.Random(seed)
    events: list[tuple[float, int, str, tuple[int, float, bool]]] = []
    order = 0

    def at(when: float, kind: str, data: tuple[int, float, bool]) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (when, order, kind, data))

    left = requests
    refused = 0
    accepted_at: list[float] = []
    now = 0.0
    for worker in range(workers):
        at(0.0, "ready", (worker, 0.0, False))
    while events:
        now, _, kind, (worker, sent_at, flag) = heapq.heappop(events)
        if kind == "ready":
            resend = flag
            if not resend and left == 0:
                continue
            wait = learner.delay(now)
            if wait > 0:
                at(now + wait, "ready", (worker, 0.0, resend))
                continue
            if not resend:
                left -= 1
            learner.take(now)
            slow = requests - left <= slow_first
            arrives = now + (slow_latency if slow else latency) + rng.uniform(0, jitter)
            admitted = server.admit(arrives)
            at(arrives + rng.uniform(0, jitter), "answer", (worker, now, admitted))
        else:
            if flag:
                learner.on_accepted(now)
                accepted_at.append(now)
                at(now + overhead, "ready", (worker, 0.0, False))
            else:
                refused += 1
                own_wait = learner.on_refused(now, sent_at)
                at(now + max(retry_after, own_wait) + overhead, "ready", (worker, 0.0, True))
    return Run(wall=now, refused=refused, cuts=learner.cuts, accepted_at=accepted_at)
