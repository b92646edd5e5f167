"""Microsoft School Data Sync: Microsoft's own v1 and v2.1 samples, and what they must not leak."""

from __future__ import annotations

import csv
import shutil
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from kprov.errors import InputError
from kprov.rosters import load_roster
from kprov.rosters.model import INSTRUCTOR, LEARNER

SDS = Path(__file__).resolve().parent.parent / "data" / "real" / "sds"
V1, V21 = SDS / "v1-100-users", SDS / "v2.1"


def sample_rows(name: str) -> list[dict[str, str]]:
    with (V1 / name).open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def test_the_v1_sample_provisions_exactly_what_it_describes() -> None:
    roster = load_roster([V1])
    enrolments = {
        (p.external_id, p.instance_key, p.role) for p in roster.people if not p.account_only
    }
    expected = {
        (r["SIS ID"], r["Section SIS ID"], LEARNER) for r in sample_rows("StudentEnrollment.csv")
    }
    expected |= {
        (r["SIS ID"], r["Section SIS ID"], INSTRUCTOR) for r in sample_rows("TeacherRoster.csv")
    }
    assert enrolments == expected and len(enrolments) == 602 + 28
    accounts = Counter(p.role for p in roster.people if p.account_only)
    assert accounts == {LEARNER: 86, INSTRUCTOR: 12}
    sections = {r["SIS ID"]: r["Section Name"] for r in sample_rows("Section.csv")}
    assert {k: c.title for k, c in roster.classes.items()} == sections
    first = roster.classes["11001"]
    assert (first.title, first.start_date, first.end_date) == (
        "Math - Algebra 1",
        "2017-07-01",
        "2018-06-30",
    )
    assert roster.complete and roster.authoritative_classes == set(sections)
    assert roster.skipped_rows == []


def test_the_v2_1_sample_reads_roles_from_roles_csv_and_the_enrollment() -> None:
    roster = load_roster([V21])
    assert {
        (p.external_id, p.instance_key, p.role) for p in roster.people if not p.account_only
    } == {
        ("114008", "112001", LEARNER),
        ("114006", "112001", INSTRUCTOR),  # "professor"
        ("114001", "112002", LEARNER),
        ("114003", "112002", LEARNER),
        ("114004", "112002", LEARNER),
        ("114007", "112002", INSTRUCTOR),
    }
    # 114002 and 114005 are family members: no role in roles.csv, so no account
    assert {s.external_id for s in roster.skipped_rows} == {"114002", "114005"}
    assert {k: (c.title, c.start_date, c.end_date) for k, c in roster.classes.items()} == {
        "112001": ("Computer Science 101", "2021-09-01", "2021-12-01"),
        "112002": ("Biology 10", "2021-08-24", "2022-06-11"),
    }


def test_the_v1_sample_zipped_reads_the_same(tmp_path: Path) -> None:
    archive = tmp_path / "sds.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for member in V1.iterdir():
            bundle.write(member, member.name)
    assert len(load_roster([archive]).people) == len(load_roster([V1]).people)


def secrets_of_v1() -> set[str]:
    """Every value of Student.csv and Teacher.csv but the SIS ids: none may reach a message."""
    found: set[str] = set()
    ids: set[str] = set()
    for name in ("Student.csv", "Teacher.csv"):
        for row in sample_rows(name):
            ids |= {row["SIS ID"], row["School SIS ID"]}
            found |= {v for v in row.values() if len(v) > 3}
    return found - ids - {"Active"}


def broken_copy(tmp_path: Path, name: str, edit: object) -> Path:
    bundle = shutil.copytree(V1, tmp_path / "sds")
    path = bundle / name
    path.write_bytes(edit(path.read_bytes()))  # type: ignore[operator]
    return bundle


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("Student.csv", lambda raw: raw.split(b"\r\n", 1)[1]),  # the header is gone
        ("Student.csv", lambda raw: raw.replace(b",Klein,", b",Klein,,", 1)),  # a ragged row
        ("Teacher.csv", lambda raw: raw.replace(b"P@ssw0rd", b'"P@ssw0rd', 1)),  # broken quoting
        ("Student.csv", lambda raw: raw.replace(b"Ora", b"Or\xe9", 1)),  # Windows-1252 byte
        ("Teacher.csv", lambda raw: raw.replace(b"14001,", b"Craig Beane,", 1)),  # a name as id
    ],
)
def test_problems_in_student_and_teacher_files_never_show_their_other_columns(
    tmp_path: Path, name: str, edit: object
) -> None:
    bundle = broken_copy(tmp_path, name, edit)
    with pytest.raises(InputError) as caught:
        load_roster([bundle])
    text = str(caught.value) + "\n".join(caught.value.problems)
    assert f"{bundle}!{name}" in text
    leaked = {secret for secret in secrets_of_v1() if secret in text}
    assert leaked <= {"Craig", "Beane"}  # the one value that was put in the id column


def test_a_section_missing_from_section_csv_or_a_student_missing_is_named(tmp_path: Path) -> None:
    bundle = shutil.copytree(V1, tmp_path / "sds")
    enrollments = bundle / "StudentEnrollment.csv"
    enrollments.write_bytes(enrollments.read_bytes() + b"99999,13001\r\n11001,99998\r\n")
    with pytest.raises(InputError) as caught:
        load_roster([bundle])
    assert caught.value.problems == [
        f"{bundle}!StudentEnrollment.csv:604:1: Section SIS ID '99999' is not in Section.csv; "
        "export again",
        f"{bundle}!StudentEnrollment.csv:605:2: SIS ID '99998' is not in Student.csv; export again",
    ]


def test_inactive_sections_are_skipped_with_their_enrollments(tmp_path: Path) -> None:
    bundle = shutil.copytree(V1, tmp_path / "sds")
    sections = bundle / "Section.csv"
    sections.write_bytes(sections.read_bytes().replace(b"Math,1,Active", b"Math,1,Inactive", 1))
    roster = load_roster([bundle])
    assert "11001" not in roster.classes
    reasons = Counter(s.reason for s in roster.skipped_rows)
    assert reasons["section Inactive"] == 1
    assert reasons["section 11001 is not active"] == sum(
        1 for r in sample_rows("StudentEnrollment.csv") + sample_rows("TeacherRoster.csv")
        if r["Section SIS ID"] == "11001"
    )  # fmt: skip
