"""Items-done reporting: a Rich bar on a terminal, periodic plain lines otherwise.

A run paced by quotas spends long stretches waiting: for a bucket's one-minute window, or for
a server that answered 429/503. The display says so while it lasts ("waiting for the POST
/batch quota: 41 s", counting down), and its time estimate comes from the whole run's average
rate, so it grows honestly during a wait instead of freezing at "0:00:01" (Rich's own column
divides by the rate of the last moments before the wait).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from kprov.cli.environment import Environment
from kprov.outside_text import printable

SHOWN_WAIT = 1.0  # seconds: shorter waits are not worth a word


class Progress:
    """Items done, and what the run is waiting for. ``advance`` and ``waiting`` may be called
    from any thread."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        enabled: bool,
        env: Environment | None = None,
        plain_every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """*enabled*: report at all; a bar when *env* says stderr is a terminal, else a
        plain line every *plain_every* seconds."""
        self.label = label
        self.env = env or Environment()
        self.total = total
        self.enabled = enabled and total > 0
        self.done = 0
        self._clock = clock
        self._plain_every = plain_every
        self._last_plain = clock()
        self._started = clock()
        self._lock = threading.Lock()
        self._waits: dict[str, float] = {}  # what -> when the wait ends (clock time)
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled and self.env.stderr_isatty:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                _column(self.eta_text),
                _column(self.wait_text),
                console=self.env.console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, rate="")
        return self

    def advance(self, count: int) -> None:
        with self._lock:
            self.done += count
            done = self.done
        if not self.enabled:
            return
        elapsed = max(1e-6, self._clock() - self._started)
        rate = f"{done / elapsed:,.0f} items/s"
        if self._bar is not None:
            self._bar.update(self._task, advance=count, rate=rate)
            return
        now = self._clock()
        if now - self._last_plain >= self._plain_every:
            self._last_plain = now
            wait = self.wait_text()
            self._plain(
                f"{done}/{self.total} ({100 * done // max(1, self.total)}%), {rate}"
                + (f"; {wait}" if wait else "")
            )

    def waiting(self, what: str, seconds: float) -> None:
        """The run waits *seconds* for *what* ("the POST /batch quota", "the server (...)");
        0 when that wait is over. Long waits get a plain line at once when there is no bar."""
        with self._lock:
            if seconds < SHOWN_WAIT:
                self._waits.pop(what, None)
                return
            new = what not in self._waits
            self._waits[what] = self._clock() + seconds
        if new and self.enabled and self._bar is None and seconds >= self._plain_every:
            self._plain(f"waiting for {printable(what)}: {seconds:.0f} s")

    def wait_text(self) -> str:
        """The wait that ends last, counting down; "" when the run is not waiting."""
        now = self._clock()
        with self._lock:
            live = {what: end for what, end in self._waits.items() if end > now}
            self._waits = live
        if not live:
            return ""
        what, end = max(live.items(), key=lambda item: item[1])
        return f"waiting for {printable(what)}: {end - now:.0f} s"

    def eta_text(self) -> str:
        """Time left at the run's average rate so far (waits included)."""
        with self._lock:
            done = self.done
        if done <= 0:
            return "-:--:--"
        elapsed = self._clock() - self._started
        left = int(elapsed / done * max(0, self.total - done))
        return f"{left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}"

    def _plain(self, text: str) -> None:
        sys.stderr.write(f"kprov: {self.label}: {text}\n")
        sys.stderr.flush()

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def _column(text: Callable[[], str]) -> Any:
    """A Rich progress column showing what *text* says at each refresh (10 times a second);
    Rich is imported only once a bar is shown (`kprov --help` stays fast)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Column(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(text())

    return Column()
