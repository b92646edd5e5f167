"""Learning the rate a server accepts, and the ceiling on requests in flight.

A server that limits the rate (a token bucket of r requests/s with a small burst) answers
429 as soon as we send faster than r for a moment. Freezing every worker for the whole
Retry-After (one second, while the server's real refill wait is ~2.5 ms) wasted two thirds of
a phase; shrinking the number of requests in flight does not bound the *rate* (16 in flight
at 20 ms sends ~570/s). So we space sends at a rate learned from the server's answers.
"""

from __future__ import annotations

import math
import threading
from collections import deque

from kprov.errors import Interrupted

POLL = 0.05  # longest blocking wait between looks at the cancel flag


class RateLearner:
    """Spaces sends at a rate learned from 429s: unbounded until the first one, then just
    under what the server was seen to accept, probing upward gently (CUBIC-shaped).

    - One cut per *episode*: a 429 for a request sent before the last cut says nothing new
      (that request left at the old rate), so only a request sent after it can cut again.
      Cutting per 429 (the AWS SDKs' adaptive mode) cut four or five times per burst of 429s
      and took ~7 s to climb back; the run was 1.5-1.9 times its bound in our model.
    - The cut is to ``BETA`` times the rate the server *accepted*: over the last ``WINDOW``,
      or, when the previous cut was recent, since that cut (the server was refusing us, so
      what it let through then is its rate, free of the burst it had saved up).
    - After a cut the rate climbs back to the accepted rate in ``RECOVERY`` seconds along a
      cubic (flat near it), then past it ever faster, so a server that raised its limit is
      found again.
    - Without evidence (fewer than ``MIN_EVIDENCE`` accepted answers in the window) or when
      refusals persist with no success in between, the rate is left alone and the refused
      request itself backs off exponentially (1, 2, 4 ... s): the server is refusing, not
      metering.

    Not thread-safe: the ``Pacer`` holds its lock around every call. Times are passed in.
    """

    BETA = 0.9
    RECOVERY = 2.0
    WINDOW = 1.0
    MIN_EVIDENCE = 4
    TOLERANCE = 2.0  # sends that may go back to back after a late wake-up (scheduling jitter)
    FLOOR = 0.5  # requests per second, whatever happens
    BACKOFF_BASE = 1.0
    BACKOFF_CAP = 60.0

    def __init__(self) -> None:
        self.accepted_max: float | None = None  # the rate last seen accepted; None: unbounded
        self.cuts = 0
        self._cut_at = -math.inf  # when the rate was last cut (the cubic's origin)
        self._episode_at = -math.inf  # when the current episode of 429s began
        self._due = 0.0  # when the next send is due at the current rate (GCRA)
        self._started: float | None = None
        self._accepted: deque[float] = deque()
        self._accepted_since_cut = 0
        self._success_since_episode = True
        self._strikes = 0

    def rate(self, now: float) -> float:
        """Requests per second allowed at *now*; ``inf`` before any 429."""
        if self.accepted_max is None:
            return math.inf
        x = (now - self._cut_at) / self.RECOVERY - 1.0
        return max(self.FLOOR, self.accepted_max * (1.0 + (1.0 - self.BETA) * x**3))

    def delay(self, now: float) -> float:
        """Seconds until the next send is due; 0 when it may go now."""
        rate = self.rate(now)
        if rate == math.inf:
            return 0.0
        return max(0.0, self._due - self.TOLERANCE / rate - now)

    def take(self, now: float) -> None:
        """A send goes now: the next is due one interval later."""
        if self._started is None:
            self._started = now
        rate = self.rate(now)
        self._due = now if rate == math.inf else max(self._due, now) + 1.0 / rate

    def on_accepted(self, now: float) -> None:
        """Any answer but a rate-limit refusal: the server let it through."""
        self._accepted.append(now)
        self._accepted_since_cut += 1
        self._success_since_episode = True
        self._strikes = 0
        self._forget_before(now - self.WINDOW)

    def on_refused(self, now: float, sent_at: float, *, refused: bool = True) -> float:
        """A 429 that limits the IP or the partner (or a request the server held back when
        *refused* is False). Cuts the rate once per episode; returns how long this request
        should wait before it is resent (0 when the new rate is enough)."""
        if sent_at >= self._episode_at:  # sent after the episode began: a new one
            self._strikes = 1 if self._success_since_episode else self._strikes + 1
            self._success_since_episode = False
            self._cut(now)
        if not refused or (self._strikes <= 1 and self.accepted_max is not None):
            return 0.0
        return min(self.BACKOFF_CAP, self.BACKOFF_BASE * 2 ** (max(1, self._strikes) - 1))

    def accepted_rate(self, now: float) -> float | None:
        """What the server let through lately (requests/s), None without enough evidence."""
        self._forget_before(now - self.WINDOW)
        since_cut = now - self._cut_at
        if since_cut < self.WINDOW and self._accepted_since_cut >= self.MIN_EVIDENCE:
            return self._accepted_since_cut / since_cut
        if len(self._accepted) < self.MIN_EVIDENCE or self._started is None:
            return None
        span = now - max(now - self.WINDOW, self._started)
        return len(self._accepted) / max(span, 1e-3)

    def _cut(self, now: float) -> None:
        measured = self.accepted_rate(now)
        self._episode_at = now
        if measured is None:
            return  # nothing to learn from: the refused request backs off instead
        self.accepted_max = max(self.FLOOR, min(measured, self.rate(now)))
        self._cut_at = now
        # No catching up on sends missed before the cut: the server's bucket is empty now.
        self._due = max(self._due, now + (1.0 + self.TOLERANCE) / self.rate(now))
        self._accepted_since_cut = 0
        self.cuts += 1

    def _forget_before(self, horizon: float) -> None:
        while self._accepted and self._accepted[0] < horizon:
            self._accepted.popleft()


class InFlightCeiling:
    """At most *limit* requests in flight (``--concurrency``); None: no ceiling."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.in_flight = 0
        self._free = threading.Condition()

    def enter(self, cancel: threading.Event | None = None) -> None:
        """Wait for a free place; raises ``Interrupted`` (holding nothing) once *cancel* is set."""
        with self._free:
            while self.limit is not None and self.in_flight >= self.limit:
                if cancel is not None and cancel.is_set():
                    raise Interrupted("stopped before sending: the run was interrupted")
                self._free.wait(POLL)
            self.in_flight += 1

    def leave(self) -> None:
        with self._free:
            self.in_flight = max(0, self.in_flight - 1)
            self._free.notify()
