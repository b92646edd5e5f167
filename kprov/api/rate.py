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


class _Recent:
    """Timestamps of the last *window* seconds, and their rate per second."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.stamps: deque[float] = deque()

    def add(self, now: float) -> None:
        self.stamps.append(now)

    def count(self, now: float) -> int:
        while self.stamps and self.stamps[0] < now - self.window:
            self.stamps.popleft()
        return len(self.stamps)

    def rate(self, now: float, started: float) -> float:
        """Per second over the window, or since *started* if that is later."""
        return self.count(now) / max(now - max(now - self.window, started), 1e-3)


class RateLearner:
    """Spaces sends at a rate learned from 429s: unbounded until the first one, then just
    under what the server was seen to accept, probing upward gently (CUBIC-shaped).

    - One cut per *episode*: a 429 for a request sent before the episode began says nothing
      new (it left at the old rate); only a request sent after it starts another. Cutting
      per 429 (the AWS SDKs' adaptive mode, beta 0.7) cut four or five times per burst of
      429s and took ~7 s to climb back: 1.5-1.9 times the bound in our model.
    - The cut is to ``BETA`` times an estimate of what the server accepts. Right after a
      previous cut, the rate it accepted since then (it was refusing us: that is its rate,
      free of any saved-up burst). Otherwise the larger of what it accepted over ``WINDOW``
      and ``BETA`` times what we sent over the last ``RECENT`` seconds: the first alone was
      199/s for a 400/s server when the 429 came just after slow batch calls (our demand, not
      its limit: P1 took 1.44 times its bound); the second errs high, and a high guess costs
      one more short episode, while a low one costs seconds of slow climbing. A cut never
      goes below ``MAX_CUT`` times the current rate: when every worker was waiting out a
      Retry-After, what was accepted "lately" is our idleness, not the server (a 200/s
      server was once taken for 6/s).
    - After a cut the rate climbs back to the accepted rate in ``RECOVERY`` seconds along a
      cubic (flat near it), then past it ever faster, so a server that raised its limit is
      found again; but never above ``HEADROOM`` times what we actually sent lately, so a
      client held back by other things (quotas, CPU, a slow phase) does not grow a limit
      it would then burst into all at once.
    - Without evidence (fewer than ``MIN_EVIDENCE`` accepted answers) or when refusals
      persist with no success in between, the rate is left alone and the refused request
      itself backs off exponentially (1, 2, 4 ... s): the server is refusing, not metering.

    Not thread-safe: the ``Pacer`` holds its lock around every call. Times are passed in.
    """

    BETA = 0.9
    RECOVERY = 2.0
    WINDOW = 1.0
    RECENT = 0.05
    HEADROOM = 1.5
    MIN_EVIDENCE = 4
    MAX_CUT = 0.5
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
        self._started = math.inf  # the first send
        self._accepted = _Recent(self.WINDOW)
        self._sent = _Recent(self.WINDOW)
        self._recent_sent = _Recent(self.RECENT)
        self._accepted_since_cut = 0
        self._success_since_episode = True
        self._strikes = 0

    def rate(self, now: float) -> float:
        """Requests per second allowed at *now*; ``inf`` before any 429."""
        if self.accepted_max is None:
            return math.inf
        x = (now - self._cut_at) / self.RECOVERY - 1.0
        allowed = self.accepted_max * (1.0 + (1.0 - self.BETA) * x**3)
        if x > 0:  # probing past what was accepted: only as far as we really send
            used = self.HEADROOM * self._sent.rate(now, self._started)
            allowed = min(allowed, max(self.accepted_max, used))
        return max(self.FLOOR, allowed)

    def delay(self, now: float) -> float:
        """Seconds until the next send is due; 0 when it may go now."""
        rate = self.rate(now)
        if rate == math.inf:
            return 0.0
        return max(0.0, self._due - self.TOLERANCE / rate - now)

    def take(self, now: float) -> None:
        """A send goes now: the next is due one interval later."""
        self._started = min(self._started, now)
        self._sent.add(now)
        self._recent_sent.add(now)
        rate = self.rate(now)
        self._due = now if rate == math.inf else max(self._due, now) + 1.0 / rate

    def on_accepted(self, now: float) -> None:
        """Any answer but a rate-limit refusal: the server let it through."""
        self._accepted.add(now)
        self._accepted_since_cut += 1
        self._success_since_episode = True
        self._strikes = 0

    def on_refused(self, now: float, sent_at: float, *, refused: bool = True) -> float:
        """A 429 that limits the IP or the partner (or a request the server held back when
        *refused* is False). Cuts the rate once per episode; returns how long this request
        should wait before it is resent (0 when the new rate is enough)."""
        if sent_at >= self._episode_at:  # sent after the episode began: a new one
            if refused:
                self._strikes = 1 if self._success_since_episode else self._strikes + 1
                self._success_since_episode = False
            self._cut(now)
        if not refused or (self._strikes <= 1 and self.accepted_max is not None):
            return 0.0
        return min(self.BACKOFF_CAP, self.BACKOFF_BASE * 2 ** (max(1, self._strikes) - 1))

    def estimate(self, now: float) -> float | None:
        """What the server accepts (requests/s), None without enough evidence."""
        since_cut = now - self._cut_at
        if since_cut < self.WINDOW and self._accepted_since_cut >= self.MIN_EVIDENCE:
            return self._accepted_since_cut / since_cut
        if self._accepted.count(now) < self.MIN_EVIDENCE:
            return None
        accepted = self._accepted.rate(now, self._started)
        return max(accepted, self.BETA * self._recent_sent.rate(now, self._started))

    def _cut(self, now: float) -> None:
        measured = self.estimate(now)
        self._episode_at = now
        if measured is None:
            return  # nothing to learn from: the refused request backs off instead
        current = self.rate(now)
        # A guess spoiled by our own idle time (every worker waiting out a Retry-After) must
        # not sink the rate: at most halve it per episode.
        floor = self.MAX_CUT * current if current < math.inf else self.FLOOR
        self.accepted_max = max(self.FLOOR, floor, min(measured, current))
        self._cut_at = now
        self._accepted_since_cut = 0
        self.cuts += 1
        # No catching up on sends missed before the cut: the server's bucket is empty now.
        self._due = max(self._due, now + (1.0 + self.TOLERANCE) / self.rate(now))


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
                    raise Interrupted("interrupted: nothing more was sent")
                self._free.wait(POLL)
            self.in_flight += 1

    def leave(self) -> None:
        with self._free:
            self.in_flight = max(0, self.in_flight - 1)
            self._free.notify()
