"""Pulling a manifest's OneRoster REST sources for one command: the one place that joins a
pull to the profile's settings (patience from the environment, the state directory that
keeps delta cursors)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kprov.rosters.api_source import ApiSource
    from kprov.sis.bundle import PulledData
    from kprov.sis.cursor import CursorStore
    from kprov.sis.wire import PullOptions


def pull_options() -> PullOptions:
    """The patience of a pull: the Knewton client's retry and deadline settings
    (KPROV_RETRY_BASE_DELAY, KPROV_RETRY_MAX_ATTEMPTS, KPROV_REQUEST_DEADLINE...)."""
    from kprov.api.transport import Limits
    from kprov.cli.session import retry_policy_from_env
    from kprov.sis.wire import PullOptions

    return PullOptions(retry=retry_policy_from_env(os.environ), limits=Limits.from_env())


class SourcePuller:
    """Pulls sources for ``read_manifest``; a delta source's cursor is read before its pull
    and held until the run's end saves it (``cursors``)."""

    def __init__(self, *, full: bool = False, options: PullOptions | None = None) -> None:
        from kprov.sis.cursor import PendingCursors

        self.full = full  # ignore saved cursors (`oneroster pull --full`)
        self.options = options
        self.state_dir: Callable[[], Path] | None = None  # set once settings can be read
        self.pending = PendingCursors()
        self.pulled: list[PulledData] = []

    def store(self) -> CursorStore:
        from kprov.sis.cursor import LedgerCursorStore

        if self.state_dir is None:
            raise RuntimeError("SourcePuller.state_dir was not set")
        return LedgerCursorStore(self.state_dir())

    def __call__(self, source: ApiSource) -> PulledData:
        from kprov.sis.pull import pull

        since = self.store().load(source.cursor_key) if source.delta and not self.full else None
        data = pull(source, self.options or pull_options(), since=since)
        if source.delta:
            self.pending.hold(source.cursor_key, data.cursor)
        self.pulled.append(data)
        return data

    def cursors(self) -> dict[str, str]:
        """The cursors of this run's delta pulls: saved with the run's end when nothing
        failed (``cli.guarded.end_guards``)."""
        return dict(self.pending.pending)

    def summary(self) -> list[str]:
        """One line per pull, for --verbose."""
        lines = []
        for data in self.pulled:
            counts = ", ".join(f"{n} {name}" for name, n in data.counts().items())
            kind = f"changes since {data.since}" if data.delta else "everything"
            lines.append(f"pulled {kind} from {data.url}: {counts} ({data.requests} requests)")
        return lines
