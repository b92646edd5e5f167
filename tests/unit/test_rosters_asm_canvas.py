"""Apple School Manager uploads and Canvas SIS import CSVs, built to their published formats.

Apple: "Apple School Manager User Guide", the Locations, Students, Staff, Courses, Classes and
Rosters templates (class_id, course_id, instructor_id, instructor_id_2 ... instructor_id_15,
location_id, class_display_name; roster_id, class_id, student_id; "person_id must be unique
for all locations"; a quote inside a value escaped with a backslash).
Canvas: Instructure's "SIS Import Format Documentation" (canvas-lms doc/api/sis_csv.md):
users.csv, courses.csv (status active/deleted/completed), sections.csv, enrollments.csv (role
student/teacher/ta/observer/designer or a custom role, status active/deleted/completed/
inactive/deleted_last_completed), terms.csv with ISO 8601 dates ("2013-1-03 00:00:00" in its
own sample).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from kprov.errors import InputError
from kprov.rosters import Roster, RosterOptions, load_roster
from kprov.rosters.model import INSTRUCTOR, LEARNER

DATA = Path(__file__).resolve().parent.parent / "data" / "rosters"
ASM, CANVAS = DATA / "asm-upload", DATA / "canvas-sis"


def rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle, escapechar="\\"))


def enrolled(roster: Roster) -> set[tuple[str, str | None, str]]:
    return {(p.external_id, p.instance_key, p.role) for p in roster.people if not p.account_only}


def problems_of(path: Path, options: RosterOptions | None = None) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_roster([path], options)
    assert caught.value.exit_code == 2
    return caught.value.problems


def asm_expected() -> set[tuple[str, str, str]]:
    found = {(r["student_id"], r["class_id"], LEARNER) for r in rows(ASM, "rosters.csv")}
    for cls in rows(ASM, "classes.csv"):
        for column in ("instructor_id", "instructor_id_2", "instructor_id_3"):
            if cls[column]:
                found.add((cls[column], cls["class_id"], INSTRUCTOR))
    return found


def test_an_apple_school_manager_upload_provisions_what_it_describes() -> None:
    roster = load_roster([ASM])
    assert enrolled(roster) == asm_expected()
    classes = {r["class_id"] for r in rows(ASM, "classes.csv")}
    assert set(roster.classes) == classes == roster.authoritative_classes
    titles = sorted(c.title for c in roster.classes.values())
    # Apple's backslash-escaped quote; no display name: the course's name and class number
    assert titles == ['Algebra "Honors", Period 2', "Art 6", "Biology, Honors 12"]
    assert {p.role for p in roster.people if p.account_only} == {LEARNER, INSTRUCTOR}
    assert "eliza0@example.org" not in repr(roster)


def test_asm_references_resolve_and_person_ids_are_one_space(tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(ASM, tmp_path / "asm"))
    staff, student = (rows(ASM, f)[0]["person_id"] for f in ("staff.csv", "students.csv"))
    location, course = rows(ASM, "locations.csv")[0]["location_id"], "NO-COURSE"
    with (bundle / "classes.csv").open("a") as out:
        out.write(f"K-9,1,{course},{staff},,,{location},Ghost\r\n")
        out.write(f"K-10,1,{rows(ASM, 'courses.csv')[0]['course_id']},,P-404,,HQ,X\r\n")
    with (bundle / "staff.csv").open("a") as out:  # "person_id must be unique"
        out.write(f"{student},1,Twin,,Person,t@example.org,twin,{location}\r\n")
    *refused, twin = problems_of(bundle)
    assert refused == [
        f"{bundle}!classes.csv:5:3: course_id 'NO-COURSE' is not in courses.csv; export again",
        f"{bundle}!classes.csv:6:7: location_id 'HQ' is not in locations.csv; export again",
    ]
    assert twin.startswith(f"{bundle}!staff.csv:6: id {student!r} appears twice: first at ")
    assert "one id for two rows of the same export" in twin
    with (bundle / "classes.csv").open("w") as out:
        out.write((ASM / "classes.csv").read_text() + f"K-11,1,{course},,P-404,,{location},\r\n")
    (bundle / "staff.csv").write_bytes((ASM / "staff.csv").read_bytes())
    (bundle / "courses.csv").write_text((ASM / "courses.csv").read_text() + f"{course},1,X,\r\n")
    assert problems_of(bundle) == [
        f"{bundle}!classes.csv:5:5: instructor_id_2 'P-404' is not in staff.csv; export again"
    ]


def test_asm_needs_all_six_files(tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(ASM, tmp_path / "asm"))
    (bundle / "rosters.csv").unlink()
    assert problems_of(bundle) == [
        f"{bundle}: this Apple School Manager export lacks rosters.csv; export all six Apple "
        "School Manager files"
    ]


def test_a_canvas_import_follows_each_roles_and_statuses_rules() -> None:
    roster = load_roster([CANVAS])
    assert enrolled(roster) == {
        ("01103", "E411208", LEARNER),
        ("13834", "E411208", LEARNER),
        ("13aa3", "E411208", INSTRUCTOR),  # in two sections of the course: one line
        ("60001", "E411208", LEARNER),  # named by its sections only
        ("01103", "R001104", LEARNER),
        ("13aa3", "R001104", INSTRUCTOR),
        ("13aa3", "A110035", INSTRUCTOR),
    }
    assert [(p.external_id, p.instance_key) for p in roster.removals] == [("01103", "A110035")]
    reasons = {(s.external_id, s.reason.split(" ")[0]) for s in roster.skipped_rows}
    assert reasons == {
        ("H220001", "course"),  # completed course: no instance
        ("20417", "role"),  # ta, not asked
        ("30911", "role"),  # observer
        ("50310", "role"),  # designer
        ("13834", "enrollment"),  # completed: kept, never removed
        ("60001", "enrollment"),  # inactive: likewise
        ("40022", "user"),  # deleted user
        ("13834", "custom"),  # a custom role
        ("01103", "course"),  # enrolled in the completed course
    }
    assert not roster.complete and roster.authoritative_classes == set()  # changes only


def test_canvas_names_and_dates_come_from_courses_then_terms() -> None:
    classes = load_roster([CANVAS]).classes
    assert (classes["E411208"].start_date, classes["E411208"].end_date) == (
        "2027-01-11",  # terms.csv "2027-1-11 00:00:00", as Canvas's own sample writes it
        "2027-05-07",
    )
    assert classes["R001104"].title == "Biology 300: Rocking it, Bio Style"
    assert classes["A110035"].title == 'Art 105: "Art as a Medium"'
    assert (classes["A110035"].start_date, classes["A110035"].end_date) == (
        "2026-09-01",
        "2026-12-15",
    )


def test_tas_are_instructors_only_when_asked() -> None:
    roster = load_roster([CANVAS], RosterOptions(ta_as_instructor=True))
    assert ("20417", "E411208", INSTRUCTOR) in enrolled(roster)
    skipped = load_roster([CANVAS]).skipped_rows
    assert any("ta_as_instructor: true" in s.reason for s in skipped if s.external_id == "20417")


def test_canvas_references_to_files_it_holds_must_resolve(tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(CANVAS, tmp_path / "canvas"))
    with (bundle / "enrollments.csv").open("a") as out:
        out.write("E411208,,99999,student,,,active,,\n")
        out.write("NOPE,,01103,student,,,active,,\n")
        out.write("R001104,,01103,student,,S001,active,,\n")
        out.write(",,01103,student,,S404,active,,\n")
        out.write("E411208,,01103,teacher,,S002,active,,\n")
        out.write("E411208,,01103,student,,,paused,,\n")
    with (bundle / "courses.csv").open("a") as out:
        out.write("Z1,Z,Z,A1,T404,active,,\r\n")
    assert problems_of(bundle) == [
        f"{bundle}!courses.csv:6:4: account_id 'A1' is not in accounts.csv; export again",
        f"{bundle}!courses.csv:6:5: term_id 'T404' is not in terms.csv; export again",
        f"{bundle}!enrollments.csv:21:3: user_id '99999' is not in users.csv; export again",
        f"{bundle}!enrollments.csv:22:1: course_id 'NOPE' is not in courses.csv; export again",
        f"{bundle}!enrollments.csv:23:6: section 'S001' is in course 'E411208' (sections.csv), "
        "not 'R001104'; export again",
        f"{bundle}!enrollments.csv:24:6: section_id 'S404' is not in sections.csv",
        f"{bundle}!enrollments.csv:25: user '01103' is enrolled as instructor here but as "
        "learner at line 2 in course 'E411208': one person has one role in a class; keep one "
        "of them",
        f"{bundle}!enrollments.csv:26:7: status 'paused' is not one of: active, deleted, "
        "completed, inactive, deleted_last_completed",
    ]


def test_a_canvas_bundle_without_enrollments_says_why_it_is_needed(tmp_path: Path) -> None:
    bundle = tmp_path / "canvas"
    bundle.mkdir()
    shutil.copy(CANVAS / "users.csv", bundle / "users.csv")
    [problem] = problems_of(bundle)
    assert problem.startswith(f"{bundle}: this Canvas bundle has no enrollments.csv")
