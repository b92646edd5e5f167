"""The time a command may take, read from what the code chose instead of from a wall clock:
every attempt's deadline, every wait the transport took, every wait on a stop event.

A bound on elapsed seconds fails on a loaded machine and passes when a wait was merely short;
the deadlines and waits the code asked for say the same deterministically (the worst case of
an attempt is its deadline, and a wait on an event ends when the event is set).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from kprov.api.deadline import Deadline
from kprov.api.transport import Transport


@dataclass
class Budget:
    deadlines: list[Deadline] = field(default_factory=list)  # one per attempt, in order
    waits: list[float] = field(default_factory=list)  # the transport's: backoff, Retry-After

    @property
    def expired(self) -> int:
        """Attempts cut by their deadline."""
        return sum(deadline.expired for deadline in self.deadlines)

    @property
    def worst_case(self) -> float:
        """The longest the recorded attempts and waits could have taken, whatever the load."""
        return sum(d.seconds for d in self.deadlines) + sum(self.waits)


def record_budget(monkeypatch: pytest.MonkeyPatch, *, this_thread: bool = False) -> Budget:
    """Record, in this process, every Deadline entered and every wait of a Transport (the
    waits still happen: the suite's retry delays are milliseconds). *this_thread*: only the
    test's own thread's, for a test that sends from it (a thread an earlier test left behind
    in the same worker must not count)."""
    budget = Budget()
    enter, wait = Deadline.__enter__, Transport.wait
    own = threading.get_ident() if this_thread else None

    def entering(self: Deadline) -> Deadline:
        if own is None or threading.get_ident() == own:
            budget.deadlines.append(self)
        return enter(self)

    def waiting(self: Transport, seconds: float, what: str = "") -> None:
        if own is None or threading.get_ident() == own:
            budget.waits.append(seconds)
        wait(self, seconds, what)

    monkeypatch.setattr(Deadline, "__enter__", entering)
    monkeypatch.setattr(Transport, "wait", waiting)
    return budget


class RecordingEvent(threading.Event):
    """A threading.Event that records the timeout of every wait on it (None: no timeout)."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)
