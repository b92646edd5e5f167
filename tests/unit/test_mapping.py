"""The mapping journal: durable appends, last row wins, torn tails repaired, never dropped."""

from __future__ import annotations

import multiprocessing
import stat
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from kprov.errors import ConfigError, LockHeldError
from kprov.state.lock import StateLock
from kprov.state.mapping import HEADER, MappingEntry, MappingJournal

UUID = "0b8e1f3c-1111-4222-8333-444455556666"


def entry(ext: str, account: str = UUID, status: str = "created", sis: str = "") -> MappingEntry:
    return MappingEntry(ext, account, "2026-01-01T00:00:00Z", sis, status)


def test_appends_create_a_private_file_with_the_header(tmp_path: Path) -> None:
    journal = MappingJournal(tmp_path / "state" / "mapping.csv")
    journal.append([entry("a"), entry("b", sis="S-1")])
    journal.close()
    text = journal.path.read_text()
    assert text.splitlines()[0] == ",".join(HEADER)
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600
    index = MappingJournal(journal.path).load()
    assert index.account_of == {"a": UUID, "b": UUID}
    assert index.sis_of == {"b": "S-1"}


def test_last_row_wins_so_disabled_supersedes_created(tmp_path: Path) -> None:
    journal = MappingJournal(tmp_path / "m.csv")
    journal.append([entry("a")])
    journal.append([entry("a", status="disabled")])
    index = MappingJournal(journal.path).load()
    assert "a" in index and "a" in index.disabled
    assert len(list(MappingJournal(journal.path).entries())) == 2


def test_torn_partial_last_line_is_moved_aside_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    journal = MappingJournal(path)
    journal.append([entry("a")])
    journal.close()
    with path.open("a") as handle:
        handle.write("b,0b8e1f3c-11")  # a crash mid-write
    index = MappingJournal(path).load(repair=True)
    assert index.account_of == {"a": UUID}
    assert len(index.repairs) == 1 and "moved to" in index.repairs[0]
    [aside] = tmp_path.glob("m.csv.torn-*")
    assert aside.read_text() == "b,0b8e1f3c-11\n"
    assert path.read_text().endswith(",created\n")
    assert MappingJournal(path).load(repair=True).repairs == []  # repaired once, for good


def test_torn_line_that_is_a_whole_row_is_completed(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(",".join(HEADER) + "\n" + f"a,{UUID},2026-01-01T00:00:00Z,,created")
    index = MappingJournal(path).load(repair=True)
    assert index.account_of == {"a": UUID}
    assert "completed" in index.repairs[0]
    assert path.read_text().endswith("created\n")


def test_damaged_middle_line_stops_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(",".join(HEADER) + "\n" + "a,,x\n" + f"b,{UUID},t,,created\n")
    with pytest.raises(ConfigError, match=r"m.csv:2 is damaged"):
        MappingJournal(path).load()


def test_foreign_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("id,name\n1,x\n")
    with pytest.raises(ConfigError, match="is not a kprov mapping file"):
        MappingJournal(path).load()


def test_a_mapping_a_spreadsheet_saved_is_refused_as_such(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" adds a byte order mark: the header then reads as another file's.
    Refused all the same (the save may have dropped leading zeros), but said as it is."""
    path = tmp_path / "m.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (",".join(HEADER) + f"\r\nb,{UUID},t,,created\r\n").encode())
    with pytest.raises(ConfigError, match="saved by a spreadsheet or editor") as caught:
        MappingJournal(path).load()
    assert "backup" in (caught.value.hint or "")
    path.write_bytes((",".join(HEADER) + f"\r\nb,{UUID},t,,created\r\n").encode())
    with pytest.raises(ConfigError, match="saved by a spreadsheet or editor"):  # "CSV (Comma
        MappingJournal(path).load()  # delimited)": CR LF, no mark; the csv module reads it as ours
    path.write_text("\ufeffid,name\n1,x\n")  # another file with a mark: foreign, as before
    with pytest.raises(ConfigError, match="is not a kprov mapping file"):
        MappingJournal(path).load()


def test_loading_a_large_mapping_is_fast(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    with path.open("w") as handle:
        handle.write(",".join(HEADER) + "\n")
        for i in range(100_000):
            handle.write(f"stu-{i},{UUID},2026-01-01T00:00:00Z,,created\n")
    index = MappingJournal(path).load()
    assert len(index) == 100_000


def _hold_lock(state_dir: str, ready: Event, release: Event) -> None:
    with StateLock(Path(state_dir), command="kprov accounts import"):
        ready.set()
        release.wait(10)


def test_second_process_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(LockHeldError) as caught, StateLock(tmp_path):
            pass
        assert caught.value.exit_code == 5
        assert f"pid {holder.pid}" in str(caught.value)
        assert "kprov accounts import" in str(caught.value)
    finally:
        release.set()
        holder.join(10)
    with StateLock(tmp_path):  # free again once the holder is gone
        pass
