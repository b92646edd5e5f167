"""A snapshot of a loaded index (``state.snapshot``) never makes kprov believe anything its
journal does not say: an index loaded through one equals the journal read in full, on
hostile journals, after rows a run appended, after a torn tail, and whenever the snapshot
must not be trusted (a hand edit of the same size, a truncated journal, another journal
renamed in, a corrupt, torn or other-version snapshot, one that cannot be written)."""

from __future__ import annotations

import logging
import os
import random
import stat
from pathlib import Path

import pytest

from kprov import __version__
from kprov.errors import ConfigError
from kprov.state import blocks, snapshot
from kprov.state.mapping import MappingIndex, MappingJournal
from kprov.state.registry import (
    RegistrationIndex,
    RegistrationJournal,
    RegistrationRecord,
)
from kprov.state.snapshot import snapshot_path
from tests.registry_journals import ALG, BIO, STAMP, _uuid, hostile_state

USED, IGNORED = "used", "ignored"


def locked_load(path: Path) -> RegistrationIndex:
    """As ``open_local_state`` loads: repairs first, the snapshot (if due) once it is sound."""
    journal = RegistrationJournal(path)
    index = journal.load(repair=True)
    journal.save_snapshot(index)
    return index


def locked_load_mapping(path: Path) -> MappingIndex:
    journal = MappingJournal(path)
    index = journal.load(repair=True)
    journal.save_snapshot(index)
    return index


def _full(path: Path) -> RegistrationIndex:
    """The journal read in full, as without a snapshot."""
    aside = snapshot_path(path).with_name("aside")
    had = snapshot_path(path).exists()
    if had:
        snapshot_path(path).rename(aside)
    try:
        return RegistrationJournal(path).load()
    finally:
        if had:
            aside.rename(snapshot_path(path))


def _through_snapshot(
    path: Path, caplog: pytest.LogCaptureFixture, expect: str
) -> RegistrationIndex:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="kprov.state"):
        index = RegistrationJournal(path).load()
    said = " ".join(r.getMessage() for r in caplog.records if "snapshot" in r.getMessage())
    assert f" {expect}" in said, said
    return index


def same(fast: RegistrationIndex, slow: RegistrationIndex) -> None:
    """The same registrations, in the same order (slot numbers depend on where blocks end)."""
    assert list(fast.slot_of) == list(slow.slot_of)
    assert [fast.record_at(s) for s in fast.slot_of.values()] == [
        slow.record_at(s) for s in slow.slot_of.values()
    ]
    assert [fast.flags[s] for s in fast.slot_of.values()] == [
        slow.flags[s] for s in slow.slot_of.values()
    ]
    assert [fast.externals[s] for s in fast.slot_of.values()] == [
        slow.externals[s] for s in slow.slot_of.values()
    ]
    assert fast.instances == slow.instances and fast.codes == slow.codes
    assert list(fast.active.items()) == list(slow.active.items())
    assert fast.by_id == slow.by_id and fast.sent == slow.sent
    assert fast.unresolved(include_noted=False) == slow.unresolved(include_noted=False)
    assert fast.instructors() == slow.instructors()
    assert {k: fast.record_at(s) for k, s in fast.slots_by_external().items()} == {
        k: slow.record_at(s) for k, s in slow.slots_by_external().items()
    }


def _state(seed: int, tmp_path: Path) -> Path:
    hostile_state(seed, tmp_path / "state")
    path = tmp_path / "state" / "registrations.csv"
    first = locked_load(path)  # a locked load writes it
    assert snapshot_path(path).exists() and not first.repairs
    assert stat.S_IMODE(snapshot_path(path).stat().st_mode) == 0o600
    return path


