"""The source guard's references over a school year (issue 24, growth): finding a source's last
applied export is one index seek however many nights it was read, and a night whose export
is the same as its reference adds no fingerprint row (a 4,000-class manifest read nightly
would add ~4 MB of identical samples a night).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from kprov.state import ledger_guards as store
from kprov.state import ledger_schema
from kprov.state.ledger import Ledger, RunEnd
from tests.ledger_rows import T0, start

DAY = 86_400.0
SOURCE = "/srv/sis/class-0001.csv"
SAME: dict[str, Any] = {"source": SOURCE, "rows": 250, "ids": 250}


def night(
    ledger: Ledger,
    run_id: str,
    at: float,
    fingerprints: list[tuple[str, bool, bool, dict[str, Any], list[int]]],
) -> None:
    ledger.begin_run(start(run_id, at), [])
    guards = store.RunGuards(run_id, "sync s.yaml", fingerprints=fingerprints, now=at)
    ledger.end_run(run_id, RunEnd(at + 60, 0), also=store.write_run_guards(guards))


def rows(ledger: Ledger) -> list[tuple[str, str, int]]:
    return [
        (r[0], r[1], r[2])
        for r in ledger.db.execute(
            "SELECT r.run_id, f.source, f.applied FROM source_fingerprints f "
            "JOIN runs r ON r.id = f.run ORDER BY f.run, f.source"
        )
    ]


def open_ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger.open(tmp_path)
    assert ledger is not None
    return ledger


def test_an_unchanged_export_adds_no_row_and_stays_the_reference(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path)
    other = "/srv/sis/class-0002.csv"
    night(
        ledger,
        "n1",
        T0,
        [(SOURCE, True, False, SAME, [1, 2, 3]), (other, True, False, {"ids": 1}, [7])],
    )
    both = [(SOURCE, True, False, SAME, [1, 2, 3]), (other, True, False, {"ids": 1}, [7])]
    for day in range(2, 6):  # four nights, the same two exports
        night(ledger, f"n{day}", T0 + day * DAY, both)
    assert rows(ledger) == [("n1", SOURCE, 1), ("n1", other, 1)]
    night(ledger, "n6", T0 + 6 * DAY, [(SOURCE, True, False, SAME, [1, 2, 4])])  # it changed
    assert rows(ledger)[-1] == ("n6", SOURCE, 1)
    assert store.reference_rows(ledger, [SOURCE, other]) == {
        SOURCE: (SAME, [1, 2, 4]),
        other: ({"ids": 1}, [7]),
    }
    # retention (history_days) keeps the run that still holds a reference, whatever its age
    assert ledger.prune(T0 + 30 * DAY, keep="n6") == 4
    assert {r[0] for r in ledger.db.execute("SELECT run_id FROM runs")} == {"n1", "n6"}


def test_held_and_delta_fingerprints_are_always_written(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path)
    night(ledger, "n1", T0, [(SOURCE, True, False, SAME, [1])])
    night(ledger, "n2", T0 + DAY, [(SOURCE, False, False, SAME, [1])])  # held: its own row
    night(ledger, "n3", T0 + 2 * DAY, [(SOURCE, True, True, SAME, [1])])  # a delta: its own row
    assert rows(ledger) == [("n1", SOURCE, 1), ("n2", SOURCE, 0), ("n3", SOURCE, 1)]


def test_a_source_held_since_its_reference_keeps_tonights_reading(tmp_path: Path) -> None:
    """n2's hold approved after n3 read the old export again: the reference must be n3's
    (the latest reading), as when every night wrote its row."""
    ledger = open_ledger(tmp_path)
    night(ledger, "n1", T0, [(SOURCE, True, False, SAME, [1])])
    night(ledger, "n2", T0 + DAY, [(SOURCE, False, False, {"ids": 9}, [9])])  # held
    night(ledger, "n3", T0 + 2 * DAY, [(SOURCE, True, False, SAME, [1])])  # the old one again
    assert rows(ledger)[-1] == ("n3", SOURCE, 1)
    ledger.db.execute("UPDATE source_fingerprints SET applied = 1 WHERE run = 2")  # approved
    assert store.reference_rows(ledger, [SOURCE]) == {SOURCE: (SAME, [1])}


def test_the_reference_is_one_index_seek(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path)
    plan = " ".join(
        str(row[-1])
        for row in ledger.db.execute("EXPLAIN QUERY PLAN " + store._REFERENCE, (SOURCE,))
    )
    assert "fingerprints_by_reference" in plan and "TEMP B-TREE" not in plan


def test_a_schema_3_ledger_gains_the_index_and_keeps_its_fingerprints(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "ledger.sqlite3")
    for migrate in ledger_schema.MIGRATIONS[:3]:
        migrate(db)
    db.execute("PRAGMA application_id = 1802531446")
    db.execute("PRAGMA user_version = 3")
    db.execute(
        "INSERT INTO runs (run_id, command, mode, started_at) VALUES ('old', 'sync', 'apply', ?)",
        (T0,),
    )
    db.execute(
        "INSERT INTO source_fingerprints (run, source, applied, delta, fingerprint, sample) "
        "VALUES (1, ?, 1, 0, '{\"ids\": 1}', x'01000000')",
        (SOURCE,),
    )
    db.commit()
    db.close()
    ledger = open_ledger(tmp_path)
    assert ledger.version() == ledger_schema.schema_version() == 4
    names = {r[0] for r in ledger.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "fingerprints_by_reference" in names and "fingerprints_by_source" not in names
    assert store.reference_rows(ledger, [SOURCE]) == {SOURCE: ({"ids": 1}, [1])}
