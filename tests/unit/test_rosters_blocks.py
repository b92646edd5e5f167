"""Plain stretches of a roster are read a block at a time: the result is the row-by-row one,
whatever the file holds and wherever a block boundary falls."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

import kprov.rosters as rosters
from kprov.rosters import RosterOptions
from kprov.rosters.collect import Collector
from kprov.rosters.model import Origin, Person, Roster
from kprov.rosters.people import CHUNK, People
from kprov.rosters.text import Problems, TextLines

ODD_ROWS = [
    "",  # a blank line
    ",,",  # Excel's empty trailing row
    '"quoted-1",learner,alg',  # quotes
    '"multi\nline",learner,alg',  # a quoted field over two lines
    "bad id,learner,alg",  # a name, not an id
    "stu-x,janitor,alg",  # an unknown role
    "stu-y,administrator,alg",  # a known role kprov leaves alone: skipped
    "stu-z,learner,=cmd()",  # a formula as an instance key
    "stu-w,learner,alg,extra",  # ragged
    "stu-v,learner",  # short
    "stu-0003,learner,alg",  # a duplicate of a plain row
    "stu-\x00nul,learner,alg",  # NUL
    "stu-cr,learner,alg\r",  # a lone CR (a CR-ended line)
    "stu-é,learner,alg",  # not a plain id, but text
    " stu-sp,learner,alg",  # a leading space
    "x" * 300 + ",learner,alg",  # an id too long to be plain
]


def roster_text(seed: int, rows: int) -> str:
    rng = random.Random(seed)
    lines = ["external_user_id,role,instance"]
    for i in range(rows):
        if rng.random() < 0.015:
            lines.append(rng.choice(ODD_ROWS))
        else:
            role = rng.choice(["learner", "Student", "INSTRUCTOR", "teacher"])
            lines.append(f"stu-{i:04d},{role},{rng.choice(['alg', 'bio', ' geo ', ''])}")
    ending = rng.choice(["\n", "\r\n"])
    return ending.join(lines) + rng.choice(["", ending])


def read(path: Path) -> tuple:
    problems = Problems()
    roster = Roster()
    collector = Collector(problems, roster)
    reader = rosters._reader([path], RosterOptions())
    with rosters.open_inputs() as inputs:
        reader(collector, inputs)
    return (
        [str(p) for p in problems],
        list(roster.people),
        roster.skipped_rows,
        collector.rows,
        [sorted(bucket) for bucket in collector.digests],
        collector.keep,
    )


@pytest.mark.parametrize("seed", range(12))
def test_blocks_read_what_rows_read(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(roster_text(seed, 400).encode("utf-8"))
    real_blocks = TextLines.blocks
    taken: list[int] = []

    def small_blocks(self: TextLines, count: int = 0) -> Iterator[list[str]]:
        for block in real_blocks(self, 7):  # boundaries everywhere
            taken.append(len(block))
            yield block

    monkeypatch.setattr(TextLines, "blocks", lambda self, count=0: iter(()))
    rowwise = read(path)
    monkeypatch.setattr(TextLines, "blocks", small_blocks)
    assert read(path) == rowwise
    assert taken  # some blocks were read as blocks


def test_a_plain_roster_is_kept_by_column_with_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("external_user_id,role\n" + "".join(f"s{i},learner\n" for i in range(9000)))
    roster = rosters.load_roster([path])
    assert isinstance(roster.people, People) and len(roster.people) == 9000
    last = roster.people[-1]
    assert (last.external_id, last.role, last.origin.line) == ("s8999", "learner", 9001)


def test_people_by_column_read_back_as_they_were_given() -> None:
    rng = random.Random(3)
    given: list[Person] = []
    people = People()
    for i in range(3 * CHUNK + 17):  # chunks of ids, and the one being filled
        person = Person(
            f"id{i}" if i % 97 else f"odd\nid{i}",  # an id with a line break is kept aside
            rng.choice(["learner", "instructor"]),
            Origin(["a.csv", "b.csv"][(i // 1000) % 2], i + 2),
            rng.choice([None, "alg", "bio"]) if i > 5000 else None,  # instances from row 5001
            "SIS-1" if i % 500 == 0 else None,
            i % 777 == 0,
        )
        given.append(person)
        people.append(person)
    people.add_rows("c.csv", ["q1", "q2"], ["learner", "instructor"], [7, 9], ["geo", None])
    given += [Person("q1", "learner", Origin("c.csv", 7), "geo"),
              Person("q2", "instructor", Origin("c.csv", 9))]  # fmt: skip
    assert len(people) == len(given) and list(people) == given and people == given
    assert [people[i] for i in (0, 96, 4096, -1)] == [given[i] for i in (0, 96, 4096, -1)]
    assert list(people.external_ids()) == [p.external_id for p in given]
    kept = people.select([1, 4097, len(given) - 1])
    assert list(kept) == [given[1], given[4097], given[-1]] and kept[1] == given[4097]
    with pytest.raises(TypeError):
        people[0] = given[0]
