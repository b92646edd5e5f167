"""Streaming validation: refusals cost no people, duplicates are found from digests, problems
are capped, and standard input can be read twice."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

import kprov.rosters as rosters
from kprov.errors import InputError
from kprov.rosters import RosterOptions, check_rosters, load_roster
from kprov.rosters.collect import Collector, DuplicateNamer
from kprov.rosters.model import Roster
from kprov.rosters.text import MAX_PROBLEMS, Problems


def write(path: Path, ids: list[str]) -> Path:
    path.write_text("external_user_id,role\n" + "".join(f"{i},learner\n" for i in ids))
    return path


def test_check_rosters_counts_without_keeping_anyone(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", [f"stu-{i:05d}" for i in range(3000)])
    checked = check_rosters([path])
    assert (checked.people, checked.skipped, checked.complete) == (3000, 0, True)


def test_a_duplicate_is_named_from_a_second_reading_when_nobody_was_kept(tmp_path: Path) -> None:
    ids = [f"stu-{i:05d}" for i in range(2000)]
    path = write(tmp_path / "r.csv", [*ids, "stu-00007", "bad id"])
    with pytest.raises(InputError) as caught:
        check_rosters([path])
    assert caught.value.problems == [
        f"{path}:2002: id 'stu-00007' appears twice: first at {path}:9; keep one row",
        f"{path}:2003:1: id 'bad id' looks like a person's name (personal data); use an "
        "anonymized SIS id, or pass --hash-ids to derive one",
    ]


def test_large_inputs_are_checked_before_anyone_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rosters, "KEEP_IN_FIRST_PASS", 0)
    kept: list[bool] = []
    real_scan = rosters.scan

    def spy(*args: object, **kwargs: object) -> object:
        kept.append(bool(kwargs["keep"]))
        return real_scan(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rosters, "scan", spy)
    good = write(tmp_path / "good.csv", ["stu-1", "stu-2"])
    assert [p.external_id for p in load_roster([good]).people] == ["stu-1", "stu-2"]
    assert kept == [False, True]
    kept.clear()
    bad = write(tmp_path / "bad.csv", ["stu-1", "stu-1"])
    with pytest.raises(InputError):
        load_roster([bad])
    assert kept == [False]  # refused by the check: the people were never built


def test_people_are_let_go_as_soon_as_the_input_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", ["#N/A"] + [f"stu-{i}" for i in range(500)])
    problems = Problems()
    roster = Roster()
    collector = Collector(problems, roster)
    read = rosters._reader([path], RosterOptions())
    with rosters.open_inputs() as inputs:
        read(collector, inputs)
    assert len(problems) == 1 and roster.people == [] and not collector.keep
    assert collector.rows == 500  # every row was still checked


def test_problems_past_the_cap_are_counted_not_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", ["NULL"] * (MAX_PROBLEMS + 234))
    with pytest.raises(InputError) as caught:
        load_roster([path])
    assert str(caught.value).startswith(f"{MAX_PROBLEMS + 234:,} problem(s) in the roster")
    assert caught.value.problems[-1] == f"... and {MAX_PROBLEMS + 234 - 50:,} more"


def test_a_digest_collision_costs_a_second_look_and_no_false_problem() -> None:
    problems = Problems()
    namer = DuplicateNamer({hash(("a", None)), hash(("b", None))}, problems, hashed=False)
    namer.see("a", None, "f", 2)
    namer.see("b", None, "f", 3)
    namer.see("a", "k", "f", 4)  # same id, another instance: not a duplicate
    assert problems == []
    namer.see("a", None, "f", 9)
    assert [str(p) for p in problems] == ["f:9: id 'a' appears twice: first at f:2; keep one row"]


def test_repeated_digests_are_found_bucket_by_bucket() -> None:
    collector = Collector(Problems(), Roster(), keep=False)
    for name in ("x", "y", "x", "z", "y"):
        collector.add(name, "learner", "f", 1)
    assert collector.duplicated_digests() == {hash(("x", None)), hash(("y", None))}


def test_standard_input_is_spooled_so_duplicates_name_both_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = "external_user_id\n" + "".join(f"s-{i}\n" for i in range(50)) + "s-3\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode())))
    monkeypatch.setattr(rosters, "KEEP_IN_FIRST_PASS", -1)
    with pytest.raises(InputError) as caught:
        load_roster([Path("-")])
    assert caught.value.problems == [
        "<stdin>:52: id 's-3' appears twice: first at <stdin>:5; keep one row"
    ]


def test_hashed_ids_are_kept_with_their_sis_id_and_duplicates_show_the_sis_id(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "r.csv", ["jane@x.org", "stu-2"])
    roster = load_roster([path], RosterOptions(hash_key=b"k"))
    assert [p.sis_id for p in roster.people] == ["jane@x.org", "stu-2"]
    dup = write(tmp_path / "d.csv", ["jane@x.org", "jane@x.org"])
    with pytest.raises(InputError) as caught:
        load_roster([dup], RosterOptions(hash_key=b"k"))
    assert "id 'jane@x.org' appears twice" in caught.value.problems[0]