@pytest.mark.parametrize("seed", range(4))
def test_a_registry_through_its_snapshot_is_the_journal_read_in_full(
    seed: int, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    if seed % 2:  # blocks of a few lines: some read by rows, ids' holders made at load
        monkeypatch.setattr(blocks, "BLOCK", 900)
    if seed % 3 == 0:  # every column in many records (a statewide index is never one)
        monkeypatch.setattr(snapshot, "_ITEMS", 3)
    path = _state(seed, tmp_path)
    same(_through_snapshot(path, caplog, USED), _full(path))
    # a run appends rows: requests, answers, a role change, an id given again, a quoted line
    rng = random.Random(seed)
    base = _full(path)
    later = [
        *(r._replace(status="removed") for r in rng.sample(list(base.active.values()), 3)),
        RegistrationRecord(_uuid(rng), ALG, "learner", "", "new", STAMP, "sent"),
        RegistrationRecord(_uuid(rng), BIO, "instructor", _uuid(rng).upper(), "n2", STAMP),
        next(iter(base.by_id.values()))._replace(account_id=_uuid(rng), external_user_id="x"),
        RegistrationRecord("Not-A-Uuid", ALG.upper(), "learner", "", 'qu"ote,d', STAMP),
    ]
    journal = RegistrationJournal(path)
    for record in later:
        journal.append_rows([record.row()])
    journal.close()
    same(_through_snapshot(path, caplog, USED), _full(path))


def test_rows_after_the_snapshot_are_named_at_their_line_and_torn_tails_repaired(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _state(1, tmp_path)
    lines = path.read_text().count("\n")
    with path.open("a") as journal:
        journal.write(f"{_uuid(random.Random(3))},{ALG},learner,,p1,{STAMP},registered\n")
        journal.write(f"{'a' * 36},{BIO},Learner,,p1,{STAMP},registered\n")  # damaged
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="kprov.state"), pytest.raises(ConfigError) as bad:
        RegistrationJournal(path).load()
    assert f"{path}:{lines + 2} is damaged" in bad.value.message
    assert any(" used" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError) as slow:
        _full(path)
    assert slow.value.message == bad.value.message
    # a torn tail instead: the locked load repairs it, reads through the snapshot, and
    # writes no new one (it loaded with a repair)
    text = path.read_text().splitlines(keepends=True)
    path.write_text("".join(text[:-1]) + f"{_uuid(random.Random(4))},{BIO},lear")
    before = snapshot_path(path).read_bytes()
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="kprov.state"):
        repaired = locked_load(path)
    assert repaired.repairs and any(" used" in r.getMessage() for r in caplog.records)
    assert snapshot_path(path).read_bytes() == before
    same(repaired, _full(path))


def _edit_same_size(path: Path) -> None:
    data = bytearray(path.read_bytes())
    at = data.index(b"Z,", 200)  # a covered row's date: ...Z -> ...Y, the same length
    data[at] = ord("Y")
    path.write_bytes(bytes(data))


def _replace_with_other(path: Path) -> None:
    other = path.parent.parent / "other"
    hostile_state(9, other)
    (other / "registrations.csv").rename(path)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"\n", 0, len(data) // 2) + 1])


def _corrupt(path: Path) -> None:
    data = bytearray(snapshot_path(path).read_bytes())
    data[-20] ^= 0x55
    snapshot_path(path).write_bytes(bytes(data))


