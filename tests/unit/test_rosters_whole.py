"""A small plain roster file is read whole (``rosters.csv_whole``): whatever a file holds, the
people, problems, skipped rows and digests are those of the general reader row by row (and
by blocks), and the files that are not certainly plain are given back to it untouched."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import kprov.rosters as rosters
import kprov.rosters.csv_whole as csv_whole
from kprov.rosters import RosterOptions
from kprov.rosters.collect import Collector
from kprov.rosters.headers import file_header
from kprov.rosters.model import Roster
from kprov.rosters.text import Problems, TextLines

HEADERS = [
    "external_user_id,role,instance",
    "External_User_ID;Role;Instance",  # another delimiter, another case
    "external_user_id\trole",
    "external_user_id|instance",
    "external_user_id",
    "sid,role",  # no id column (unless named)
    "external_user_id,role,instance,",  # Excel's empty trailing header cell
    "external_user_id,role,ROLE",  # a column twice
    "\ufeffexternal_user_id,role",  # a BOM
    "sep=;\nexternal_user_id;role",  # Excel's sep= line
    "\nexternal_user_id,role",  # a blank line first
    '"external_user_id",role',  # a quoted header
]
ODD_ROWS = [
    "",
    ",,",
    '"quoted-1",learner,alg',
    "bad id,learner,alg",
    "stu-x,janitor,alg",
    "stu-y,administrator,alg",
    "stu-z,learner,=cmd()",
    "stu-w,learner,alg,extra",
    "stu-v,learner",
    "stu-0003,learner,alg",  # a duplicate
    "stu-\x00nul,learner,alg",
    "stu-é,learner,alg",
    "null,learner,alg",  # a placeholder
    "555-123-4567,learner,alg",  # a phone number
    "1.5e-10,learner,alg",  # a number in scientific notation
    " stu-sp,learner,alg",
    "x" * 300 + ",learner,alg",
]


def roster_bytes(rng: random.Random) -> bytes:
    header = rng.choice(HEADERS[:5] if rng.random() < 0.6 else HEADERS)
    delimiter = next((d for d in ";\t|" if d in header.split("\n")[-1]), ",")
    width = header.split("\n")[-1].count(delimiter) + 1
    lines = [header]
    for i in range(rng.randrange(0, 40)):
        if rng.random() < 0.02:
            lines.append(rng.choice(ODD_ROWS).replace(",", delimiter))
            continue
        cells = [f"stu-{i:04d}", rng.choice(["learner", "Student", "teacher"]), "alg"]
        lines.append(delimiter.join([*cells, "bio", "x"][:width]))
    ending = "\r\n" if rng.random() < 0.1 else "\n"
    text = ending.join(lines) + ("" if rng.random() < 0.1 else ending)
    return text.encode("utf-16" if rng.random() < 0.1 else "utf-8")


def read(path: Path, options: RosterOptions, forced: tuple[str | None, str | None]) -> tuple:
    problems = Problems()
    roster = Roster()
    collector = Collector(problems, roster)
    collector.force_instance, collector.force_role = forced
    with rosters.open_inputs() as inputs:
        rosters.read_input(path, collector, options, inputs)
    return (
        [str(p) for p in problems],
        list(roster.people),
        roster.skipped_rows,
        collector.rows,
        [sorted(bucket) for bucket in collector.digests],
    )


OPTIONS = [
    RosterOptions(),
    RosterOptions(id_column="sid"),
    RosterOptions(role_column="role"),
    RosterOptions(instance_column="instance"),
    RosterOptions(delimiter=";"),
]


@pytest.mark.parametrize("seed", range(6))
def test_a_file_read_whole_reads_as_the_general_reader(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    taken = 0
    real = csv_whole._take_whole

    def counted(*args: object) -> bool:
        nonlocal taken
        done = real(*args)  # type: ignore[arg-type]
        taken += done
        return done

    for n in range(40):
        path = tmp_path / f"r{n}.csv"
        path.write_bytes(roster_bytes(rng))
        options = rng.choice(OPTIONS) if rng.random() < 0.5 else OPTIONS[0]
        forced = rng.choice([(None, None), ("geo", None), ("geo", "instructor")])
        monkeypatch.setattr(csv_whole, "_take_whole", lambda *a: False)
        monkeypatch.setattr(TextLines, "blocks", lambda self, count=0: iter(()))
        rowwise = read(path, options, forced)  # the general reader, a row at a time
        monkeypatch.undo()
        monkeypatch.setattr(csv_whole, "_take_whole", lambda *a: False)
        assert read(path, options, forced) == rowwise, path.read_bytes()[:200]  # by blocks
        monkeypatch.setattr(csv_whole, "_take_whole", counted)
        assert read(path, options, forced) == rowwise, path.read_bytes()[:200]  # whole
    assert 5 <= taken <= 35  # some files were read whole, not all


def test_a_plain_class_file_is_read_whole_and_a_hostile_one_is_not(tmp_path: Path) -> None:
    plain = tmp_path / "a.csv"
    plain.write_text("external_user_id\n" + "".join(f"s-{i}\n" for i in range(250)))
    collector = Collector(Problems(), Roster())
    with plain.open("rb") as stream:
        assert csv_whole.read_whole(stream, "a.csv", collector, None, ("external_user_id",
                                                                        None, None))  # fmt: skip
    assert collector.rows == 250 and collector.roster.people[-1].origin.line == 251
    assert collector.roster.headers == {"a.csv": file_header(plain)}  # not opened again
    assert file_header(plain) == "external_user_id"
    for hostile in (
        b"external_user_id\ns-1\r\n",  # a CR
        b"external_user_id\ns-1\nnull\n",  # a placeholder
        b"external_user_id\ns-1\ns-2",  # no line break at the end
        b"external_user_id\ns-\xc3\xa9\n",  # not ASCII
        b"external_user_id\n" + b"s-1\n" * (csv_whole.WHOLE_BYTES // 4),  # too large
    ):
        plain.write_bytes(hostile)
        collector = Collector(Problems(), Roster())
        with plain.open("rb") as stream:
            assert not csv_whole.read_whole(
                stream, "a.csv", collector, None, ("external_user_id", None, None)
            )
            assert stream.tell() == 0  # rewound for the general reader
        assert collector.rows == 0 and not collector.roster.people
        assert not any(collector.digests)


def test_a_file_still_growing_is_left_to_the_general_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The size read before the file was read is not the size read: an export still being
    written is read to its end by the general reader, never cut where the size said."""
    path = tmp_path / "a.csv"
    path.write_text("external_user_id\ns-1\ns-2\n")
    real = os.fstat
    monkeypatch.setattr(csv_whole.os, "fstat", lambda fd: os.stat_result(
        (*real(fd)[:6], real(fd).st_size - 5, *real(fd)[7:])))  # fmt: skip
    collector = Collector(Problems(), Roster())
    with path.open("rb") as stream:
        assert not csv_whole.read_whole(stream, "a.csv", collector, None,
                                        ("external_user_id", None, None))  # fmt: skip
        assert stream.tell() == 0
    assert collector.rows == 0
