"""State files are precious: foreign files untouched, no symlinks, private modes and dirs."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

import pytest

from kprov.errors import ConfigError, ExitCode, StorageError
from kprov.state.files import create_private, ensure_private_dir, replace_private, write_private
from kprov.state.local import open_local_state
from kprov.state.mapping import HEADER, MappingEntry, MappingJournal
from kprov.state.registry import InstanceJournal

UUID = "0b8e1f3c-1111-4222-8333-444455556666"
SIS_EXPORT = (
    "Student ID,Last Name,First Name,Grade,Homeroom,Section\r\n"
    "100234,Okafor,Chidi,9,H-12,ALG1-P3\r\n"
    "100235,Nakamura,Aiko,9,H-12,ALG1-P3\r\n"
    "100236,Lindqvist,Elsa,10,H-14,GEO-P1"  # Excel's exports often end without a newline
)


def fingerprint(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every file in *folder* with its content hash, mode and mtime: 'untouched' means equal."""
    return {
        p.name: (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mode,
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.iterdir())
    }


def sis_export(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "export.csv"
    path.write_bytes(SIS_EXPORT.encode())
    return path


def test_a_mistyped_mapping_is_refused_and_left_byte_for_byte(tmp_path: Path) -> None:
    export = sis_export(tmp_path / "exports")
    before = fingerprint(export.parent)
    with (
        pytest.raises(ConfigError, match="is not a kprov mapping file") as caught,
        open_local_state(tmp_path / "state", export),
    ):
        pass
    assert caught.value.exit_code == ExitCode.CONFIG
    assert str(export) in str(caught.value) and "nothing was changed" in str(caught.value)
    assert fingerprint(export.parent) == before  # not a byte cut, not even a lock file beside it
    for read in (
        lambda: MappingJournal(export).load(),
        lambda: list(MappingJournal(export).rows()),
    ):
        with pytest.raises(ConfigError):
            read()
    with pytest.raises(ConfigError):
        MappingJournal(export).repair_tail()
    with pytest.raises(ConfigError):
        MappingJournal(export).append([MappingEntry("a", UUID, "t")])
    assert fingerprint(export.parent) == before


def test_a_foreign_registry_journal_is_refused_untouched(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    journal = state / "instances.csv"
    journal.write_bytes(SIS_EXPORT.encode())
    before = journal.read_bytes()
    with (
        pytest.raises(ConfigError, match="is not a kprov instance registry"),
        open_local_state(state, state / "mapping.csv"),
    ):
        pass
    assert journal.read_bytes() == before
    assert not list(state.glob("*.torn-*"))


def test_a_one_line_foreign_file_without_newline_is_not_taken_for_a_torn_header(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"external_user_id;account_id")  # looks close, is not ours
    with pytest.raises(ConfigError):
        MappingJournal(path).load(repair=True)
    assert path.read_bytes() == b"external_user_id;account_id"


def test_a_torn_header_from_a_crash_at_creation_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b"external_user_id,acc")
    index = MappingJournal(path).load(repair=True)
    assert len(index) == 0 and "part of its header" in index.repairs[0]
    journal = MappingJournal(path)
    journal.append([MappingEntry("a", UUID, "t")])
    journal.close()
    assert path.read_text().splitlines()[0] == ",".join(HEADER)


def test_a_read_without_the_lock_never_repairs(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    body = ",".join(HEADER) + "\n" + f"a,{UUID},t,,created\n" + "b,0b8e"
    path.write_text(body)
    index = MappingJournal(path).load()  # e.g. `mapping verify` while an import is writing
    assert index.account_of == {"a": UUID}
    assert "incomplete" in index.repairs[0]
    assert [e.external_user_id for e in MappingJournal(path).entries()] == ["a"]
    assert path.read_text() == body


@pytest.mark.parametrize("name", ["mapping.csv", "instances.csv", "registrations.csv"])
def test_a_symlinked_journal_is_refused_naming_it(tmp_path: Path, name: str) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (state / name).symlink_to(victim)
    with (
        pytest.raises(StorageError, match="symbolic link") as caught,
        open_local_state(state, state / "mapping.csv"),
    ):
        pass
    assert str(state / name) in str(caught.value)
    assert caught.value.exit_code == ExitCode.STORAGE
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("lock_name", ["kprov.lock", "mapping.csv.lock"])
def test_a_symlinked_lock_is_refused_and_its_target_untouched(
    tmp_path: Path, lock_name: str
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0\n")
    (state / lock_name).symlink_to(victim)
    with (
        pytest.raises(StorageError, match=re.escape(f"{lock_name} is a symbolic link")),
        open_local_state(state, state / "mapping.csv"),
    ):
        pass
    assert victim.read_text() == "root:x:0:0\n"


def test_a_fifo_in_place_of_a_journal_is_refused_without_hanging(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.mkfifo(state / "mapping.csv")
    with (
        pytest.raises(StorageError, match="not a regular file"),
        open_local_state(state, state / "mapping.csv"),
    ):
        pass


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o703])
def test_a_state_dir_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(mode)
    with pytest.raises(StorageError, match="writable by every user") as caught:
        ensure_private_dir(state)
    assert f"chmod 700 {state}" in str(caught.value)
    with pytest.raises(StorageError), open_local_state(state, state / "mapping.csv"):
        pass
    assert list(state.iterdir()) == []  # not even a lock file was made there


def test_a_mapping_in_a_world_writable_dir_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with (
        pytest.raises(StorageError, match=re.escape(str(shared))),
        open_local_state(tmp_path / "state", shared / "mapping.csv"),
    ):
        pass
    assert list(shared.iterdir()) == []


def test_a_group_writable_state_dir_is_allowed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o770)
    with open_local_state(state, state / "mapping.csv") as local:
        local.journal.append([MappingEntry("a", UUID, "t")])


def test_files_kprov_creates_are_private(tmp_path: Path) -> None:
    state = tmp_path / "deep" / "state"
    with open_local_state(state, state / "mapping.csv") as local:
        local.journal.append([MappingEntry("a", UUID, "t")])
        local.registry.record_instance_intent("k", "g", "Algebra")
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for path in state.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_create_private_makes_0600_files_and_refuses_links(tmp_path: Path) -> None:
    with create_private(tmp_path / "report.csv") as handle:
        handle.write("a,b\r\n")
    assert stat.S_IMODE((tmp_path / "report.csv").stat().st_mode) == 0o600
    assert (tmp_path / "report.csv").read_bytes() == b"a,b\r\n"  # no newline translation
    with create_private(tmp_path / "report.csv", append=True) as handle:
        handle.write("c\n")
    assert (tmp_path / "report.csv").read_bytes() == b"a,b\r\nc\n"
    with create_private(tmp_path / "report.csv") as handle:
        handle.write("new\n")
    assert (tmp_path / "report.csv").read_text() == "new\n"  # truncated unless append
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "run.log").symlink_to(victim)
    for append in (False, True):
        with pytest.raises(StorageError, match=r"run\.log is a symbolic link"):
            create_private(tmp_path / "run.log", append=append)
    assert victim.read_text() == "keep\n"
    with pytest.raises(StorageError, match="missing"):
        create_private(tmp_path / "missing" / "r.csv")


