"""The guards' rows in the run ledger (schema 2, docs/holds.md): holds, source fingerprints,
absence counts and delta cursors, as plain rows (``provision.guard_ledger`` turns them into
the guards' values). Read before planning, written in the transaction that ends a run
(``write_run_guards``), so that a hold, the references it is judged against and the
cursors that move past it are saved together or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from array import array
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kprov.errors import InputError
from kprov.state.ledger import Extra, Ledger

OPEN, APPROVED, DISMISSED, SUPERSEDED = "open", "approved", "dismissed", "superseded"
HOLD_FIELDS = (
    "h.hold_id, r.run_id, h.job, h.command, h.profile, h.base_url, h.created_at, h.trips, "
    "h.items, h.state_fingerprint, h.items_fingerprint, h.state, h.decided_at, h.decided_by, "
    "h.decided_run, r.os_user, r.host, r.started_at, r.id AS run_key"
)
LIST_HINT = "`kprov holds list` shows the holds waiting for a decision."


Fingerprint = tuple[dict[str, Any], list[int]]  # (its JSON, its sample of hashes)


def _pack(sample: Iterable[int]) -> bytes:
    packed = array("I", sample)  # 4 bytes per hash on every platform kprov runs on
    return packed.tobytes()


def _unpack(blob: bytes) -> list[int]:
    packed = array("I")
    packed.frombytes(blob)
    return list(packed)


# --------------------------------------------------------------- before planning


# A source's reference: its last applied full export (one seek in fingerprints_by_reference;
# runs are numbered as they start, so the highest run is the latest).
_REFERENCE = (
    "SELECT fingerprint, sample FROM source_fingerprints WHERE source = ? AND applied = 1 "
    "AND delta = 0 ORDER BY run DESC LIMIT 1"
)


_REFERENCE_RUN = _REFERENCE.replace("SELECT ", "SELECT run, ", 1)
_LAST_HELD = (
    "SELECT max(run) FROM source_fingerprints WHERE source = ? AND applied = 0 AND delta = 0"
)


def reference_rows(ledger: Ledger | None, sources: Collection[str]) -> dict[str, Fingerprint]:
    """The last applied fingerprint of each of *sources* that has one (a full export's: a
    delta lists changes only)."""
    found: dict[str, Fingerprint] = {}
    if ledger is None or ledger.needs_migration:
        return found
    for source in sources:
        rows = ledger.query(_REFERENCE, (source,))
        if rows:
            found[source] = (json.loads(rows[0]["fingerprint"]), _unpack(rows[0]["sample"]))
    return found


def unfinished_creations(ledger: Ledger | None, job: str) -> list[str]:
    """The accounts the last run of *job* planned and did not withhold, but did not create
    either (killed, stopped, refused): its rerun resumes them, they are no new decision."""
    if ledger is None or ledger.needs_migration or not job:
        return []
    rows = ledger.query(
        "SELECT i.person FROM items i WHERE i.run = (SELECT id FROM runs WHERE job = ? AND "
        "mode = 'apply' ORDER BY started_at DESC, id DESC LIMIT 1) AND i.action = "
        "'create_account' AND i.guard = '' AND (i.outcome IS NULL OR i.outcome IN "
        "('not_attempted', 'failed'))",
        (job,),
    )
    return [str(row["person"]) for row in rows]


def absence_rows(ledger: Ledger | None) -> list[dict[str, Any]]:
    """The absence counts, each with when the run that first found its person absent began
    (``first_started``: a registration made since then is part of the same change)."""
    if ledger is None or ledger.needs_migration:
        return []
    return ledger.query(
        "SELECT a.*, r.started_at AS first_started FROM absences a "
        "LEFT JOIN runs r ON r.run_id = a.first_run"
    )


def saved_cursor(ledger: Ledger | None, key: str) -> str | None:
    if ledger is None or ledger.needs_migration:
        return None
    rows = ledger.query("SELECT cursor FROM cursors WHERE source = ?", (key,))
    return str(rows[0]["cursor"]) if rows else None


# ---------------------------------------------------------------- the run's end


@dataclass(frozen=True)
class HoldRow:
    """A hold as the run that made it saves it."""

    hold_id: str
    command: str
    profile: str
    base_url: str
    created_at: float
    trips: list[dict[str, Any]]  # [{guard, why, items, source}]
    items: int
    state_fingerprint: str
    items_fingerprint: str
    # the absence counts of the classes and sources the source guard held (``AbsenceRows``
    # as JSON): the held night counts only if a person approves the hold
    absences: dict[str, Any] | None = None


@dataclass(frozen=True)
class AbsenceRows:
    """The counts a run leaves: its rows replace those of the classes and sources it read."""

    instances: Collection[str] = ()
    sources: Collection[str] = ()
    rows: list[dict[str, Any]] = field(default_factory=list)  # columns of ``absences``


@dataclass(frozen=True)
class RunGuards:
    """What a run's end writes besides its end: written together, or not at all."""

    run_id: str
    job: str = ""  # "sync /srv/sis/semester.yaml": a later run of it supersedes open holds
    hold: HoldRow | None = None
    # (source, applied, delta, JSON, sample): applied unless the run held the source
    fingerprints: list[tuple[str, bool, bool, dict[str, Any], list[int]]] = field(
        default_factory=list
    )
    absences: AbsenceRows | None = None
    cursors: Mapping[str, str] = field(default_factory=dict)  # delta cursors that move on
    now: float = 0.0


