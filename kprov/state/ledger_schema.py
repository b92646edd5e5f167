"""The run ledger's schema, and the migrations that bring any older ledger up to it.

``MIGRATIONS[n]`` takes a ledger from schema *n* to *n + 1*; ``Ledger.open`` runs the missing
ones in one transaction under the state lock and then sets ``PRAGMA user_version``. A state
directory of kprov 0.2.0 has no ledger at all (schema 0): its first run creates it.

To change the schema, append a migration (never edit one that shipped): new tables, or
``ALTER TABLE ... ADD COLUMN`` with a default, so that older rows stay readable.

Schema 2 (the guards, docs/holds.md): ``items.guard`` names the guard that withheld an item,
``runs.job`` what a run repeats (its command and first input: "sync /srv/sis/sem.yaml");
``holds`` are the items a run withheld, waiting for a person (their items are the ``items``
rows of the run that held them, ``provision.run_record.item_from_row`` rebuilds each
exactly); ``source_fingerprints`` keep each source's fingerprint per run, beside
``inputs``; ``absences`` count, per registration, the consecutive runs that read its class
without its person (the removal grace); ``cursors`` are the OneRoster delta cursors (kept
in ``oneroster-cursors.json`` before).

Schema 3: ``holds.absences`` keeps the absence counts of the classes a held source states
(JSON: instances, sources, rows), written into ``absences`` only if the hold is approved:
a held night counts for the removal grace once a person confirmed its export.

Schema 4: ``fingerprints_by_reference`` finds a source's last applied full export with one
index seek (the run with the highest id: runs are numbered as they start), where
``fingerprints_by_source`` made every night that source was ever applied a row to sort: a
4,000-class manifest read nightly cost 0.2 s on its first night and ~3 s a year later.
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


_V2 = """
ALTER TABLE items ADD COLUMN guard TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN job TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_by_job ON runs(job, started_at);
CREATE TABLE holds (
    id                INTEGER PRIMARY KEY,
    hold_id           TEXT NOT NULL UNIQUE,
    run               INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    job               TEXT NOT NULL,             -- command and first input: what supersedes it
    command           TEXT NOT NULL,
    profile           TEXT NOT NULL DEFAULT '',
    base_url          TEXT NOT NULL DEFAULT '',
    created_at        REAL NOT NULL,
    trips             TEXT NOT NULL DEFAULT '[]', -- JSON [{guard, why, items, source}]
    items             INTEGER NOT NULL DEFAULT 0,
    state_fingerprint TEXT NOT NULL DEFAULT '',   -- the local state the run left
    items_fingerprint TEXT NOT NULL DEFAULT '',   -- what local state says of the held items
    state             TEXT NOT NULL DEFAULT 'open', -- open|approved|dismissed|superseded
    decided_at        REAL,
    decided_by        TEXT NOT NULL DEFAULT '',
    decided_run       TEXT NOT NULL DEFAULT ''    -- the approving run, or the superseding one
);
CREATE INDEX holds_by_job ON holds(job, state);
CREATE TABLE source_fingerprints (
    run         INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    applied     INTEGER NOT NULL DEFAULT 0,       -- 1: not held: the next run's reference
    delta       INTEGER NOT NULL DEFAULT 0,
    fingerprint TEXT NOT NULL,                    -- JSON: counts, shape, header
    sample      BLOB NOT NULL,                    -- the bottom-k id hashes, 4 bytes each
    PRIMARY KEY (run, source)
);
CREATE INDEX fingerprints_by_source ON source_fingerprints(source, applied, delta);
CREATE TABLE absences (
    account_id      TEXT NOT NULL,
    instance_id     TEXT NOT NULL,
    person          TEXT NOT NULL DEFAULT '',
    instance        TEXT NOT NULL DEFAULT '',
    role            TEXT NOT NULL DEFAULT '',
    source          TEXT NOT NULL DEFAULT '',
    count           INTEGER NOT NULL,             -- consecutive runs that read it without them
    explicit        INTEGER NOT NULL DEFAULT 0,   -- a tobedeleted row: remembered until done
    registration_id TEXT NOT NULL DEFAULT '',
    file            TEXT NOT NULL DEFAULT '',
    line            INTEGER NOT NULL DEFAULT 0,
    reason          TEXT NOT NULL DEFAULT '',
    first_run       TEXT NOT NULL DEFAULT '',
    last_run        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, instance_id)
);
CREATE INDEX absences_by_source ON absences(source);
CREATE TABLE cursors (
    source   TEXT PRIMARY KEY,                    -- url|client|schools
    cursor   TEXT NOT NULL,
    run      TEXT NOT NULL DEFAULT '',
    saved_at REAL NOT NULL
)
"""


_V3 = """
ALTER TABLE holds ADD COLUMN absences TEXT NOT NULL DEFAULT ''
"""


_V4 = """
CREATE INDEX fingerprints_by_reference ON source_fingerprints(source, applied, delta, run);
DROP INDEX fingerprints_by_source
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
    lambda db: run_script(db, _V2),
    lambda db: run_script(db, _V3),
    lambda db: run_script(db, _V4),
]


def schema_version() -> int:
    return len(MIGRATIONS)