def _corrupt_body(path: Path) -> None:  # a byte in a record of the body, not the trailer
    data = bytearray(snapshot_path(path).read_bytes())
    data[len(data) // 3] ^= 0x55
    snapshot_path(path).write_bytes(bytes(data))


def _torn(path: Path) -> None:
    data = snapshot_path(path).read_bytes()
    snapshot_path(path).write_bytes(data[: len(data) // 2])


def _other_version(path: Path) -> None:
    data = snapshot_path(path).read_bytes()
    version = __version__.encode()
    assert version in data
    snapshot_path(path).write_bytes(data.replace(version, b"9" * len(version), 1))


def _other_journals(path: Path) -> None:  # the mapping's snapshot named as this one's
    mapping = path.with_name("mapping.csv")
    locked_load_mapping(mapping)
    snapshot_path(mapping).rename(snapshot_path(path))


@pytest.mark.parametrize(
    "spoil",
    [_edit_same_size, _replace_with_other, _truncate, _corrupt, _corrupt_body, _torn,
     _other_version, _other_journals],
)  # fmt: skip
def test_a_snapshot_that_does_not_match_its_journal_is_ignored(
    spoil: object, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _state(2, tmp_path)
    assert callable(spoil)
    spoil(path)
    same(_through_snapshot(path, caplog, IGNORED), _full(path))
    locked_load(path)  # the next locked load writes a sound one
    same(_through_snapshot(path, caplog, USED), _full(path))


def _list_counts_of_billions(packed: bytes) -> bool:
    """Whether marshal data is a list that says it holds 2**31 - 1 items."""
    return packed[:1] in (b"[", b"\xdb") and packed[1:5] == b"\xff\xff\xff\x7f"


def test_a_snapshot_whose_damaged_count_exhausts_memory_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flipped byte in a list's count makes marshal ask for 2**31 slots (16 GiB) before it
    reads an item: a machine without that memory (or under `ulimit -v`) raises MemoryError,
    which stopped every run with a traceback until the snapshot was deleted by hand."""
    path = _state(10, tmp_path)
    data = bytearray(snapshot_path(path).read_bytes())
    at = len(snapshot.MAGIC)
    while True:  # the body's records: each after its 8-byte length; find a list chunk
        size = int.from_bytes(data[at : at + 8], "big")
        if data[at + 8 : at + 9] in (b"[", b"\xdb"):
            break
        at += 8 + size
    data[at + 9 : at + 13] = (2**31 - 1).to_bytes(4, "little")
    snapshot_path(path).write_bytes(bytes(data))
    loads = snapshot.marshal.loads

    class SmallMachine:  # marshal as on a machine that cannot allocate 16 GiB
        @staticmethod
        def loads(packed: bytes) -> object:
            if _list_counts_of_billions(packed):
                raise MemoryError
            return loads(packed)

        dumps = staticmethod(snapshot.marshal.dumps)

    monkeypatch.setattr(snapshot, "marshal", SmallMachine)
    same(_through_snapshot(path, caplog, IGNORED), _full(path))
    locked_load(path)  # the next locked load writes a sound one
    same(_through_snapshot(path, caplog, USED), _full(path))


def test_a_snapshot_whose_header_exhausts_memory_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The header (read first) is marshal too: a damaged length there is the same case."""
    path = _state(11, tmp_path)

    class SmallMachine:
        @staticmethod
        def loads(packed: bytes) -> object:
            raise MemoryError

        dumps = staticmethod(snapshot.marshal.dumps)

    monkeypatch.setattr(snapshot, "marshal", SmallMachine)
    same(_through_snapshot(path, caplog, IGNORED), _full(path))


def test_a_snapshot_that_cannot_be_written_fails_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile_state(3, tmp_path / "state")
    path = tmp_path / "state" / "registrations.csv"
    snapshot_path(path).mkdir()  # the rename onto it fails, as on a read-only folder
    index = locked_load(path)
    same(index, _full(path))
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "instances.csv", "mapping.csv", "registrations.csv", "registrations.csv.idx"
    ]  # fmt: skip
    snapshot_path(path).rmdir()

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshot.os, "replace", full_disk)
    same(locked_load(path), _full(path))
    assert not snapshot_path(path).exists()
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "instances.csv", "mapping.csv", "registrations.csv"
    ]  # fmt: skip


def test_a_read_without_the_lock_never_writes_one(tmp_path: Path) -> None:
    hostile_state(4, tmp_path / "state")
    path = tmp_path / "state" / "registrations.csv"
    RegistrationJournal(path).load()
    MappingJournal(path.with_name("mapping.csv")).load()
    assert not list(path.parent.glob("*.idx"))


def test_a_long_tail_is_taken_into_a_new_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = _state(5, tmp_path)
    covered = path.stat().st_size
    rng = random.Random(5)
    journal = RegistrationJournal(path)
    journal.append_rows(
        [
            RegistrationRecord(_uuid(rng), ALG, "learner", _uuid(rng), f"t{n}", STAMP).row()
            for n in range(4)
        ]
    )
    journal.close()
    monkeypatch.setattr(snapshot, "REWRITE_MIN", 10**9)
    locked_load(path)  # a short tail: the snapshot stays
    assert _covers(path) == covered
    monkeypatch.setattr(snapshot, "REWRITE_MIN", 0)
    monkeypatch.setattr(snapshot, "REWRITE_SHARE", 10**6)
    locked_load(path)
    assert _covers(path) == path.stat().st_size
    same(_through_snapshot(path, caplog, USED), _full(path))


def _covers(path: Path) -> int:
    found = snapshot.read_snapshot(path, "registrations")
    assert found is not None
    return found[0].length


# ---------------------------------------------------------------- the mapping


def same_mapping(fast: MappingIndex, slow: MappingIndex) -> None:
    assert list(fast.account_of.compact.items()) == list(slow.account_of.compact.items())
    assert fast.sis_of == slow.sis_of and fast.disabled == slow.disabled
    assert dict(fast.account_of.items()) == dict(slow.account_of.items())


def _mapping_full(path: Path) -> MappingIndex:
    os.rename(snapshot_path(path), path.with_name("aside"))
    try:
        return MappingJournal(path).load()
    finally:
        os.rename(path.with_name("aside"), snapshot_path(path))


@pytest.mark.parametrize("spoil", [None, _edit_same_size, _truncate, _corrupt])
def test_a_mapping_through_its_snapshot_is_the_journal_read_in_full(
    spoil: object, tmp_path: Path
) -> None:
    hostile_state(7, tmp_path / "state")
    path = tmp_path / "state" / "mapping.csv"
    with path.open("a") as mapping:  # odd ids, an SIS id, a quoted id: read row by row
        mapping.write(f"odd,ACCT-NOT-A-UUID,{STAMP},s-1,created\n\"q,1\",{_uuid(random.Random(1))}"
                      f",{STAMP},,created\n")  # fmt: skip
    locked_load_mapping(path)
    assert snapshot_path(path).exists()
    rng = random.Random(7)
    with path.open("a") as mapping:  # rows a run appended since
        mapping.write(f"p1,{_uuid(rng)},{STAMP},sis-9,created\np2,{_uuid(rng)},{STAMP},,disabled\n")
    if callable(spoil):
        spoil(path)
    same_mapping(MappingJournal(path).load(), _mapping_full(path))


def test_a_linked_snapshot_is_never_read_and_a_killed_writers_leftovers_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _state(6, tmp_path)
    real = tmp_path / "elsewhere.idx"
    snapshot_path(path).rename(real)
    snapshot_path(path).symlink_to(real)  # sound, but state files are never read through links
    same(_through_snapshot(path, caplog, "not read"), _full(path))
    snapshot_path(path).unlink()
    leftover = path.with_name("registrations.csv.idx.tmp-1234")
    leftover.write_bytes(b"half a snapshot")  # a run killed while writing one
    locked_load(path)
    assert not leftover.exists() and snapshot_path(path).is_file()
    same(_through_snapshot(path, caplog, USED), _full(path))


def test_no_snapshot_is_written_for_a_state_refused_or_changed_after_its_load(
    tmp_path: Path,
) -> None:
    hostile_state(8, tmp_path / "state")
    path = tmp_path / "state" / "registrations.csv"
    journal = RegistrationJournal(path)
    index = journal.load(repair=True)  # then a check refuses the state: never saved
    assert not snapshot_path(path).exists()
    journal.append_rows([RegistrationRecord(ALG, BIO, "learner", "", "x", STAMP).row()])
    journal.save_snapshot(index)  # the journal grew after the load: the index is not its start
    journal.close()
    assert not snapshot_path(path).exists()


def _odd_mapping_line(rng: random.Random, externals: list[str], accounts: list[str]) -> str:
    """A mapping row whose account id may be upper-case, braced, undashed, padded, a digit
    long or no UUID at all, and whose external id may only look like another one."""
    account = rng.choice(accounts)
    account = rng.choice(
        [account] * 8
        + [account.upper(), "{" + account + "}", account.replace("-", ""), account + " "]
        + [" " + account[1:], "NOTUUID", account[:35] + "0" + account[35:]]
    )
    external = rng.choice(externals)
    if rng.random() < 0.05:
        external = '"' + external.replace('"', '""') + '"'
    sis, status = rng.choice(["", "", "s1", "S1"]), rng.choice(["created", "recovered", "disabled"])
    return f"{external},{account},{STAMP},{sis},{status}\n"


@pytest.mark.parametrize("seed", range(12))
def test_odd_account_ids_and_look_alike_external_ids_read_the_same_every_way(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a snapshot, by columns in blocks of any size, or row by row: one mapping."""
    rng = random.Random(seed)
    externals = [f"e{n}" for n in range(30)] + ["E1", "e 1", "\u00e9", "e\u0301", 'x"y', "\uff451"]
    accounts = [_uuid(rng) for _ in range(25)]
    lines = [_odd_mapping_line(rng, externals, accounts) for _ in range(rng.randint(1, 200))]
    cut = rng.randint(1, len(lines))
    path = tmp_path / "mapping.csv"
    path.write_text("external_user_id,account_id,created_at,sis_id,status\n" + "".join(lines[:cut]))
    monkeypatch.setattr(blocks, "BLOCK", rng.choice([50, 200, 1 << 22]))
    try:
        locked_load_mapping(path)
    except ConfigError:
        return  # a mapping kprov refuses is refused every way (test_column_paths)
    with path.open("a") as mapping:
        mapping.write("".join(lines[cut:]))
    monkeypatch.setattr(blocks, "BLOCK", rng.choice([50, 200, 1 << 22]))
    fast = MappingJournal(path).load()
    whole = _mapping_full(path) if snapshot_path(path).exists() else MappingJournal(path).load()
    monkeypatch.setattr(blocks, "BLOCK", 1)
    one_by_one = MappingJournal(path).load()
    same_mapping(fast, whole)
    same_mapping(whole, one_by_one)