def write_run_guards(record: RunGuards) -> Extra:
    """The writes of *record*, for ``Ledger.end_run(also=...)``."""

    def write(db: sqlite3.Connection, key: int) -> None:
        if record.job:
            db.execute(
                "UPDATE holds SET state = ?, decided_at = ?, decided_run = ? "
                "WHERE state = ? AND job = ? AND run != ?",
                (SUPERSEDED, record.now, record.run_id, OPEN, record.job, key),
            )
        if record.hold is not None:
            _insert_hold(db, key, record.job, record.hold)
        db.executemany(
            "INSERT INTO source_fingerprints (run, source, applied, delta, fingerprint, "
            "sample) VALUES (?,?,?,?,?,?)",
            _new_fingerprints(db, key, record.fingerprints),
        )
        if record.absences is not None:
            _write_absences(db, record.absences, record.run_id)
        db.executemany(
            "INSERT INTO cursors (source, cursor, run, saved_at) VALUES (?,?,?,?) "
            "ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor, run = excluded.run, "
            "saved_at = excluded.saved_at",
            [(k, v, record.run_id, record.now) for k, v in record.cursors.items()],
        )

    return write


def _new_fingerprints(
    db: sqlite3.Connection, key: int, fingerprints: Iterable[tuple[str, bool, bool, Any, Any]]
) -> Iterator[tuple[int, str, int, int, str, bytes]]:
    """The fingerprint rows a run adds: an applied full export the same as its source's
    reference is not written again (the reference stays the run that first read it, and
    retention keeps that run). A 4,000-class manifest read nightly would otherwise add
    ~4 MB of identical samples a night. Written all the same: a held or delta source (a hold
    shows and approves its own), and a source held since its reference (approving that hold
    later must not make it newer than tonight's reading, as it would with no row here)."""
    for source, applied, delta, data, sample in fingerprints:
        text, packed = json.dumps(data), _pack(sample)
        if applied and not delta:
            last = db.execute(_REFERENCE_RUN, (source,)).fetchone()
            held = db.execute(_LAST_HELD, (source,)).fetchone()[0]
            same = last is not None and (last[1], bytes(last[2])) == (text, packed)
            if same and (held is None or held < last[0]):
                continue
        yield key, source, int(applied), int(delta), text, packed


def _insert_hold(db: sqlite3.Connection, key: int, job: str, hold: HoldRow) -> None:
    db.execute(
        "INSERT INTO holds (hold_id, run, job, command, profile, base_url, created_at, trips, "
        "items, state_fingerprint, items_fingerprint, absences) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (hold.hold_id, key, job, hold.command, hold.profile, hold.base_url, hold.created_at,
         json.dumps(hold.trips), hold.items, hold.state_fingerprint, hold.items_fingerprint,
         json.dumps(hold.absences) if hold.absences else ""),
    )  # fmt: skip


