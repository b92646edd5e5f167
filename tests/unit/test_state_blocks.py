"""Journals read a block at a time hold exactly what reading them row by row holds: the
mapping (account ids kept as numbers), the registry (a block's rows applied at once), and
the rows kprov writes (joined without the csv module when nothing needs quoting)."""

from __future__ import annotations

import csv
import io
import random
import uuid
from pathlib import Path

import pytest

from kprov.errors import ConfigError
from kprov.state import blocks
from kprov.state.journal import csv_lines
from kprov.state.mapping import MappingJournal
from kprov.state.registry import RegistrationJournal

STAMP = "2026-09-01T02:00:00Z"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _rowwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blocks, "_plain", lambda lines, width: False)


def mapping_text(seed: int) -> str:
    rng = random.Random(seed)
    people = [f"s-{i}" for i in range(60)]
    lines = ["external_user_id,account_id,created_at,sis_id,status"]
    for _ in range(400):
        ext = rng.choice(people)
        account = _uuid(rng)
        odd = rng.random()
        if odd < 0.01:
            account = "not-a-uuid"
        elif odd < 0.02:
            account = account.upper()
        elif odd < 0.03:
            ext = f'"{ext}, quoted"'
        sis = rng.choice(["", "", "", "SIS-1"])
        status = rng.choice(["created", "created", "recovered", "disabled"])
        lines.append(f"{ext},{account},{STAMP},{sis},{status}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(8))
def test_the_mapping_read_by_blocks_is_the_mapping_read_by_rows(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mapping.csv"
    path.write_text(mapping_text(seed))
    monkeypatch.setattr(blocks, "BLOCK", 200)  # blocks of a few lines: boundaries everywhere
    fast = MappingJournal(path).load()
    _rowwise(monkeypatch)
    slow = MappingJournal(path).load()
    assert dict(fast.account_of) == dict(slow.account_of)
    assert (fast.sis_of, fast.disabled, len(fast)) == (slow.sis_of, slow.disabled, len(slow))


def test_account_ids_shifted_by_a_digit_are_kept_as_written_by_blocks_as_by_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hand-edited ids, one a digit longer and the next a digit shorter, keep the block's
    length and every dash where a UUID has it: they are not UUIDs, and are kept as written."""
    path = tmp_path / "mapping.csv"
    shifted = ["12345678-1234-1234-1234-1234567890123", "1234567-1234-1234-1234-123456789012"]
    rows = [f"p{n},{account},{STAMP},,created" for n, account in enumerate(shifted)]
    path.write_text(
        "external_user_id,account_id,created_at,sis_id,status\n" + "\n".join(rows) + "\n"
    )
    fast = MappingJournal(path).load()
    _rowwise(monkeypatch)
    assert dict(fast.account_of) == dict(MappingJournal(path).load().account_of)
    assert fast.account_of["p1"] == shifted[1]


def test_a_damaged_line_after_plain_blocks_is_named_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(1)
    rows = [f"s-{i},{_uuid(rng)},{STAMP},,created" for i in range(300)]
    rows[250] = "s-250,,2026,,created"  # no account id
    path = tmp_path / "mapping.csv"
    path.write_text("external_user_id,account_id,created_at,sis_id,status\n" + "\n".join(rows))
    monkeypatch.setattr(blocks, "BLOCK", 500)
    with pytest.raises(ConfigError) as caught:
        MappingJournal(path).load()
    assert f"{path}:252 is damaged" in caught.value.message


def test_account_ids_read_back_as_written_and_their_owner_is_found(tmp_path: Path) -> None:
    rng = random.Random(2)
    accounts = [_uuid(rng) for _ in range(3)]
    path = tmp_path / "mapping.csv"
    path.write_text(
        "external_user_id,account_id,created_at,sis_id,status\n"
        + "".join(f"s-{i},{a.upper()},{STAMP},,created\n" for i, a in enumerate(accounts))
    )
    index = MappingJournal(path).load()
    assert index.account_of["s-1"] == accounts[1]  # canonical: lower case
    assert index.account_of.owner_of(accounts[2].upper()) == "s-2"
    index.account_of["s-9"] = accounts[0]  # another person given s-0's account (a bad answer)
    assert index.account_of.owner_of(accounts[0]) == "s-9"
    del index.account_of["s-9"]
    assert index.account_of.owner_of(accounts[0]) is None and len(index) == 3


def registry_text(seed: int) -> str:
    rng = random.Random(seed)
    pairs = [(_uuid(rng), _uuid(rng)) for _ in range(30)]
    ids = [_uuid(rng) for _ in range(40)]
    lines = ["account_id,instance_id,type,registration_id,external_user_id,created_at,status"]
    for _ in range(500):
        account, instance = rng.choice(pairs)
        kind = rng.choice(["learner", "instructor"])
        status = rng.choice(["sent", "registered", "registered", "removed", "noted", "forgotten"])
        fresh = _uuid(rng) if seed % 2 else rng.choice(ids)  # odd seeds: every id once
        registration = "" if status == "sent" or rng.random() < 0.05 else fresh
        if rng.random() < 0.02:
            account = account.upper()
        lines.append(f"{account},{instance},{kind},{registration},p-{account[:4]},{STAMP},{status}")
    return "\n".join(lines) + "\n"


def nightly_registry_text(seed: int) -> str:
    """As runs write it: per class, every request ("sent"), then every answer; a later night
    removes a few and registers some again (new ids), and asks once more for one."""
    rng = random.Random(seed)
    header = "account_id,instance_id,type,registration_id,external_user_id,created_at,status"
    lines: list[str] = [header]
    done: list[tuple[str, str]] = []
    for _night in range(3):
        pairs = [(_uuid(rng), _uuid(rng)) for _ in range(40)] + rng.sample(done, min(5, len(done)))
        lines += [f"{a},{i},learner,,p,{STAMP},sent" for a, i in pairs]
        for account, instance in pairs:
            lines.append(f"{account},{instance},learner,{_uuid(rng)},p,{STAMP},registered")
        done += pairs
        for account, instance in rng.sample(done, 3):
            lines.append(f"{account},{instance},learner,,p,{STAMP},removed")
        lines.append(f"{done[0][0]},{done[0][1]},instructor,,p,{STAMP},sent")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("journal", [registry_text, nightly_registry_text])
def test_the_registry_read_by_blocks_is_the_registry_read_by_rows(
    journal: object, seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "registrations.csv"
    path.write_text(journal(seed))  # type: ignore[operator]
    monkeypatch.setattr(blocks, "BLOCK", 2000)
    fast = RegistrationJournal(path).load()
    _rowwise(monkeypatch)
    slow = RegistrationJournal(path).load()
    assert (fast.active, fast.sent, fast.by_id) == (slow.active, slow.sent, slow.by_id)


def test_rows_are_written_as_the_csv_module_writes_them() -> None:
    rng = random.Random(3)
    alphabet = ["a", ",", '"', "\n", "\r", " ", "é", "", "\t", "'"]
    for _ in range(3000):
        rows = [
            tuple("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
                  for _ in range(rng.randint(1, 6)))
            for _ in range(rng.randint(1, 3))
        ]  # fmt: skip
        expected = io.StringIO()
        csv.writer(expected, lineterminator="\n").writerows(rows)
        assert csv_lines(rows) == expected.getvalue()
