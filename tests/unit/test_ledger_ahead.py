"""Items written ahead of the sender: each is in a committed transaction before the request
that carries it may go, and a ledger that refuses stops what is not recorded."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from kprov.errors import StorageError
from kprov.provision import recording as recording_module
from kprov.provision.recording import RunRecording
from kprov.state.ledger import Ledger, RunStart


def rows(count: int) -> list[tuple[Any, ...]]:
    return [(n, "create_account", f"p{n}", "", "learner", "", "", "", "", "", "r.csv", n + 2,
             "not in the mapping", "", None, 0, "") for n in range(count)]  # fmt: skip


def committed(tmp_path: Path) -> int:
    """Items another connection sees: what a kill -9 now would leave."""
    reader = Ledger.open(tmp_path, create=False, migrate=False)
    assert reader is not None
    try:
        return int(reader.db.execute("SELECT count(*) FROM items").fetchone()[0])
    finally:
        reader.close()


def test_the_first_items_are_committed_at_once_and_each_later_one_before_it_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recording_module, "AHEAD_FIRST", 10)
    monkeypatch.setattr(recording_module, "AHEAD_MOST", 100)
    gate = threading.Event()
    real = Ledger.add_items

    def held_back(self: Ledger, run_id: str, chunk: Any) -> None:
        gate.wait(5)  # the writer thread waits until the test lets it go
        real(self, run_id, chunk)

    monkeypatch.setattr(Ledger, "add_items", held_back)
    rec = RunRecording(RunStart("kprov-1", "accounts import", "apply", 1.0))
    rec.begin(tmp_path, [], rows=iter(rows(500)), ahead=True)
    assert committed(tmp_path) == 10  # the run's row and its first items, before any send
    rec.wait_recorded(9)  # recorded: returns at once
    sent: list[int] = []

    def send() -> None:
        rec.wait_recorded(480)
        sent.append(480)

    waiter = threading.Thread(target=send)
    waiter.start()
    waiter.join(0.05)
    assert sent == [] and committed(tmp_path) == 10  # item 480 is not recorded: it waits
    gate.set()
    waiter.join(5)
    assert sent == [480] and committed(tmp_path) >= 481
    rec.flush()  # the run's end waits for every item
    assert committed(tmp_path) == 500
    rec.close()


def test_a_ledger_that_refuses_a_later_group_stops_what_it_did_not_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recording_module, "AHEAD_FIRST", 10)

    def full(self: Ledger, run_id: str, chunk: Any) -> None:
        raise StorageError(f"cannot write the run ledger {self.path}: disk full", hint="Free")

    monkeypatch.setattr(Ledger, "add_items", full)
    rec = RunRecording(RunStart("kprov-1", "accounts import", "apply", 1.0))
    rec.begin(tmp_path, [], rows=rows(100), ahead=True)
    rec.wait_recorded(9)  # the first group is in: those may go
    with pytest.raises(StorageError, match=r"could not record this run's items.*disk full"):
        rec.wait_recorded(10)
    assert rec.failure is not None and committed(tmp_path) == 10
    rec.end(exit_code=9)  # the end is still tried: the run reads as ended, not unfinished
    rec.close()
    reader = Ledger.open(tmp_path, create=False)
    assert reader is not None
    assert reader.db.execute("SELECT exit_code FROM runs").fetchone()[0] == 9


def test_a_short_plan_is_recorded_whole_before_anything_is_sent(tmp_path: Path) -> None:
    rec = RunRecording(RunStart("kprov-1", "accounts import", "apply", 1.0))
    rec.begin(tmp_path, [], rows=rows(50), ahead=True)
    assert committed(tmp_path) == 50 and rec._writer is None
    rec.wait_recorded(49)
    rec.close()


def test_the_collector_is_lenient_during_a_run_and_as_before_after_it() -> None:
    import gc

    from kprov.gc_pause import YOUNG, gc_lenient

    before = gc.get_threshold()
    with pytest.raises(KeyError), gc_lenient():
        assert gc.get_threshold() == (max(YOUNG, before[0]), *before[1:]) and gc.isenabled()
        raise KeyError("a run cut short")
    assert gc.get_threshold() == before