ABSENCE_COLUMNS = (
    "account_id", "instance_id", "person", "instance", "role", "source", "count", "explicit",
    "registration_id", "file", "line", "reason", "first_run",
)  # fmt: skip


def _write_absences(db: sqlite3.Connection, update: AbsenceRows, run_id: str) -> None:
    """Replace the counts of the classes and sources the run read; keep the others."""
    db.executemany(
        "DELETE FROM absences WHERE explicit = 0 AND instance_id = ?",
        [(i,) for i in update.instances],
    )
    db.executemany(
        "DELETE FROM absences WHERE explicit = 1 AND source = ?", [(s,) for s in update.sources]
    )
    columns = ", ".join(ABSENCE_COLUMNS)
    db.executemany(
        f"INSERT OR REPLACE INTO absences ({columns}, last_run) "
        f"VALUES ({','.join('?' * (len(ABSENCE_COLUMNS) + 1))})",
        [(*(row[c] for c in ABSENCE_COLUMNS[:-1]), row["first_run"] or run_id, run_id)
         for row in update.rows],
    )  # fmt: skip


# ------------------------------------------------------------------------ holds


def list_holds(ledger: Ledger, *, every: bool = False, limit: int = 50) -> list[dict[str, Any]]:
    """Open holds, newest first (with *every*: decided ones too)."""
    where = "" if every else "WHERE h.state = 'open'"
    return [
        {k: v for k, v in hold_dict(row).items() if k != "run_key"}
        for row in ledger.query(
            f"SELECT {HOLD_FIELDS} FROM holds h JOIN runs r ON r.id = h.run {where} "
            "ORDER BY h.created_at DESC, h.id DESC LIMIT ?",
            (limit,),
        )
    ]


def find_hold(ledger: Ledger | None, ref: str) -> dict[str, Any]:
    """The hold *ref* names (its id, or a unique start of it, with or without `hold-`);
    InputError (exit 2) naming `kprov holds list` otherwise."""
    ref = ref.strip()
    rows: list[dict[str, Any]] = []
    if ledger is not None and not ledger.needs_migration and ref:
        for wanted in dict.fromkeys([ref, f"hold-{ref}"]):
            rows = ledger.query(
                f"SELECT {HOLD_FIELDS} FROM holds h JOIN runs r ON r.id = h.run "
                "WHERE h.hold_id = ?",
                (wanted,),
            )
            if rows:
                break
        if not rows and len(ref.removeprefix("hold-")) >= 4:
            escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = ledger.query(
                f"SELECT {HOLD_FIELDS} FROM holds h JOIN runs r ON r.id = h.run "
                "WHERE h.hold_id LIKE ? ESCAPE '\\' OR h.hold_id LIKE ? ESCAPE '\\' LIMIT 2",
                (escaped + "%", "hold-" + escaped + "%"),
            )
    if len(rows) == 1:
        return hold_dict(rows[0])
    if rows:
        raise InputError(f"more than one hold starts with {ref!r}: give more of its id")
    raise InputError(f"no hold {ref!r} in the ledger", hint=LIST_HINT)


def hold_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    from kprov.state.ledger_queries import iso

    data = dict(row)
    try:
        trips = json.loads(data.get("trips") or "[]")
    except ValueError:
        trips = None
    if not isinstance(trips, list) or not all(isinstance(t, dict) for t in trips):
        trips = [{"guard": "?", "why": "(the ledger's record of this hold is damaged)",
                  "items": data.get("items"), "source": ""}]  # fmt: skip
    data["trips"] = [{k: t.get(k, "") for k in ("guard", "why", "items", "source")}
                     for t in trips]  # fmt: skip
    data["created_at"] = iso(data["created_at"])
    data["decided_at"] = iso(data["decided_at"])
    data["started_at"] = iso(data["started_at"])
    return data


