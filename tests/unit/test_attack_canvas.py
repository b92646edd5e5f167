"""Adversary (issue 22): Canvas SIS import files written here to Instructure's published
format ("SIS Import Format Documentation", enrollments.csv: course_id, user_id, role,
section_id, status active/deleted/completed/inactive/deleted_last_completed), not taken from
the project's fixtures.

A person in two sections of one course is one registration. A `completed` (or `inactive`)
row keeps that registration -- "not provisioned, not removed: the analytics stay" -- so a
`deleted` row in the course's other section must not remove it.
"""

from __future__ import annotations

from pathlib import Path

from kprov.rosters import load_roster


def bundle(folder: Path, enrollments: list[str]) -> Path:
    folder.mkdir()
    (folder / "courses.csv").write_text(
        "course_id,short_name,long_name,account_id,term_id,status\nC1,BIO101,Biology 101,,,active\n"
    )
    (folder / "sections.csv").write_text(
        "section_id,course_id,name,status\nA,C1,Section A,active\nB,C1,Section B,active\n"
    )
    (folder / "enrollments.csv").write_text(
        "course_id,user_id,role,section_id,status\nC1,prof,teacher,A,active\n"
        + "".join(f"{row}\n" for row in enrollments)
    )
    return folder


def removed(folder: Path) -> set[str]:
    return {p.external_id for p in load_roster([folder]).removals}


def test_a_deleted_section_row_does_not_remove_a_completed_enrolment_of_the_course(
    tmp_path: Path,
) -> None:
    rows = [
        "C1,u1,student,A,completed",
        "C1,u1,student,B,deleted",  # after: the completed row is the one that stays
        "C1,u2,student,B,deleted",
        "C1,u2,student,A,inactive",  # before: likewise
        "C1,u3,student,B,deleted",  # only deleted: removed
    ]
    assert removed(bundle(tmp_path / "n", rows)) == {"u3"}


def test_a_deleted_row_beside_an_active_one_still_keeps_the_person(tmp_path: Path) -> None:
    rows = ["C1,u1,student,B,deleted", "C1,u1,student,A,active"]
    assert removed(bundle(tmp_path / "n", rows)) == set()
