"""The nightly sync's reading side, made cheaper, decides exactly as before: the source
guard's fingerprints against a one-id-at-a-time reference, people read back by file range,
a manifest entry's inherited options, and account ids as text."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Collection
from pathlib import Path

import pytest

from kprov.provision.guards_judge import overlap, zeros_dropped
from kprov.provision.guards_sources import (
    ALL,
    SAMPLE,
    Observation,
    SourceFingerprint,
    id_hash,
    observe,
)
from kprov.rosters import RosterOptions
from kprov.rosters.manifest_entries import entry_options, read_options
from kprov.rosters.model import Origin, Person
from kprov.rosters.people import CHUNK, People
from kprov.rosters.yaml_nodes import NodeReader
from kprov.state.mapping_index import AccountIds, _uuids, account_text, stored

ODD_IDS = [
    "0042", "007", "s-1", "S-1", "élève", "学生7", "½", "²3", "ǅ", "x\ud800y",  # a lone surrogate
    "line\nbreak", "null", "\n0lead", "", "0", "Z" * 40,
]  # fmt: skip


def reference(ids: list[str]) -> tuple[int, list[tuple[int, str]]]:
    """The fingerprint's count and sample, one id at a time (the last id of a hash kept)."""
    pairs: dict[int, str] = {}
    for external in ids:
        pairs[id_hash(external)] = external
    sample = sorted(pairs.items())[:SAMPLE]
    if len(pairs) <= SAMPLE:
        return len(pairs), sample
    return round((SAMPLE - 1) * ALL / (sample[-1][0] + 1)), sample


def shape_of(ids: list[str]) -> tuple[int, int, float, float, float]:
    n = len(ids)
    return (
        min(map(len, ids)),
        max(map(len, ids)),
        sum(1 for i in ids if i.isdigit()) / n,
        sum(1 for i in ids if any(c.isalpha() for c in i)) / n,
        sum(1 for i in ids if i[:1] == "0") / n,
    )


@pytest.mark.parametrize("seed", range(3))
def test_fingerprints_by_column_are_those_of_each_id(seed: int) -> None:
    rng = random.Random(seed)
    given: list[Person] = []
    files = ["a.csv", "b.csv", "c.csv", "a.csv"]  # a.csv read twice (two runs of rows)
    sizes = [rng.randrange(20, 300), CHUNK + 900, rng.randrange(1, 40), rng.randrange(20, 90)]
    for file, size in zip(files, sizes, strict=True):
        for n in range(size):
            odd = rng.random() < 0.05
            external = rng.choice(ODD_IDS) if odd else f"{rng.choice(['s-', '', '0'])}{n}"
            given.append(Person(external or "e", "learner", Origin(file, n + 2), "alg"))
    sources = ["a.csv", "b.csv", "c.csv", "nobody.csv"]
    by_column = observe(People(given), sources)
    by_person = observe(given, sources)
    assert by_column == by_person
    for source in sources:
        ids = [p.external_id for p in given if p.origin.file == source]
        seen = by_column[os.path.abspath(source)]
        count, sample = reference(ids) if ids else (0, [])
        assert seen.fingerprint.ids == count
        assert list(seen.sampled) == sample
        assert seen.fingerprint.sample == tuple(h for h, _e in sample)
        if ids and len(set(ids)) <= SAMPLE:  # the shape is measured on the whole source
            shape = seen.fingerprint.shape
            exts = [e for _h, e in sample]
            assert (shape.shortest, shape.longest, shape.digits, shape.letters,
                    shape.leading_zeros) == shape_of(exts)  # fmt: skip


def test_ids_between_reads_any_range_across_chunks_and_odd_ids() -> None:
    given = [
        Person(f"odd\n{n}" if n % 1001 == 0 else f"p{n}", "learner", Origin("a.csv", n), None)
        for n in range(2 * CHUNK + 50)
    ]
    people = People(given)
    for start, end in [(0, 0), (0, 1), (CHUNK - 3, CHUNK + 3), (5, 2 * CHUNK + 50), (CHUNK, CHUNK)]:
        for _twice in range(2):  # read again: from the chunks kept split
            got = list(people.ids_between(start, end))
            assert got == [p.external_id for p in given[start:end]]


def test_a_manifest_entry_without_keys_reads_as_its_defaults_say() -> None:
    reader = NodeReader(Path("m.yaml"))
    bases = [
        RosterOptions(),
        RosterOptions(encoding="latin-1", delimiter=";", id_column="sid"),
        RosterOptions(delimiter="\t", role_column="Role", instance_column="Class"),
        RosterOptions(id_prefix="north-", ta_as_instructor=True),
    ]
    for base in bases:
        assert entry_options(reader, {}, base, "x") == read_options(reader, {}, base, "x")
    assert not reader.problems


def test_account_ids_read_by_column_are_the_text_written() -> None:
    rng = random.Random(5)
    texts = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(300)]
    texts += ["00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"]
    values = _uuids(texts)
    assert values == [stored(t) for t in texts] and [account_text(v) for v in values] == texts
    assert _uuids([t.upper() for t in texts]) == values
    # a digit moved from one id to the next keeps the total length and every dash: not UUIDs
    shifted = ["12345678-1234-1234-1234-1234567890123", "1234567-1234-1234-1234-123456789012"]
    assert _uuids(shifted) is None and _uuids([*texts[:5], " " + texts[5][1:]]) is None


