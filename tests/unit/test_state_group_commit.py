"""Group commit: rows that arrive together share one write and one fsync; each caller returns
only once its own rows are durable, and a failed fsync fails every caller of its group."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kprov.errors import StorageError
from kprov.state.mapping import MappingEntry, MappingJournal

UUID = "0b8e1f3c-1111-4222-8333-444455556666"


def entry(ext: str) -> MappingEntry:
    return MappingEntry(ext, UUID, "2026-01-01T00:00:00Z", "", "created")


class Disk:
    """An fsync stand-in: counts calls, remembers what each completed fsync made durable,
    and can hold or fail chosen calls."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls = 0
        self.durable: set[str] = set()
        self.hold: dict[int, threading.Event] = {}
        self.entered: dict[int, threading.Event] = {}
        self.fail: set[int] = set()
        self.delay = 0.0
        self._real = os.fsync
        self._lock = threading.Lock()

    def fsync(self, fd: int) -> None:
        with self._lock:
            self.calls += 1
            number = self.calls
        self.entered.setdefault(number, threading.Event()).set()
        if number in self.hold:
            assert self.hold[number].wait(10)
        if self.delay:
            time.sleep(self.delay)
        if number in self.fail:
            raise OSError(5, "Input/output error")
        self._real(fd)
        lines = self.path.read_text().splitlines()[1:]
        with self._lock:
            self.durable.update(line.split(",")[0] for line in lines)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def queued(journal: MappingJournal) -> int:
    group = journal._open_group
    return len(group.chunks) if group else 0


def start(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()


@pytest.fixture
def journal(tmp_path: Path) -> MappingJournal:
    journal = MappingJournal(tmp_path / "m.csv")
    journal.append([entry("first")])  # the file and its header exist before the race
    return journal


def test_rows_arriving_together_share_one_fsync(
    journal: MappingJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(journal.path)
    disk.hold[1] = threading.Event()
    monkeypatch.setattr(os, "fsync", disk.fsync)
    errors: list[BaseException] = []

    def append(name: str) -> None:
        try:
            journal.append([entry(name)])
            assert name in disk.durable  # returned only once its own row was fsync'ed
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    leader = threading.Thread(target=append, args=("lead",))
    leader.start()
    assert disk.entered.setdefault(1, threading.Event()).wait(10)  # the leader is in fsync
    followers = [threading.Thread(target=append, args=(f"t{n}",)) for n in range(31)]
    start(followers)
    wait_until(lambda: queued(journal) == 31)  # all 31 queued while the disk was busy
    disk.hold[1].set()
    join([leader, *followers])
    assert errors == []
    assert disk.calls == 2  # one fsync for the leader's row, ONE for the 31 that came together
    names = [e.external_user_id for e in MappingJournal(journal.path).entries()]
    assert sorted(names) == sorted(["first", "lead", *(f"t{n}" for n in range(31))])


def test_every_row_lands_exactly_once_under_contention(
    journal: MappingJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(journal.path)
    disk.delay = 0.001
    monkeypatch.setattr(os, "fsync", disk.fsync)
    not_durable: list[str] = []

    def worker(t: int) -> None:
        for i in range(25):
            rows = [entry(f"w{t}-{i}-{k}") for k in range(1 + i % 3)]
            journal.append(rows)
            not_durable.extend(
                r.external_user_id for r in rows if r.external_user_id not in disk.durable
            )

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(12)]
    start(threads)
    join(threads)
    journal.close()
    assert not_durable == []
    names = [e.external_user_id for e in MappingJournal(journal.path).entries()]
    expected = ["first"] + [
        f"w{t}-{i}-{k}" for t in range(12) for i in range(25) for k in range(1 + i % 3)
    ]
    assert sorted(names) == sorted(expected) and len(names) == len(set(names))
    lines = journal.path.read_text().splitlines()[1:]
    for t in range(12):  # one caller's rows stay together, in their order
        for i in range(25):
            block = [f"w{t}-{i}-{k}" for k in range(1 + i % 3)]
            start_at = next(n for n, line in enumerate(lines) if line.startswith(block[0] + ","))
            assert [line.split(",")[0] for line in lines[start_at : start_at + len(block)]] == block
    assert disk.calls < len(expected)  # (grouping happened; how much is bench/group_commit.py)


def test_a_failed_group_fsync_fails_every_caller_and_records_none_of_it(
    journal: MappingJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(journal.path)
    disk.hold[1] = threading.Event()
    disk.fail.add(2)
    monkeypatch.setattr(os, "fsync", disk.fsync)
    outcome: dict[str, str] = {}

    def append(name: str) -> None:
        try:
            journal.append([entry(name)])
            outcome[name] = "durable"
        except StorageError as exc:
            outcome[name] = str(exc)

    leader = threading.Thread(target=append, args=("lead",))
    leader.start()
    assert disk.entered.setdefault(1, threading.Event()).wait(10)
    group = [threading.Thread(target=append, args=(f"g{n}",)) for n in range(8)]
    start(group)
    wait_until(lambda: queued(journal) == 8)
    disk.hold[1].set()
    join([leader, *group])
    assert outcome.pop("lead") == "durable"
    assert len(outcome) == 8
    assert all(f"cannot write {journal.path}" in message for message in outcome.values())
    names = [e.external_user_id for e in MappingJournal(journal.path).entries()]
    assert names == ["first", "lead"]  # none of the failed group, not even in the page cache
    late = threading.Thread(target=append, args=("late",))
    late.start()
    late.join(10)
    assert f"cannot write {journal.path}" in outcome["late"]  # the root cause, again


def test_a_single_caller_pays_one_write_and_one_fsync(
    journal: MappingJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(journal.path)
    writes: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: Any) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "fsync", disk.fsync)
    monkeypatch.setattr(os, "write", counting_write)
    journal.append([entry("a"), entry("b")])
    journal.append([])  # nothing to do: no write, no fsync
    assert disk.calls == 1 and len(writes) == 1
