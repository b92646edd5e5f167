"""Clever's SFTP CSV export, read from files shaped like the real ones.

The format: Clever's "SFTP Instructions" (sections 3.1-3.5: schools.csv, students.csv,
teachers.csv, sections.csv with Teacher_id, Teacher_2_id ... and Term_start/Term_end,
enrollments.csv School_id,Section_id,Student_id), and Clever support's "Records not processed
due to duplicate IDs" (ids unique per file; a teacher at several schools is listed once).
The fixture copies the shape of Clever's public sandbox district (classic-Mac CR line
endings, M/D/YY term dates, numeric ids, up to four teachers per section, names with commas
in quotes); see tests/data/rosters/README.md.
"""

from __future__ import annotations

import csv
import shutil
import zipfile
from pathlib import Path

import pytest

from kprov.errors import InputError
from kprov.rosters import Roster, check_rosters, load_roster
from kprov.rosters.bundle import open_bundle
from kprov.rosters.model import INSTRUCTOR, LEARNER

CLEVER = Path(__file__).resolve().parent.parent / "data" / "rosters" / "clever-district"


def rows(name: str, folder: Path = CLEVER) -> list[dict[str, str]]:
    with (folder / name).open(newline="", encoding="utf-8-sig") as handle:
        return [r for r in csv.DictReader(handle) if any(r.values())]


def expected_enrolments(folder: Path = CLEVER) -> set[tuple[str, str, str]]:
    """Every teacher a section lists an instructor, every enrollment a learner."""
    found = {(r["Student_id"], r["Section_id"], LEARNER) for r in rows("enrollments.csv", folder)}
    for section in rows("sections.csv", folder):
        for column in ("Teacher_id", "Teacher_2_id", "Teacher_3_id", "Teacher_4_id"):
            if section[column]:
                found.add((section[column], section["Section_id"], INSTRUCTOR))
    return found


def enrolled(roster: Roster) -> set[tuple[str, str | None, str]]:
    return {(p.external_id, p.instance_key, p.role) for p in roster.people if not p.account_only}


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_roster([path])
    assert caught.value.exit_code == 2
    return caught.value.problems


def copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(CLEVER, tmp_path / "clever"))


