"""Delta cursors: from when the next ``delta: true`` pull of each source asks for changes.

A cursor is taken *before* its pull starts (``pull``), held as pending while the run plans
and applies, and saved only with the end of a run in which nothing failed and nothing
stopped it (in the same ledger transaction as the hold of whatever its guards withheld, and
as the remembered `tobedeleted` removals it did not send: docs/holds.md), so a change made
during a pull, or a run that failed, is pulled again next time; never lost.
``CursorStore`` is the whole interface: ``LedgerCursorStore`` reads the run ledger's
``cursors`` table, and the file kprov 0.3 kept them in (``oneroster-cursors.json``) for a
source the ledger has no cursor for yet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from kprov.errors import ConfigError
from kprov.state.files import open_fd, replace_private

CURSOR_FILE = "oneroster-cursors.json"
MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class CursorStore(Protocol):
    def load(self, key: str) -> str | None:
        """The saved cursor of source *key*, or None (the next pull reads everything)."""
        ...

    def save(self, cursors: Mapping[str, str]) -> None:
        """Record these cursors (the caller holds the state lock)."""
        ...


class FileCursorStore:
    """Cursors in ``STATE_DIR/oneroster-cursors.json``."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / CURSOR_FILE

    def _read(self) -> dict[str, str]:
        import os

        try:
            fd = open_fd(self.path, os.O_RDONLY, doing="read")
        except FileNotFoundError:
            return {}
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(1 << 20)
        try:
            document = json.loads(raw.decode("utf-8"))
            cursors = document["cursors"]
            if not isinstance(cursors, dict) or not all(
                isinstance(v, str) and MOMENT.match(v) for v in cursors.values()
            ):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"{self.path} is not a kprov cursor file (damaged, or edited by hand)",
                hint="Delete it: the next pull of each delta source then reads everything "
                "(a full pull), and saves new cursors.",
            ) from None
        return dict(cursors)

    def load(self, key: str) -> str | None:
        return self._read().get(key)

    def save(self, cursors: Mapping[str, str]) -> None:
        if not cursors:
            return
        merged = {**self._read(), **cursors}
        text = json.dumps({"version": 1, "cursors": merged}, indent=2, sort_keys=True) + "\n"
        replace_private(self.path, text)


class LedgerCursorStore:
    """Cursors in the run ledger (``STATE_DIR/ledger.sqlite3``, table ``cursors``)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def load(self, key: str) -> str | None:
        from kprov.state.ledger import Ledger
        from kprov.state.ledger_guards import saved_cursor

        ledger = Ledger.open(self.state_dir, create=False, migrate=False)
        try:
            found = saved_cursor(ledger, key)
        finally:
            if ledger is not None:
                ledger.close()
        if found is None:
            return FileCursorStore(self.state_dir).load(key)
        if not MOMENT.match(found):
            raise ConfigError(
                f"the run ledger holds a damaged delta cursor for {key.split('|')[0]}",
                hint="Run `kprov oneroster pull --full` once, or delete the cursor with "
                "sqlite3: the next pull then reads everything.",
            )
        return found

    def save(self, cursors: Mapping[str, str]) -> None:
        """Outside a run (a run saves its cursors with its end); the caller holds the lock."""
        import time

        from kprov.state.ledger import Ledger
        from kprov.state.ledger_guards import RunGuards, write_run_guards

        ledger = Ledger.open(self.state_dir)
        assert ledger is not None
        try:
            write = write_run_guards(RunGuards("", cursors=dict(cursors), now=time.time()))

            def work() -> None:
                with ledger.transaction() as db:
                    write(db, 0)

            ledger._guarded(work)
        finally:
            ledger.close()


class PendingCursors:
    """The cursors of this run's delta pulls, saved by ``commit`` once the run succeeded."""

    def __init__(self) -> None:
        self.pending: dict[str, str] = {}

    def hold(self, key: str, cursor: str) -> None:
        self.pending[key] = cursor

    def commit(self, store: CursorStore) -> None:
        store.save(self.pending)
        self.pending = {}