@pytest.mark.parametrize(
    "ids",
    [
        ["0a", "b\n0c", "0", "d"],  # a line break: zeros counted one by one
        ["s-1", "a9", "Q", "zz-0"],  # every id starts with a letter: one regex pass
        ["s-1", "9a", "Q"],  # not every one
        ["s-1", "\u00e9a", "Q"],  # a letter that is not ASCII first
        ["s-1", "a\nb", "Q"],  # a line break after a letter
    ],
)
def test_the_shape_counts_on_joined_text_as_one_by_one(ids: list[str]) -> None:
    got = observe([Person(i, "learner", Origin("a.csv", 2)) for i in ids], ["a.csv"])
    shape = next(iter(got.values())).fingerprint.shape
    assert (shape.shortest, shape.longest, shape.digits, shape.letters,
            shape.leading_zeros) == shape_of(ids)  # fmt: skip


@pytest.mark.parametrize("with_classes", [False, True])
def test_people_without_odd_rows_read_back_in_c_loops_as_given(with_classes: bool) -> None:
    rng = random.Random(7)
    given: list[Person] = []
    people = People()
    for file in ["a.csv", "b.csv", "a.csv", "c.csv"]:  # runs of rows, across chunk ends
        size = rng.randrange(1, 2 * CHUNK)
        ids = [f"{file[0]}{len(given) + n}" for n in range(size)]
        roles = [rng.choice(["learner", "instructor", "teacher"]) for _ in ids]
        keys = [rng.choice([None, "alg", "bio"]) if with_classes else None for _ in ids]
        lines = range(2, size + 2)
        people.add_rows(file, ids, roles, lines, keys)
        given += [Person(*row[:2], Origin(file, row[2]), row[3])
                  for row in zip(ids, roles, lines, keys, strict=True)]  # fmt: skip
    got = list(people)
    assert got == given == list(people._each())
    assert {type(p) for p in got} == {Person} and {type(p.origin) for p in got} == {Origin}


def _overlap_one_by_one(
    last: SourceFingerprint, tonight: Observation, known: Collection[str]
) -> tuple[float | None, bool, float | None]:
    threshold = last.threshold
    measured = [(h, ext) for h, ext in tonight.sampled if h <= threshold]
    if not measured:
        return None, False, None
    before = set(last.sample)
    in_export = sum(1 for h, _ext in measured if h in before)
    seen = sum(1 for h, ext in measured if h in before or ext in known)
    exact = threshold == ALL and len(measured) == tonight.fingerprint.ids
    return seen / len(measured), exact, in_export / len(measured)


def _zeros_one_by_one(last: SourceFingerprint, tonight: Observation, known: Collection[str]) -> int:
    before, count = set(last.sample), 0
    for hashed, ext in tonight.sampled:
        if hashed in before or ext in known:
            continue
        digits = len(ext) - len(ext.rstrip("0123456789"))
        if not digits:
            continue
        head, tail = ext[: len(ext) - digits], ext[len(ext) - digits :]
        widths = range(len(ext) + 1, last.shape.longest + 1)
        count += any(head + tail.rjust(w - len(head), "0") in known for w in widths)
    return count


@pytest.mark.parametrize("seed", range(4))
def test_the_judgment_counted_in_c_is_the_one_counted_id_by_id(seed: int) -> None:
    rng = random.Random(seed)
    numbers = [f"{rng.randrange(10**6):07d}" for _ in range([30, 900, 3000, 5000][seed])]
    last = observe([Person(n, "learner", Origin("a.csv", 2)) for n in numbers], ["a.csv"])
    movers = [f"m{n}" for n in numbers[: len(numbers) // 5]]  # new to this file, mapped
    tonight_ids = [rng.choice([n, n.lstrip("0"), f"x{n}", n]) for n in numbers] + movers
    mapped = AccountIds()
    for n in rng.sample(numbers, len(numbers) // 2) + movers[::2]:
        mapped[n] = str(uuid.UUID(int=rng.getrandbits(128)))
    [before] = last.values()
    for ids in (tonight_ids, numbers[::-1]):  # a changed export, and the same one again
        [now] = observe([Person(n, "learner", Origin("a.csv", 2)) for n in ids], ["a.csv"]).values()
        for known in (set(mapped), mapped, set()):
            fingerprint = before.fingerprint
            assert overlap(fingerprint, now, known) == _overlap_one_by_one(fingerprint, now, known)
            assert zeros_dropped(fingerprint, now, known) == _zeros_one_by_one(
                fingerprint, now, known
            )


def test_input_bytes_looks_at_each_path_once_and_counts_as_before(tmp_path: Path) -> None:
    import zipfile

    from kprov.rosters import input_bytes

    (tmp_path / "a.csv").write_text("x" * 10)
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "users.csv").write_text("y" * 7)
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as archive:
        archive.writestr("users.csv", "z" * 100)
    odd = tmp_path / "odd.zip"  # a directory named like a zip: its files
    odd.mkdir()
    (odd / "e.csv").write_text("w" * 3)
    (tmp_path / "bad.zip").write_text("not a zip")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    paths = ["a.csv", "bundle", "b.zip", "odd.zip", "bad.zip", "missing.csv", "pipe.csv"]
    assert input_bytes([tmp_path / p for p in paths]) == 10 + 7 + 100 + 3
