"""The run ledger's schema, and the migrations that bring any older ledger up to it.

``MIGRATIONS[n]`` takes a ledger from schema *n* to *n + 1*; ``Ledger.open`` runs the missing
ones in one transaction under the state lock and then sets ``PRAGMA user_version``. A state
directory of kprov 0.2.0 has no ledger at all (schema 0): its first run creates it.

To change the schema, append a migration (never edit one that shipped): new tables, or
``ALTER TABLE ... ADD COLUMN`` with a default, so that older rows stay readable. Planned next
(issue 20, guards): ``holds`` (id, run, guard, why, state open/approved/dismissed, decided
by/at, the run that applied it) whose items are the ``items`` rows of the run that held them
(``provision.run_record.item_from_row`` rebuilds each exactly); ``source_fingerprints``
keyed by (run, input path), beside ``inputs``; and per-person absence counts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

_V1 = """
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    run_id        TEXT NOT NULL UNIQUE,
    command       TEXT NOT NULL,
    mode          TEXT NOT NULL,              -- apply | plan | admin
    started_at    REAL NOT NULL,              -- Unix time, seconds
    ended_at      REAL,                       -- NULL: running, or unfinished (killed)
    exit_code     INTEGER,
    error         TEXT,                       -- JSON {code, type, message, hint}
    os_user       TEXT NOT NULL DEFAULT '',
    host          TEXT NOT NULL DEFAULT '',
    pid           INTEGER,
    kprov_version TEXT NOT NULL DEFAULT '',
    profile       TEXT NOT NULL DEFAULT '',
    base_url      TEXT NOT NULL DEFAULT '',
    argv          TEXT NOT NULL DEFAULT '[]', -- JSON list, secrets hidden
    counts        TEXT NOT NULL DEFAULT '{}', -- JSON outcome -> count, kept lines included
    requests      INTEGER NOT NULL DEFAULT 0,
    requests_ok   INTEGER NOT NULL DEFAULT 0, -- answered 2xx: the credential worked
    rate_limited  INTEGER NOT NULL DEFAULT 0,
    parent        TEXT NOT NULL DEFAULT ''    -- the run whose plan this one applies
);
CREATE INDEX runs_by_start ON runs(started_at);
CREATE TABLE inputs (
    run    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    path   TEXT NOT NULL,
    kind   TEXT NOT NULL,                     -- manifest | roster | bundle | member | stdin
    size   INTEGER,
    sha256 TEXT
);
CREATE INDEX inputs_by_run ON inputs(run);
CREATE TABLE items (
    run             INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,         -- the item's index in the plan
    action          TEXT NOT NULL,
    outcome         TEXT,                     -- NULL until settled
    person          TEXT NOT NULL DEFAULT '', -- external id
    sis_id          TEXT NOT NULL DEFAULT '',
    role            TEXT NOT NULL DEFAULT '',
    instance        TEXT NOT NULL DEFAULT '',
    instance_name   TEXT NOT NULL DEFAULT '',
    instance_id     TEXT NOT NULL DEFAULT '',
    account_id      TEXT NOT NULL DEFAULT '',
    registration_id TEXT NOT NULL DEFAULT '',
    file            TEXT NOT NULL DEFAULT '',
    line            INTEGER,
    reason          TEXT NOT NULL DEFAULT '',
    change          TEXT NOT NULL DEFAULT '', -- moved | instructor_changed
    spec            TEXT,                     -- JSON instance spec (create_instance)
    role_change     INTEGER NOT NULL DEFAULT 0,
    detail          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run, seq)
);
CREATE INDEX items_by_person ON items(person);
CREATE INDEX items_by_sis ON items(sis_id);
"""


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Each statement of *script* in the caller's transaction (``executescript`` would
    commit it first)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


# MIGRATIONS[n] takes a ledger from schema n to n + 1, inside one transaction.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    lambda db: run_script(db, _V1),
]


def schema_version() -> int:
    return len(MIGRATIONS)
