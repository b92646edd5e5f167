"""Item rows written as one JSON statement a group read back exactly as rows bound one by one."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kprov.state import ledger as ledger_module
from kprov.state import ledger_writes
from kprov.state.ledger import Ledger, RunStart
from kprov.state.ledger_writes import JSON_ROWS

HOSTILE = [
    "plain", "", "é ü ß 北京 😀", 'quote " and \\ backslash', "tab\there", "new\nline",
    "\x01\x1f control", "=1+2", "null", "[1, 2]", "0", "-0", "1e5", "  spaced  ", "\u2028",
]  # fmt: skip


def rows(count: int, *, person: Any = None) -> list[tuple[Any, ...]]:
    made = []
    for seq in range(count):
        text = HOSTILE[seq % len(HOSTILE)]
        made.append((
            seq, "create_account", person if person is not None else f"p-{seq}-{text}",
            text if seq % 3 else "", "learner", "", "", "", "", "", "r.csv", seq + 2,
            "not in the mapping", "", '{"name": "A \\"B\\""}' if seq % 5 == 0 else None,
            seq % 2, "",
        ))  # fmt: skip
    return made


def items_of(ledger: Ledger) -> list[tuple[Any, ...]]:
    found = ledger.db.execute("SELECT * FROM items ORDER BY run, seq").fetchall()
    return [(*row, *(type(v).__name__ for v in row)) for row in found]


def written(tmp: Path, given: list[tuple[Any, ...]], *, as_json: bool) -> list[tuple[Any, ...]]:
    tmp.mkdir()
    ledger = Ledger.open(tmp)
    assert ledger is not None
    ledger.json = as_json
    ledger.begin_run(RunStart("kprov-1", "accounts import", "apply", 1.0), (), given)
    found = items_of(ledger)
    ledger.close()
    return found


@pytest.mark.parametrize("count", [JSON_ROWS - 1, JSON_ROWS, 300])
def test_json_groups_read_back_exactly_as_rows_bound_one_by_one(tmp_path: Path, count: int) -> None:
    given = rows(count)
    by_row = written(tmp_path / "a", given, as_json=False)
    assert written(tmp_path / "b", given, as_json=True) == by_row
    assert len(by_row) == count and by_row[7][13] == 9  # line: an INTEGER, not text


def test_columns_every_row_shares_are_bound_once_and_still_typed(tmp_path: Path) -> None:
    given = rows(100, person="same")  # person alike on every row, seq varies
    assert written(tmp_path / "b", given, as_json=True) == written(
        tmp_path / "a", given, as_json=False
    )


def test_a_group_json_cannot_carry_is_bound_row_by_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = ledger_writes._insert_json

    def spy(db: sqlite3.Connection, key: int, chunk: list[Any]) -> None:
        calls.append(len(chunk))
        real(db, key, chunk)

    monkeypatch.setattr(ledger_writes, "_insert_json", spy)
    given = rows(100)
    given[10] = (*given[10][:11], 12.5, *given[10][12:])  # a float: not for JSON
    by_row = written(tmp_path / "a", given, as_json=False)
    assert written(tmp_path / "b", given, as_json=True) == by_row
    assert calls == [100] and by_row[10][13] == 12.5
    lone = rows(100)
    lone[3] = (3, "create_account", "bad \udc80 surrogate", *lone[3][3:])
    with pytest.raises(UnicodeEncodeError):  # refused as binding it refuses: nothing written
        written(tmp_path / "c", lone, as_json=True)


def test_a_ledger_whose_sqlite_reads_no_json_binds_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "json_ready", lambda db: False)
    ledger = Ledger.open(tmp_path)
    assert ledger is not None and not ledger.json
    ledger.begin_run(RunStart("kprov-1", "accounts import", "apply", 1.0), (), rows(200))
    assert ledger.db.execute("SELECT count(*) FROM items").fetchone()[0] == 200


def outcomes(count: int) -> list[tuple[Any, ...]]:
    return [
        (seq, "created" if seq % 4 else "failed", HOSTILE[seq % len(HOSTILE)] if seq % 4 == 0
         else "", f"acct-{seq}" if seq % 4 else "", "", "reg" if seq % 7 == 0 else "")
        for seq in range(0, count, 2)
    ]  # fmt: skip


def settled(tmp: Path, *, as_json: bool) -> list[tuple[Any, ...]]:
    tmp.mkdir()
    ledger = Ledger.open(tmp)
    assert ledger is not None
    ledger.begin_run(RunStart("kprov-1", "accounts import", "apply", 1.0), (), rows(300))
    ledger.db.execute("UPDATE items SET account_id = 'kept' WHERE seq = 4")
    ledger.json = as_json
    ledger.set_outcomes("kprov-1", outcomes(300))
    found = items_of(ledger)
    ledger.close()
    return found


def test_outcome_groups_as_json_write_what_rows_bound_one_by_one_write(tmp_path: Path) -> None:
    found = settled(tmp_path / "b", as_json=True)
    assert found == settled(tmp_path / "a", as_json=False)
    assert found[4][3] == "failed" and found[4][10] == "kept"  # an id only overwrites if given
    assert found[2][3] == "created" and found[2][10] == "acct-2" and found[3][3] is None


def test_an_outcome_group_alike_but_for_its_ids_reads_back_exactly(tmp_path: Path) -> None:
    found = []
    for name, as_json in (("a", False), ("b", True)):
        (tmp_path / name).mkdir()
        ledger = Ledger.open(tmp_path / name)
        assert ledger is not None
        ledger.json = as_json
        ledger.begin_run(RunStart("kprov-1", "accounts import", "apply", 1.0), (), rows(200))
        ledger.set_outcomes("kprov-1", [(n, "created", "", f"a-{n}", "", "") for n in range(200)])
        found.append(items_of(ledger))
        ledger.close()
    assert found[0] == found[1] and found[1][199][10] == "a-199"
