"""A bounded worker pool that stops cleanly when the API or the credentials give out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

from kprov.errors import KprovError

T = TypeVar("T")
R = TypeVar("R")


class StopRun(Exception):
    """Raised by a task when the whole run must stop (credentials refused, API down).

    ``partial`` carries what the task had settled (and recorded) before it stopped.
    """

    def __init__(self, cause: KprovError, partial: Any = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.partial = partial


class Pool(Generic[T, R]):
    """Run ``work(item)`` with at most *concurrency* tasks in flight, in submission order.

    Items are pulled lazily (a million-line plan never becomes a million futures). After a
    StopRun no new item starts; ``on_stopped`` is told about the stopped task, and
    ``on_skipped`` about every item never started, so each roster line still gets a fate.
    """

    def __init__(
        self,
        work: Callable[[T], R],
        *,
        concurrency: int,
        on_done: Callable[[T, R], None],
        on_stopped: Callable[[T, StopRun], None],
        on_skipped: Callable[[T], None],
        name: str = "kprov",
    ) -> None:
        self._work = work
        self._concurrency = max(1, concurrency)
        self._on_done = on_done
        self._on_stopped = on_stopped
        self._on_skipped = on_skipped
        self._name = name
        self._stopping = threading.Event()

    def _guarded(self, item: T) -> R:
        if self._stopping.is_set():
            raise _NotStarted
        return self._work(item)

    def run(self, items: Iterable[T]) -> KprovError | None:
        """Process every item; returns the error that stopped the run, if one did."""
        pending = iter(items)
        stopped: KprovError | None = None
        in_flight: dict[Future[R], T] = {}
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix=self._name) as executor:
            while True:
                while stopped is None and len(in_flight) < self._concurrency * 2:
                    item = next(pending, _END)
                    if item is _END:
                        break
                    in_flight[executor.submit(self._guarded, item)] = item
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    item = in_flight.pop(future)
                    try:
                        result = future.result()
                    except StopRun as stop:
                        stopped = stopped or stop.cause
                        self._stopping.set()
                        self._on_stopped(item, stop)
                    except _NotStarted:
                        self._on_skipped(item)
                    else:
                        self._on_done(item, result)
        for item in pending:
            self._on_skipped(item)
        return stopped


_END: Any = object()


class _NotStarted(Exception):
    """A queued task found the run stopping before it began."""
