"""Adversary (issue 22): Clever, Apple School Manager and Canvas files written here from the
formats' published column lists (Clever "SFTP Instructions" 3.1-3.5; Apple School Manager
User Guide, "Template information for importing records"; Instructure's "SIS Import Format
Documentation"), not from the project's fixtures.

A class's display name is sent to the API and shown on terminals and in reports: the
manifest, OneRoster and SDS refuse one holding control characters (ESC, TAB, C1) or bidi
overrides at input (file:line:column, exit 2, nothing sent); so must the three newer readers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kprov.errors import InputError
from kprov.rosters import load_roster

ESC_NAME = '"Math\x1b[8m hidden\x1b[0m"'  # a quoted cell: the escape is data, not a new row


def write(folder: Path, files: dict[str, list[str]], newline: str = "\r\n") -> Path:
    folder.mkdir()
    for name, lines in files.items():
        (folder / name).write_bytes((newline.join(lines) + newline).encode())
    return folder


def problems(folder: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_roster([folder])
    assert caught.value.exit_code == 2
    return caught.value.problems


def clever(folder: Path, section_name: str) -> Path:
    return write(
        folder,
        {
            "schools.csv": ["School_id,School_name", "7001,Lincoln"],
            "students.csv": ["School_id,Student_id,Last_name", "7001,107368500,Doe"],
            "teachers.csv": ["School_id,Teacher_id,Last_name", "7001,201,Aa"],
            "sections.csv": [
                "School_id,Section_id,Teacher_id,Teacher_2_id,Name,Course_name,Term_start,Term_end",
                f"7001,S1,201,,{section_name},Math 4,8/15/26,12/20/26",
            ],
            "enrollments.csv": ["School_id,Section_id,Student_id", "7001,S1,107368500"],
        },
        newline="\r",  # classic Mac line endings, as Clever's sandbox district has them
    )


def asm(folder: Path, display_name: str) -> Path:
    return write(
        folder,
        {
            "locations.csv": ["location_id,location_name", "L1,Lincoln"],
            "students.csv": [
                "person_id,person_number,first_name,last_name,location_id",
                "p1,1,Ann,Aa,L1",
            ],
            "staff.csv": [
                "person_id,person_number,first_name,last_name,location_id",
                "s1,2,Bo,Bb,L1",
            ],
            "courses.csv": ["course_id,course_number,course_name,location_id", "K1,1,Math,L1"],
            "classes.csv": [
                "class_id,class_number,course_id,instructor_id,instructor_id_2,location_id,"
                "class_display_name",
                f"CL1,1,K1,s1,,L1,{display_name}",
            ],
            "rosters.csv": ["roster_id,class_id,student_id", "r1,CL1,p1"],
        },
    )


def canvas(folder: Path, long_name: str) -> Path:
    return write(
        folder,
        {
            "courses.csv": ["course_id,short_name,long_name,status", f"C1,BIO,{long_name},active"],
            "enrollments.csv": [
                "course_id,user_id,role,status",
                "C1,prof,teacher,active",
                "C1,u1,student,active",
            ],
        },
    )


@pytest.mark.parametrize(
    ("make", "where"),
    [
        (clever, "sections.csv:2"),
        (asm, "classes.csv:2"),
        (canvas, "courses.csv:2"),
    ],
)
def test_a_class_name_with_an_escape_sequence_is_refused_at_input(
    tmp_path: Path, make: object, where: str
) -> None:
    good = make(tmp_path / "good", '"Math, 4th"')  # type: ignore[operator]
    assert len(load_roster([good]).classes) == 1
    found = problems(make(tmp_path / "bad", ESC_NAME))  # type: ignore[operator]
    assert any(where in p and "U+001B" in p for p in found), found
