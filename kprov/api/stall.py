"""A run-level bound on waiting: a server that refuses everything ends the run, not the night.

Each wait is bounded (``Limits.max_server_wait``) and so is each request's number of resends,
but a server that answers 429 for ever with ``Retry-After: 1`` (or ``nan``, or ``-5``) kept a
run -- and the state lock -- alive for as long as it liked. ``StallWatch`` keeps, per
endpoint, when the refusals began since its last success; when they have lasted longer than
the budget (or would, after the next wait), the request raises ``ServerKeptRefusing`` naming
the host and what it kept answering, so the run stops, records what it has and exits 4.

Only refusals start the clock (429, 5xx, no answer): kprov's own quota pacing, which sends
nothing while it waits, does not; any answer that is not a refusal stops it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from kprov.api.errors import ServerKeptRefusing

MAX_SPELLINGS = 4  # distinct Retry-After / rate-delay values quoted in the message


@dataclass
class _Episode:
    """Refusals of one endpoint since its last success."""

    since: float
    answers: Counter[str] = field(default_factory=Counter)  # "429", "503", "no answer: reset"
    spellings: list[str] = field(default_factory=list)  # wait headers as sent (clipped)


class StallWatch:
    """Per endpoint: how long it has refused; thread-safe. *budget* in seconds."""

    def __init__(self, budget: float, clock: Callable[[], float], env_name: str) -> None:
        self.budget = budget
        self._clock = clock
        self._env_name = env_name
        self._lock = threading.Lock()
        self._episodes: dict[str, _Episode] = {}

    def succeeded(self, endpoint: str) -> None:
        if self._episodes:
            with self._lock:
                self._episodes.pop(endpoint, None)

    def refused(self, endpoint: str, answer: str, spelling: str | None = None) -> None:
        """One refusal: *answer* says what came back ("429", "no answer: ..."), *spelling* the
        wait it asked for, as written (already scrubbed and clipped by the caller)."""
        with self._lock:
            episode = self._episodes.setdefault(endpoint, _Episode(self._clock()))
            episode.answers[answer] += 1
            spellings = episode.spellings
            if spelling and spelling not in spellings and len(spellings) < MAX_SPELLINGS:
                spellings.append(spelling)

    def check(
        self, endpoint: str, where: str, wait: float, *, method: str, path: str, applied: bool
    ) -> None:
        """Raise ServerKeptRefusing when *endpoint*'s refusals, plus the *wait* about to
        start, outlast the budget. *applied*: an attempt of this request may have been."""
        with self._lock:
            episode = self._episodes.get(endpoint)
            if episode is None:
                return
            lasted = self._clock() - episode.since
            if not lasted + wait > self.budget:
                return
            answers = ", ".join(
                f"{answer} {count} time{'s' if count > 1 else ''}"
                for answer, count in episode.answers.most_common()
            )
            if episode.spellings:
                answers += " (" + "; ".join(episode.spellings) + ")"
        later = f"; the next resend was {wait:.0f} s away" if wait >= 1 else ""
        raise ServerKeptRefusing(
            f"{where} has refused every {endpoint} request for {lasted:.0f} s: it answered "
            f"{answers}{later}. kprov stops waiting after {self.budget:g} s without a success "
            f"({self._env_name})",
            method=method,
            path=path,
            outcome_unknown=applied,
            hint="Every answer received was recorded; rerun later (the rerun resumes where "
            f"this one stopped), or raise {self._env_name} (seconds) if this server is known "
            "to throttle for longer.",
        )
