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
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from kprov.errors import ConfigError, KprovError, StorageError
from kprov.state.files import UNCHANGED, fsync_dir, open_fd, refuse_non_regular, storage_error
from kprov.state.ledger_schema import MIGRATIONS, schema_version

LEDGER_NAME = "ledger.sqlite3"
SIDE_FILES = ("-wal", "-shm", "-journal")
APPLICATION_ID = 0x6B707276  # "kprv": a SQLite file kprov made
BUSY_SECONDS = 10.0

# Item columns, in the order ``add_items`` takes them (``provision.run_record`` builds them).
ITEM_COLUMNS = (
    "seq", "action", "person", "sis_id", "role", "instance", "instance_name", "instance_id",
    "account_id", "registration_id", "file", "line", "reason", "change", "spec", "role_change",
    "guard",
)  # fmt: skip
OUTCOME_COLUMNS = ("outcome", "detail", "account_id", "instance_id", "registration_id")


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
        the items it plans (``ITEM_COLUMNS``), in one transaction: one fsync. *also* writes
        more in the same transaction (a hold's approval: ``state.ledger_guards``)."""

        def work() -> None:
            with self.transaction() as db:
                key = _insert_run(db, run, inputs)
                _insert_items(db, key, items, as_json=self.json)
                if also is not None:
                    also(db, key)

        self._guarded(work)

    def add_items(self, run_id: str, rows: Iterable[Sequence[Any]]) -> None:
        """More items of a begun run, in one transaction."""

        def work() -> None:
            with self.transaction() as db:
                _insert_items(db, self._run_key(run_id), rows, as_json=self.json)

        self._guarded(work)

    def set_outcomes(self, run_id: str, rows: Iterable[Sequence[Any]]) -> None:
        """Outcomes of settled items: (seq, outcome, detail, account_id, instance_id,
        registration_id); ids only overwrite when given."""
        group = list(rows)

        def work() -> None:
            with self.transaction() as db:
                key = self._run_key(run_id)
                if self.json and len(group) >= JSON_ROWS and _outcomes_json(db, key, group):
                    return
                db.executemany(
                    "UPDATE items SET outcome = ?, detail = ?, "
                    "account_id = CASE WHEN ? != '' THEN ? ELSE account_id END, "
                    "instance_id = CASE WHEN ? != '' THEN ? ELSE instance_id END, "
                    "registration_id = CASE WHEN ? != '' THEN ? ELSE registration_id END "
                    "WHERE run = ? AND seq = ?",
                    ((o, d, a, a, i, i, r, r, key, s) for s, o, d, a, i, r in group),
                )

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
                _update_end(db, run_id, end)
                if also is not None:
                    also(db, self._run_key(run_id))
                gone = _delete_before(db, prune_before, run_id) if prune_before else 0
            if gone:
                self.db.execute("PRAGMA incremental_vacuum")
            return gone

        return int(self._guarded(work))

    def record_run(self, run: RunStart, inputs: Sequence[InputFile], end: RunEnd) -> None:
        """A whole run at once (a plan, a run refused before it began): one transaction."""

        def work() -> None:
            with self.transaction() as db:
                _insert_run(db, run, inputs)
                _update_end(db, run.run_id, end)

        self._guarded(work)

    def prune(self, before: float, *, keep: str = "") -> int:
        """Forget runs that started before *before*, except *keep*. Returns how many."""

        def work() -> int:
            with self.transaction() as db:
                gone = _delete_before(db, before, keep)
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


def _insert_run(db: sqlite3.Connection, run: RunStart, inputs: Sequence[InputFile]) -> int:
    cursor = db.execute(
        "INSERT INTO runs (run_id, command, mode, started_at, os_user, host, pid, "
        "kprov_version, profile, base_url, argv, parent, job) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (run.run_id, run.command, run.mode, run.started_at, run.os_user, run.host, run.pid,
         run.kprov_version, run.profile, run.base_url, run.argv, run.parent, run.job),
    )  # fmt: skip
    key = int(cursor.lastrowid or 0)
    db.executemany(
        "INSERT INTO inputs (run, path, kind, size, sha256) VALUES (?,?,?,?,?)",
        [(key, i.path, i.kind, i.size, i.sha256) for i in inputs],
    )
    return key


def _insert_items(
    db: sqlite3.Connection, key: int, rows: Iterable[Sequence[Any]], *, as_json: bool
) -> None:
    """Item rows of run *key*. *as_json* (this SQLite reads JSON): groups of rows go in as
    one statement each (``_insert_json``), a short or unusual group row by row."""
    columns = ", ".join(ITEM_COLUMNS)
    marks = ",".join("?" * (len(ITEM_COLUMNS) + 1))
    sql = f"INSERT INTO items (run, {columns}) VALUES ({marks})"
    if not as_json:
        db.executemany(sql, ((key, *row) for row in rows))
        return
    remaining = iter(rows)
    while chunk := list(islice(remaining, JSON_CHUNK)):
        if len(chunk) >= JSON_ROWS:
            try:
                _insert_json(db, key, chunk)
                continue
            except (TypeError, ValueError, UnicodeError):  # a value JSON cannot carry exactly
                pass
        db.executemany(sql, ((key, *row) for row in chunk))


# Item rows go in as one statement a group: ``executemany`` binds each row's 18 values and
# steps once a row, holding the GIL for most of it (50,000 account items: ~0.4 s of the one
# core a run's threads share); one ``INSERT ... SELECT FROM json_each`` does that work in C,
# in one step, with the GIL free (and, binding the columns all rows share once, with less
# CPU in all: 0.26 s instead of 0.44 s for 50,000 account items, measured).
JSON_ROWS = 64  # fewer rows: row by row
JSON_CHUNK = 8_192  # rows per statement (a million-item plan is never held at once)
_JSON_KINDS = frozenset({str, int, type(None)})