def run_hold(ledger: Ledger, run_id: str) -> dict[str, Any] | None:
    """The hold a run made, if any (`kprov history RUN_ID` names it)."""
    if ledger.needs_migration:
        return None
    rows = ledger.query(
        f"SELECT {HOLD_FIELDS} FROM holds h JOIN runs r ON r.id = h.run WHERE r.run_id = ?",
        (run_id,),
    )
    if not rows:
        return None
    found = hold_dict(rows[0])
    found.pop("run_key", None)
    return found


def held_rows(ledger: Ledger, hold: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The items the hold's run withheld (every column ``item_from_row`` needs)."""
    from kprov.state.ledger_queries import ITEM_FIELDS

    return ledger.query(
        f"SELECT {ITEM_FIELDS} FROM items WHERE run = ? AND guard != '' ORDER BY seq",
        (hold["run_key"],),
    )


def hold_fingerprints(ledger: Ledger, hold: Mapping[str, Any]) -> list[Fingerprint]:
    """The fingerprints of the sources the hold's run read."""
    return [
        (json.loads(row["fingerprint"]), _unpack(row["sample"]))
        for row in ledger.query(
            "SELECT fingerprint, sample FROM source_fingerprints WHERE run = ? ORDER BY source",
            (hold["run_key"],),
        )
    ]


def reference_before(ledger: Ledger, source: str, run_key: int) -> Fingerprint | None:
    """The fingerprint a held source was judged against: the last applied before the run."""
    rows = ledger.query(
        "SELECT fingerprint, sample FROM source_fingerprints WHERE source = ? AND applied = 1 "
        "AND delta = 0 AND run < ? ORDER BY run DESC LIMIT 1",
        (source, run_key),
    )
    if not rows:
        return None
    return (json.loads(rows[0]["fingerprint"]), _unpack(rows[0]["sample"]))


def decide(
    hold_id: str, state: str, *, who: str, now: float, run_id: str = "", run_key: int = 0
) -> Extra:
    """Mark an open hold approved (in the transaction that begins its approving run) or
    dismissed. Approving also makes the held sources' fingerprints the references (what was
    held is now applied) and writes the absence counts their night left (the held night
    counts: the grace goes on from there). Refuses (nothing written) a hold that is no
    longer open."""

    def write(db: sqlite3.Connection, _key: int) -> None:
        cursor = db.execute(
            "UPDATE holds SET state = ?, decided_at = ?, decided_by = ?, decided_run = ? "
            "WHERE hold_id = ? AND state = ?",
            (state, now, who, run_id, hold_id, OPEN),
        )
        if cursor.rowcount != 1:
            raise InputError(f"hold {hold_id} is no longer open", hint=LIST_HINT)
        if state == APPROVED and run_key:
            db.execute("UPDATE source_fingerprints SET applied = 1 WHERE run = ?", (run_key,))
            _count_held_night(db, hold_id, run_key)

    return write


def _count_held_night(db: sqlite3.Connection, hold_id: str, run_key: int) -> None:
    """The absence counts an approved hold's night left for its held classes."""
    row = db.execute(
        "SELECT h.absences, r.run_id FROM holds h JOIN runs r ON r.id = h.run "
        "WHERE h.hold_id = ? AND h.run = ?",
        (hold_id, run_key),
    ).fetchone()
    if row is None or not row[0]:
        return
    try:
        data = json.loads(row[0])
        update = AbsenceRows(list(data["instances"]), list(data["sources"]), list(data["rows"]))
    except (ValueError, KeyError, TypeError):
        return  # a damaged record: the night does not count (the grace only lasts longer)
    _write_absences(db, update, str(row[1]))


def dismiss(ledger: Ledger, hold_id: str, *, who: str, now: float) -> None:
    def work() -> None:
        with ledger.transaction() as db:
            decide(hold_id, DISMISSED, who=who, now=now)(db, 0)

    ledger._guarded(work)


def previous_run(ledger: Ledger, hold: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run of the same job before the hold's: "last night", shown beside it."""
    from kprov.state.ledger_queries import RUN_FIELDS

    rows = ledger.query(
        f"SELECT {RUN_FIELDS} FROM runs WHERE job = ? AND command = ? AND mode = 'apply' AND "
        "id < ? AND ended_at IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT 1",
        (hold["job"], hold["command"], hold["run_key"]),
    )
    return rows[0] if rows else None
