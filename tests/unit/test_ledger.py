"""The run ledger as storage: schema, crash, concurrent reading, retention, migration, failures."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from kprov.errors import ConfigError, StorageError
from kprov.state import ledger_queries as queries
from kprov.state import ledger_schema
from kprov.state.ledger import APPLICATION_ID, BUSY_SECONDS, InputFile, Ledger, RunEnd
from tests.ledger_rows import T0, item, start


def test_a_new_ledger_has_the_schema_its_id_and_private_files(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path)
    assert ledger is not None
    ledger.begin_run(start("kprov-a"), [InputFile("s.yaml", "manifest", 12, "ab" * 32)])
    db = ledger.db
    assert db.execute("PRAGMA user_version").fetchone()[0] == ledger_schema.schema_version()
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "inputs", "items"} <= tables
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert files["ledger.sqlite3"] == 0o600
    assert files["ledger.sqlite3-wal"] == 0o600 and files["ledger.sqlite3-shm"] == 0o600
    ledger.close()


def test_a_run_without_an_end_reads_as_unfinished_after_a_crash(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path)
    assert ledger is not None
    ledger.begin_run(start("kprov-done"))
    ledger.end_run("kprov-done", RunEnd(T0 + 5, 0, counts='{"created": 3}'))
    ledger.begin_run(start("kprov-killed", T0 + 60))
    ledger.add_items("kprov-killed", [item(0, "s-1"), item(1, "s-2")])
    ledger.set_outcomes("kprov-killed", [(0, "registered", "", "", "", "r-1")])
    del ledger  # never ended (a kill -9 at this point is tests/integration/test_history.py)

    again = Ledger.open(tmp_path, create=False)
    assert again is not None
    runs = [queries.run_dict(r) for r in queries.recent_runs(again)]
    assert [(r["run_id"], r["unfinished"]) for r in runs] == [
        ("kprov-killed", True),
        ("kprov-done", False),
    ]
    items = queries.run_items(again, "kprov-killed")
    assert [(i["person"], i["outcome"]) for i in items] == [("s-1", "registered"), ("s-2", None)]


def test_history_reads_while_a_run_writes_without_waiting(tmp_path: Path) -> None:
    writer = Ledger.open(tmp_path)
    assert writer is not None
    writer.begin_run(start("kprov-1"))
    writer.add_items("kprov-1", [item(0, "s-1")])
    writer.db.execute("BEGIN IMMEDIATE")  # a run in the middle of a write transaction
    writer.db.execute("UPDATE items SET outcome = 'registered'")
    seen: list[object] = []

    def read() -> None:
        reader = Ledger.open(tmp_path, create=False, migrate=False)
        assert reader is not None
        seen.append(queries.run_items(reader, "kprov-1")[0]["outcome"])
        reader.close()

    thread = threading.Thread(target=read)
    thread.start()
    thread.join(BUSY_SECONDS / 2)  # a read that waited for the writer would still be waiting
    assert seen == [None]  # the last committed state, without waiting for the write
    assert not thread.is_alive()
    writer.db.execute("COMMIT")
    writer.close()


def test_retention_forgets_old_runs_with_their_items_and_inputs(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path)
    assert ledger is not None
    for day in range(5):
        run_id = f"kprov-day{day}"
        ledger.begin_run(start(run_id, T0 + day * 86_400), [InputFile("s.yaml", "manifest")])
        ledger.add_items(run_id, [item(0, f"s-{day}")])
    gone = ledger.prune(T0 + 2.5 * 86_400, keep="kprov-day0")
    assert gone == 2  # days 1 and 2; day 0 is the run being recorded
    assert {r["run_id"] for r in queries.recent_runs(ledger)} == {
        "kprov-day0", "kprov-day3", "kprov-day4",
    }  # fmt: skip
    assert ledger.db.execute("SELECT count(*) FROM items").fetchone()[0] == 3
    assert ledger.db.execute("SELECT count(*) FROM inputs").fetchone()[0] == 3
    assert queries.person_events(ledger, "s-1") == []


def test_a_person_is_found_by_external_or_sis_id_and_runs_by_a_prefix(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path)
    assert ledger is not None
    ledger.begin_run(start("kprov-3f2a9c"))
    ledger.add_items("kprov-3f2a9c", [item(0, "h-9d0c", sis="100210"), item(1, "h-other")])
    assert [e["person"] for e in queries.person_events(ledger, "100210")] == ["h-9d0c"]
    assert [e["person"] for e in queries.person_events(ledger, "h-9d0c")] == ["h-9d0c"]
    assert queries.find_run(ledger, "kprov-3f2a")["run_id"] == "kprov-3f2a9c"
    ledger.begin_run(start("kprov-3f2b00"))
    with pytest.raises(Exception, match="more than one run"):
        queries.find_run(ledger, "kprov-3f2")
    with pytest.raises(Exception, match="no run"):
        queries.find_run(ledger, "kprov-ffff")
    plan = ledger.db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM items WHERE person = ? OR sis_id = ?", ("a", "a")
    ).fetchall()
    assert "items_by_person" in str(plan) and "items_by_sis" in str(plan)


def test_a_state_directory_of_0_2_0_gets_a_ledger_at_its_first_run(tmp_path: Path) -> None:
    (tmp_path / "mapping.csv").write_text("external_user_id,account_id,created_at,sis_id,status\n")
    assert Ledger.open(tmp_path, create=False) is None  # readers never create it
    assert not (tmp_path / "ledger.sqlite3").exists()
    ledger = Ledger.open(tmp_path)
    assert ledger is not None and ledger.version() == ledger_schema.schema_version()


def test_an_older_ledger_is_migrated_in_place_and_keeps_its_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger.open(tmp_path)
    assert ledger is not None
    ledger.begin_run(start("kprov-old"))
    ledger.close()
    v2 = lambda db: db.execute("ALTER TABLE runs ADD COLUMN hold TEXT NOT NULL DEFAULT ''")  # noqa: E731
    monkeypatch.setattr(ledger_schema, "MIGRATIONS", [*ledger_schema.MIGRATIONS, v2])
    monkeypatch.setattr("kprov.state.ledger.MIGRATIONS", ledger_schema.MIGRATIONS)
    reader = Ledger.open(tmp_path, create=False, migrate=False)
    assert reader is not None and reader.needs_migration
    reader.close()
    upgraded = Ledger.open(tmp_path)
    assert upgraded is not None and upgraded.version() == ledger_schema.schema_version()
    rows = upgraded.db.execute("SELECT run_id, hold FROM runs").fetchall()
    assert rows == [("kprov-old", "")]


def test_a_newer_foreign_or_damaged_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 99")
    db.execute("CREATE TABLE runs (x)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="newer kprov"):
        Ledger.open(tmp_path)
    assert path.read_bytes() == before

    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE songs (title)")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="not a kprov run ledger"):
        Ledger.open(tmp_path)

    path.write_bytes(b"this is a spreadsheet, not a database" * 200)
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="damaged or is not a kprov run ledger"):
        Ledger.open(tmp_path)
    assert path.read_bytes() == before


def test_a_full_disk_is_a_storage_error_that_names_the_ledger(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path)
    assert ledger is not None
    ledger.begin_run(start("kprov-full"))
    pages = ledger.db.execute("PRAGMA page_count").fetchone()[0]
    ledger.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL, as a full disk gives
    rows = [item(n, f"s-{n}" * 40) for n in range(2000)]
    with pytest.raises(StorageError, match="no space left") as caught:
        ledger.add_items("kprov-full", rows)
    assert "ledger.sqlite3" in caught.value.message
    assert ledger.db.execute("SELECT count(*) FROM items").fetchone()[0] == 0  # all or nothing
    with pytest.raises(StorageError, match="no space left"):
        ledger.begin_run(start("kprov-next"), [], rows)
    assert [r["run_id"] for r in queries.recent_runs(ledger)] == ["kprov-full"]  # nor its row
    assert not ledger.db.in_transaction


def test_a_symlink_in_place_of_the_ledger_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.db"
    target.write_bytes(b"")
    (tmp_path / "ledger.sqlite3-wal").symlink_to(target)
    with pytest.raises(StorageError, match="symbolic link"):
        Ledger.open(tmp_path)
