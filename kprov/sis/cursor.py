"""Delta cursors: from when the next ``delta: true`` pull of each source asks for changes.

A cursor is taken *before* its pull starts (``pull``), held as pending while the run plans
and applies, and saved only once the run has succeeded (exit 0, under the state lock), so a
change made during a pull, or a run that failed or was braked, is pulled again next time;
never lost. ``CursorStore`` is the whole interface: the file store below keeps the cursors in
the state directory (JSON, replaced atomically, mode 0600) until the run ledger holds them.
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


class PendingCursors:
    """The cursors of this run's delta pulls, saved by ``commit`` once the run succeeded."""

    def __init__(self) -> None:
        self.pending: dict[str, str] = {}

    def hold(self, key: str, cursor: str) -> None:
        self.pending[key] = cursor

    def commit(self, store: CursorStore) -> None:
        store.save(self.pending)
        self.pending = {}