def test_an_instance_journal_with_a_torn_whole_row_is_completed(tmp_path: Path) -> None:
    path = tmp_path / "instances.csv"
    path.write_text(",".join(InstanceJournal.header) + "\nk,,g,Alg,,,t,intent")
    index = InstanceJournal(path).load(repair=True)
    assert "k" in index.intents and path.read_text().endswith("intent\n")


def test_write_private_turns_a_full_disk_into_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_private(tmp_path / "run.log", "one\n", append=True)
    write_private(tmp_path / "run.log", "two\n", append=True)
    assert (tmp_path / "run.log").read_text() == "one\ntwo\n"
    assert stat.S_IMODE((tmp_path / "run.log").stat().st_mode) == 0o600

    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageError, match=r"no space left to write .*report\.json"):
        write_private(tmp_path / "report.json", "{}\n")


def test_replacing_never_swaps_out_a_link_a_device_or_a_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep")
    link = tmp_path / "plan.json"
    link.symlink_to(target)
    with pytest.raises(StorageError, match="symbolic link"):
        replace_private(link, "{}")
    assert link.is_symlink() and target.read_text() == "keep"
    with pytest.raises(StorageError, match="not a regular file"):
        replace_private(Path("/dev/null"), "{}")
    assert Path("/dev/null").is_char_device()
    with pytest.raises(StorageError):
        replace_private(tmp_path / "typo" / "plan.json", "{}")
    assert not (tmp_path / "typo").exists()
    replace_private(tmp_path / "made" / "config.toml", "x", make_parent=True)
    assert stat.S_IMODE((tmp_path / "made").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "made" / "config.toml").stat().st_mode) == 0o600