def test_the_fixture_is_shaped_like_clevers_sandbox_district() -> None:
    raw = (CLEVER / "sections.csv").read_bytes()
    assert b"\r" in raw and b"\n" not in raw  # classic-Mac line endings
    assert (CLEVER / "students.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # Excel's BOM
    assert (CLEVER / "enrollments.csv").read_bytes().endswith(b",,\n\n")  # trailing empty rows


def test_every_section_an_instance_every_listed_teacher_an_instructor() -> None:
    roster = load_roster([CLEVER])
    assert enrolled(roster) == expected_enrolments()
    sections = {r["Section_id"]: r for r in rows("sections.csv")}
    assert set(roster.classes) == set(sections) and roster.authoritative_classes == set(sections)
    assert roster.complete and roster.skipped_rows == [] and roster.removals == []
    accounts = {p.external_id: p.role for p in roster.people if p.account_only}
    assert accounts == {r["Student_id"]: LEARNER for r in rows("students.csv")} | {
        r["Teacher_id"]: INSTRUCTOR for r in rows("teachers.csv")
    }


def test_names_and_dates_come_from_the_section() -> None:
    classes = load_roster([CLEVER]).classes
    # M/D/YY (the sandbox's), MM/DD/YYYY and ISO all read as dates; a quoted comma is text
    assert (classes["583"].start_date, classes["583"].end_date) == ("2026-08-24", "2027-06-11")
    assert (classes["667"].start_date, classes["667"].end_date) == ("2026-08-24", "2027-01-22")
    assert classes["658"].title == "English, Class 601 - 601 - E. Lindqvist (Section 1)"
    assert classes["658"].start_date == "2026-08-24"
    # no Name: the course's name; no term dates: none (the manifest's apply)
    assert (classes["590"].title, classes["590"].start_date) == ("Seventh Grade Advisory", "")


def test_a_teacher_listed_twice_in_one_section_is_one_instructor() -> None:
    roster = load_roster([CLEVER])
    assert [p.external_id for p in roster.people if p.instance_key == "590"].count("83") == 1


def test_only_the_id_columns_of_people_files_are_read() -> None:
    roster = load_roster([CLEVER])
    text = repr(roster)
    for secret in ("pw0Secret", "pat0@example.org", "Xoh7ieph", "Guardian 0"):
        assert secret not in text


def test_the_same_export_zipped_reads_the_same(tmp_path: Path) -> None:
    archive = tmp_path / "clever.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for member in CLEVER.iterdir():
            out.write(member, f"sftp-upload/{member.name}")  # Clever's files in a folder
    assert enrolled(load_roster([archive])) == expected_enrolments()


def test_every_reference_must_resolve(tmp_path: Path) -> None:
    bundle = copy(tmp_path)
    with (bundle / "sections.csv").open("ab") as out:
        out.write(b"02M800,700,99,,,,Ghost teacher,9,Ghost,1,1,Y1,8/24/26,6/11/27\r")
        out.write(b"99X999,701,47,,,,Ghost school,9,Ghost,1,1,Y1,8/24/26,6/11/27\r")
        out.write(b"02M800,702,47,,,,Bad date,9,Ghost,1,1,Y1,13/1/26,6/11/27\r")
    with (bundle / "enrollments.csv").open("a") as out:
        out.write("02M800,101500233,999\n02M800,999999999,642\n02M800,101500233,701\n")
    assert problems_of(bundle) == [
        f"{bundle}!enrollments.csv:18:3: Section_id '999' is not a section of sections.csv; "
        "export again",
        f"{bundle}!enrollments.csv:19:2: Student_id '999999999' is not in students.csv; export "
        "again",
        f"{bundle}!sections.csv:8:3: Teacher_id '99' is not in teachers.csv; export again",
        f"{bundle}!sections.csv:9:1: School_id '99X999' is not in schools.csv; export again",
        f"{bundle}!sections.csv:10:13: '13/1/26' is not a real date (read as month/day/year); "
        "write it as YYYY-MM-DD, e.g. 2026-09-01",
    ]  # the enrollment in the refused section 701 is not reported again


def test_a_missing_file_or_column_is_named_and_no_header_is_quoted(tmp_path: Path) -> None:
    bundle = copy(tmp_path)
    (bundle / "schools.csv").unlink()
    assert problems_of(bundle) == [
        f"{bundle}: this Clever export lacks schools.csv; export all five Clever files"
    ]
    bundle = copy(tmp_path / "again")
    (bundle / "enrollments.csv").write_text("101500233,642\n")  # no header: a row of data
    [problem] = problems_of(bundle)
    assert problem == (
        f"{bundle}!enrollments.csv:1: missing column(s) Section_id, Student_id required by "
        "Clever; check that the first line is the header and export again"
    )


def test_a_student_and_a_teacher_with_one_id_are_refused_with_the_right_advice(
    tmp_path: Path,
) -> None:
    bundle = copy(tmp_path)
    with (bundle / "teachers.csv").open("ab") as out:
        out.write(b"02M800,101500233,1,1,Twin,,Sam,sam@example.org,Teacher,sam,pw\r")
    [problem] = problems_of(bundle)
    assert problem.startswith(
        f"{bundle}!teachers.csv:8: id '101500233' appears twice: first at "
        f"{bundle}!students.csv:2; one id for two rows of the same export"
    )


def test_bundle_kinds_are_told_apart_by_their_files(tmp_path: Path) -> None:
    from contextlib import ExitStack

    data = CLEVER.parent
    expected = {
        CLEVER: "clever",
        data / "asm-upload": "asm",
        data / "canvas-sis": "canvas",
        data / "oneroster-1.2": "oneroster",
    }
    only_enrollments = tmp_path / "canvas-enrollments"
    only_enrollments.mkdir()
    (only_enrollments / "enrollments.csv").write_text("course_id,user_id,role,status\n")
    expected[only_enrollments] = "canvas"  # the header tells it from OneRoster's
    with ExitStack() as stack:
        for path, kind in expected.items():
            bundle = open_bundle(path, [], stack)
            assert bundle is not None and bundle.kind() == kind, path


def write_synthetic(folder: Path, students: int, sections: int) -> int:
    """A Clever export of *students* students in two sections each; its row count."""
    folder.mkdir()
    (folder / "schools.csv").write_text("School_id\r02M800\r", newline="")
    (folder / "teachers.csv").write_text(
        "School_id,Teacher_id\r" + "".join(f"02M800,{t}\r" for t in range(sections)), newline=""
    )
    (folder / "sections.csv").write_text(
        "School_id,Section_id,Teacher_id,Name,Term_start,Term_end\r"
        + "".join(f"02M800,{900 + s},{s},Class {s},8/24/26,6/11/27\r" for s in range(sections)),
        newline="",
    )
    ids = [str(200000000 + n) for n in range(students)]
    (folder / "students.csv").write_text(
        "School_id,Student_id\r\n" + "".join(f"02M800,{i}\r\n" for i in ids), newline=""
    )
    (folder / "enrollments.csv").write_text(
        "School_id,Section_id,Student_id\n"
        + "".join(
            f"02M800,{900 + (n + k) % sections},{i}\n" for n, i in enumerate(ids) for k in (0, 1)
        ),
        newline="",
    )
    return sections + students + 2 * students + sections  # accounts, enrolments, teachers


def test_a_large_export_is_checked_streaming_without_keeping_anyone(tmp_path: Path) -> None:
    """The memory bar's shape (bench/roster_memory.py --format clever measures the figure):
    a check keeps no people, only the ids that references are resolved against."""
    rows_written = write_synthetic(tmp_path / "big", students=3000, sections=40)
    checked = check_rosters([tmp_path / "big"])
    assert (checked.people, checked.classes, checked.complete) == (rows_written, 40, True)
