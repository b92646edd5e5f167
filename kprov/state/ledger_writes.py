"""The run ledger's writes, as SQL: a run's start and inputs, its items, their outcomes, its
end, and the retention (``state.ledger.Ledger`` runs each in its transaction, under its
guard: this module knows the statements, not the locking nor the errors)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kprov.state.ledger import InputFile, RunEnd, RunStart

# Item columns, in the order ``add_items`` takes them (``provision.run_record`` builds them).
ITEM_COLUMNS = (
    "seq", "action", "person", "sis_id", "role", "instance", "instance_name", "instance_id",
    "account_id", "registration_id", "file", "line", "reason", "change", "spec", "role_change",
    "guard",
)  # fmt: skip


def insert_run(db: sqlite3.Connection, run: RunStart, inputs: Sequence[InputFile]) -> int:
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


def insert_items(
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


def update_outcomes(
    db: sqlite3.Connection, key: int, group: list[Sequence[Any]], *, as_json: bool
) -> None:
    """Outcomes of settled items of run *key*: (seq, outcome, detail, account_id,
    instance_id, registration_id); ids only overwrite when given. One statement for a
    group JSON can carry (*as_json*), row by row otherwise."""
    if as_json and len(group) >= JSON_ROWS and _outcomes_json(db, key, group):
        return
    db.executemany(
        "UPDATE items SET outcome = ?, detail = ?, "
        "account_id = CASE WHEN ? != '' THEN ? ELSE account_id END, "
        "instance_id = CASE WHEN ? != '' THEN ? ELSE instance_id END, "
        "registration_id = CASE WHEN ? != '' THEN ? ELSE registration_id END "
        "WHERE run = ? AND seq = ?",
        ((o, d, a, a, i, i, r, r, key, s) for s, o, d, a, i, r in group),
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


def update_end(db: sqlite3.Connection, run_id: str, end: RunEnd) -> None:
    db.execute(
        "UPDATE runs SET ended_at = ?, exit_code = ?, error = ?, counts = ?, requests = ?, "
        "requests_ok = ?, rate_limited = ? WHERE run_id = ?",
        (end.ended_at, end.exit_code, end.error, end.counts, end.requests, end.requests_ok,
         end.rate_limited, run_id),
    )  # fmt: skip


def delete_before(db: sqlite3.Connection, before: float, keep: str) -> int:
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