def json_ready(db: sqlite3.Connection) -> bool:
    """Whether this SQLite reads JSON (``json_each``, ``json_extract``: built in since 3.38,
    and in most builds since 3.9)."""
    try:
        db.execute("SELECT json_extract('[7]', '$[0]') FROM json_each('[1]')").fetchone()
    except sqlite3.Error:
        return False
    return True


def _insert_json(db: sqlite3.Connection, key: int, rows: list[Sequence[Any]]) -> None:
    """``INSERT INTO items ... SELECT ... FROM json_each(?)``: the columns that vary from row to
    row travel in one JSON array of arrays, the ones every row shares are bound once.

    Only text, whole numbers and NULL are sent this way (what ``item_rows`` makes); anything
    else raises TypeError and the caller binds row by row. Each value reads back as it was
    bound: JSON integers as INTEGER, strings as TEXT, null as NULL
    (tests/unit/test_ledger_json.py compares both ways on hostile text)."""
    columns = list(zip(*rows, strict=True))
    if len(columns) != len(ITEM_COLUMNS):
        raise TypeError("an item row has the wrong number of columns")
    picks: list[str] = []
    params: list[Any] = [None, key]  # ?1: the JSON rows, ?2: the run
    varying: list[tuple[Any, ...]] = []
    for values in columns:
        first = values[0]
        if values.count(first) == len(values) and (
            first is None or first.__class__ is str or set(map(type, values)) == {int}
        ):  # every row alike (text or NULL: equal values bind alike; numbers: all ints)
            params.append(first)
            picks.append(f"?{len(params)}")
            continue
        kinds = set(map(type, values))
        if not kinds <= _JSON_KINDS:
            raise TypeError(f"an item value is not text, a whole number or NULL: {kinds}")
        picks.append(f"json_extract(value, '$[{len(varying)}]')")
        varying.append(values)
    if not varying:  # one column must carry the rows: every one alike is impossible (seq)
        raise TypeError("no column varies")
    params[0] = json.dumps(list(zip(*varying, strict=True)), ensure_ascii=False, allow_nan=False)
    db.execute(
        f"INSERT INTO items (run, {', '.join(ITEM_COLUMNS)}) "
        f"SELECT ?2, {', '.join(picks)} FROM json_each(?1) ORDER BY key",
        params,
    )


def _outcomes_json(db: sqlite3.Connection, key: int, rows: list[Sequence[Any]]) -> bool:
    """``set_outcomes`` as one statement over a JSON array (as ``_insert_json``: the GIL is
    free while SQLite works, and a value every row shares is bound once); False, writing
    nothing, for a group JSON cannot carry."""
    if any(len(row) != 6 for row in rows):
        return False
    params: list[Any] = [None, key]  # ?1: the JSON rows, ?2: the run
    picks: list[str] = []
    varying: list[tuple[Any, ...]] = []
    for values in zip(*rows, strict=True):
        kinds = set(map(type, values))
        if not kinds <= _JSON_KINDS:
            return False
        if len(picks) and len(kinds) == 1 and values.count(values[0]) == len(values):
            params.append(values[0])  # the seq (first) always varies: it is the key
            picks.append(f"?{len(params)} AS c{len(picks)}")
        else:
            picks.append(f"json_extract(value, '$[{len(varying)}]') AS c{len(picks)}")
            varying.append(values)
    try:
        params[0] = json.dumps(
            list(zip(*varying, strict=True)), ensure_ascii=False, allow_nan=False
        )
        db.execute(
            "UPDATE items SET outcome = j.c1, detail = j.c2, "
            "account_id = CASE WHEN j.c3 != '' THEN j.c3 ELSE items.account_id END, "
            "instance_id = CASE WHEN j.c4 != '' THEN j.c4 ELSE items.instance_id END, "
            "registration_id = CASE WHEN j.c5 != '' THEN j.c5 ELSE items.registration_id END "
            f"FROM (SELECT {', '.join(picks)} FROM json_each(?1) LIMIT -1) AS j "
            "WHERE items.run = ?2 AND items.seq = j.c0",  # LIMIT -1: the group first, then
            params,  # each item by its key (without it SQLite may read the run's every item)
        )
    except (TypeError, ValueError, UnicodeError):
        return False
    return True


def _update_end(db: sqlite3.Connection, run_id: str, end: RunEnd) -> None:
    db.execute(
        "UPDATE runs SET ended_at = ?, exit_code = ?, error = ?, counts = ?, requests = ?, "
        "requests_ok = ?, rate_limited = ? WHERE run_id = ?",
        (end.ended_at, end.exit_code, end.error, end.counts, end.requests, end.requests_ok,
         end.rate_limited, run_id),
    )  # fmt: skip


def _delete_before(db: sqlite3.Connection, before: float, keep: str) -> int:
    """Runs started before *before*, except *keep*, any run whose hold is still open (a
    hold never expires silently: its items are that run's), and the run that applied each
    source's last export (the source guard's reference: without it, a source not read for
    longer than the retention -- a summer break, a hold nobody decides -- would read as new
    and never be judged, re-keyed or not)."""
    cursor = db.execute(
        "DELETE FROM runs WHERE started_at < ? AND run_id != ? "
        "AND id NOT IN (SELECT run FROM holds WHERE state = 'open') "
        f"AND id NOT IN ({_REFERENCE_RUNS})",
        (before, keep),
    )
    return int(cursor.rowcount)


# The run holding each source's last applied full export (as ``reference_rows`` picks it).
_REFERENCE_RUNS = (
    "SELECT max(run) FROM source_fingerprints WHERE applied = 1 AND delta = 0 GROUP BY source"
)
