"""The run ledger: what every run did, when, by whom and why (docs/history.md).

The journals say what exists; the ledger says what happened (DESIGN.md: "Facts and history
are different stores"). It is one SQLite file per state directory, ``ledger.sqlite3``, 0600
like the journals, written only under the state lock, read by `kprov history` at any time.

Durability: WAL with ``synchronous=FULL``. A run commits a handful of times (its start and
inputs, its planned items, its outcomes in groups, its end), so fsync on every commit costs
a few milliseconds a run and makes the ledger as durable as the mapping: what it says after a
power cut is what was acknowledged. WAL lets `kprov history` read a consistent snapshot while
a run writes, without blocking it. A run row without an end (a kill -9, a power cut) reads
as *unfinished*; SQLite's own journal keeps the file whole whatever the moment of the crash.

The schema carries a version (``PRAGMA user_version``) and an application id;
``ledger_schema.MIGRATIONS`` takes any older ledger to the current schema in one transaction,
and a ledger written by a newer kprov, or a file that is not a ledger, is refused and left
untouched.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kprov.errors import ConfigError, KprovError, StorageError
from kprov.state.files import UNCHANGED, fsync_dir, open_fd, refuse_non_regular, storage_error
from kprov.state.ledger_schema import MIGRATIONS, schema_version
from kprov.state.ledger_writes import (
    delete_before,
    insert_items,
    insert_run,
    json_ready,
    update_end,
    update_outcomes,
)

LEDGER_NAME = "ledger.sqlite3"
SIDE_FILES = ("-wal", "-shm", "-journal")
APPLICATION_ID = 0x6B707276  # "kprv": a SQLite file kprov made
BUSY_SECONDS = 10.0


@dataclass(frozen=True)
class RunStart:
    """Who started which run, where, with what."""

    run_id: str
    command: str
    mode: str
    started_at: float
    os_user: str = ""
    host: str = ""
    pid: int = 0
    kprov_version: str = ""
    profile: str = ""
    base_url: str = ""
    argv: str = "[]"  # JSON
    parent: str = ""  # the run that made the plan this run applies (a saved plan, a hold)
    job: str = ""  # its command and first input, as a later run of the same job names it


@dataclass(frozen=True)
class InputFile:
    path: str
    kind: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class RunEnd:
    ended_at: float
    exit_code: int
    error: str | None = None  # JSON
    counts: str = "{}"  # JSON
    requests: int = 0
    requests_ok: int = 0
    rate_limited: int = 0


# More writes in a run's begin or end transaction: (connection, the run's row key).
Extra = Callable[[sqlite3.Connection, int], None]


def ledger_path(state_dir: Path) -> Path:
    return state_dir / LEDGER_NAME


def ledger_error(path: Path, exc: sqlite3.Error, *, doing: str) -> KprovError:
    """A SQLite failure as advice naming the file (exit 9; exit 3 for a damaged file)."""
    import errno

    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    if code == sqlite3.SQLITE_FULL:
        return storage_error(path, OSError(errno.ENOSPC, "full"), doing=doing)
    if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
        return ConfigError(
            f"{path} is damaged or is not a kprov run ledger ({exc})",
            hint=f"Move it aside (mv {path} {path}.damaged): the next run starts a new ledger, "
            f"and the history it held stays in the moved file; {UNCHANGED}.",
        )
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StorageError(
            f"the run ledger {path} stayed locked by another process for {BUSY_SECONDS:g} s",
            hint="Something other than kprov holds it open (a backup, a sqlite3 shell): "
            "close it and rerun.",
        )
    return StorageError(
        f"cannot {doing} the run ledger {path}: {exc}",
        hint="Check that the state directory is writable (its -wal and -shm files are made "
        "beside the ledger) and has free space, then rerun; the mapping and the journals "
        "are not affected.",
    )


class Ledger:
    """One open ledger. Writers hold the state lock; every write is one transaction."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path
        self._lock = threading.Lock()
        self.wal = False  # False on a filesystem without shared memory: a rollback journal
        self.json = False  # this SQLite reads JSON: item rows go in a group a statement

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, state_dir: Path, *, create: bool = True, migrate: bool = True) -> Ledger | None:
        """The state directory's ledger (None when it has none and *create* is False).

        *create* and *migrate* only under the state lock. StorageError (exit 9) when the
        filesystem refuses, ConfigError (exit 3) for a file that is not a ledger, is damaged,
        or was written by a newer kprov: such a file is left exactly as it was.
        """
        path = ledger_path(state_dir)
        for suffix in ("", *SIDE_FILES):
            refuse_non_regular(path.with_name(path.name + suffix))
        if create and not path.exists():
            os.close(open_fd(path, os.O_RDWR | os.O_CREAT, doing="create the run ledger"))
            fsync_dir(state_dir)
        elif not path.exists():
            return None
        try:
            db = sqlite3.connect(
                str(path), timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise ledger_error(path, exc, doing="open") from None
        ledger = cls(db, path)
        try:
            ledger._prepare(migrate=migrate)
        except BaseException:
            db.close()
            raise
        return ledger

    def _prepare(self, *, migrate: bool) -> None:
        try:
            version = self.version()
            app = self.db.execute("PRAGMA application_id").fetchone()[0]
            tables = self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        except sqlite3.Error as exc:
            raise ledger_error(self.path, exc, doing="read") from None
        if app not in (0, APPLICATION_ID) or (app == 0 and tables):
            raise ConfigError(
                f"{self.path} is not a kprov run ledger (another program's SQLite file)",
                hint=f"Move it away; kprov then starts a new ledger; {UNCHANGED}.",
            )
        if version > schema_version():
            raise ConfigError(
                f"the run ledger {self.path} was written by a newer kprov (schema {version}; "
                f"this kprov knows up to {schema_version()})",
                hint=f"Upgrade kprov (pip install -U kprov); {UNCHANGED}.",
            )
        self._guarded(self._configure, doing="open")
        if version < schema_version() and migrate:
            self._guarded(self._migrate, doing="upgrade" if version else "create")

    def _configure(self) -> None:
        if self.version() == 0:
            self.db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table
        mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.execute("PRAGMA foreign_keys = ON")
        self.wal = str(mode).lower() == "wal"
        self.json = json_ready(self.db)

    def _migrate(self) -> None:
        with self.transaction():
            start = self.version()  # read again inside the write transaction
            for step in MIGRATIONS[start:]:
                step(self.db)
            self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.db.execute(f"PRAGMA user_version = {schema_version()}")

    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    @property
    def needs_migration(self) -> bool:
        return self.version() < schema_version()

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()

    # ------------------------------------------------------------------ writing

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (not thread-safe: callers
        go through ``_guarded``, which serialises them)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _guarded(self, work: Callable[[], Any], *, doing: str = "write") -> Any:
        with self._lock:
            try:
                return work()
            except sqlite3.Error as exc:
                if self.db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self.db.execute("ROLLBACK")
                raise ledger_error(self.path, exc, doing=doing) from None

    def begin_run(
        self,
        run: RunStart,
        inputs: Sequence[InputFile] = (),
        items: Iterable[Sequence[Any]] = (),
        *,
        also: Extra | None = None,
    ) -> None:
        """The run's row (its end still NULL: unfinished until ``end_run``), its inputs and
        the items it plans (``ledger_writes.ITEM_COLUMNS``), in one transaction: one fsync.
        *also* writes more in the same transaction (a hold's approval:
        ``state.ledger_guards``)."""

        def work() -> None:
            with self.transaction() as db:
                key = insert_run(db, run, inputs)
                insert_items(db, key, items, as_json=self.json)
                if also is not None:
                    also(db, key)

        self._guarded(work)

    def add_items(self, run_id: str, rows: Iterable[Sequence[Any]]) -> None:
        """More items of a begun run, in one transaction."""

        def work() -> None:
            with self.transaction() as db:
                insert_items(db, self._run_key(run_id), rows, as_json=self.json)

        self._guarded(work)

    def set_outcomes(self, run_id: str, rows: Iterable[Sequence[Any]]) -> None:
        """Outcomes of settled items: (seq, outcome, detail, account_id, instance_id,
        registration_id); ids only overwrite when given."""
        group = list(rows)

        def work() -> None:
            with self.transaction() as db:
                update_outcomes(db, self._run_key(run_id), group, as_json=self.json)

        self._guarded(work)

    def end_run(
        self,
        run_id: str,
        end: RunEnd,
        *,
        prune_before: float | None = None,
        also: Extra | None = None,
    ) -> int:
        """The run's end and, in the same transaction, what the guards leave (*also*: its
        hold, fingerprints, absence counts, delta cursors: ``state.ledger_guards``) and the
        retention: runs started before *prune_before* are forgotten (their items and inputs
        with them), except runs with an open hold. Returns how many."""

        def work() -> int:
            with self.transaction() as db:
                update_end(db, run_id, end)
                if also is not None:
                    also(db, self._run_key(run_id))
                gone = delete_before(db, prune_before, run_id) if prune_before else 0
            if gone:
                self.db.execute("PRAGMA incremental_vacuum")
            return gone

        return int(self._guarded(work))

    def record_run(self, run: RunStart, inputs: Sequence[InputFile], end: RunEnd) -> None:
        """A whole run at once (a plan, a run refused before it began): one transaction."""

        def work() -> None:
            with self.transaction() as db:
                insert_run(db, run, inputs)
                update_end(db, run.run_id, end)

        self._guarded(work)

    def prune(self, before: float, *, keep: str = "") -> int:
        """Forget runs that started before *before*, except *keep*. Returns how many."""

        def work() -> int:
            with self.transaction() as db:
                gone = delete_before(db, before, keep)
            if gone:
                self.db.execute("PRAGMA incremental_vacuum")
            return gone

        return int(self._guarded(work, doing="prune"))

    def _run_key(self, run_id: str) -> int:
        row = self.db.execute("SELECT id FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise sqlite3.IntegrityError(f"run {run_id} was never begun")
        return int(row[0])

    # ------------------------------------------------------------------ reading

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a read, each a dict of its columns."""

        def work() -> list[dict[str, Any]]:
            cursor = self.db.execute(sql, params)
            names = [column[0] for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        return list(self._guarded(work, doing="read"))

    def stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """Rows one by one (`history export` of a year of runs never holds them all)."""
        try:
            cursor = self.db.execute(sql, params)
            names = [column[0] for column in cursor.description or ()]
            for row in cursor:
                yield dict(zip(names, row, strict=True))
        except sqlite3.Error as exc:
            raise ledger_error(self.path, exc, doing="read") from None
