"""Clever's SFTP CSV export: schools, students, teachers, sections, enrollments (a folder or a
zip; Clever's "SFTP Instructions", sections 3.1-3.5).

Every section becomes an instance keyed by its `Section_id` and named by its `Name` (else its
`Course_name`), dated by `Term_start`/`Term_end` (M/D/YYYY, M/D/YY as in Clever's sandbox
district, or ISO). Every teacher a section lists (`Teacher_id`, `Teacher_2_id`, ...) is one of
its instructors; every row of enrollments.csv a learner. students.csv and teachers.csv hold
names, emails, usernames and passwords: only their id columns are read.

Clever takes only current data ("CSV files should contain only active student data"), so an
export is the whole truth: bulk, and each section's membership is stated whole (with
`sync --prune`, a registration missing from it may be removed, under the brake). Every
reference must resolve: a section's school and teachers, an enrollment's section and student.
"""

from __future__ import annotations

from kprov.rosters.bundle import Bundle
from kprov.rosters.collect import Collector
from kprov.rosters.model import INSTRUCTOR, LEARNER
from kprov.rosters.oneroster import BULK, BundleInfo
from kprov.rosters.tables import (
    Export,
    add_instructors,
    add_learners,
    check_name,
    dated_class,
    good_key,
    key_set,
    numbered_columns,
    people_ids,
    record_class,
)
from kprov.rosters.text import TextOptions

FILES = ("schools.csv", "students.csv", "teachers.csv", "sections.csv", "enrollments.csv")
TEACHER_COLUMNS = r"Teacher_(\d+)_id"  # Teacher_2_id, ...: exports show up to 4; any are read


def read_clever(bundle: Bundle, collector: Collector, options: TextOptions) -> BundleInfo:
    info = BundleInfo("Clever", modes={m.removesuffix(".csv"): BULK for m in FILES})
    export = Export(bundle, collector, options, "Clever")
    if export.missing(FILES, "all five Clever files"):
        return info
    schools = key_set(export, "schools.csv", "School_id")
    at_school = (("School_id", schools, "schools.csv"),)
    students = people_ids(export, "students.csv", "Student_id", LEARNER, at_school)
    teachers = people_ids(export, "teachers.csv", "Teacher_id", INSTRUCTOR, at_school)
    sections = _sections(export, schools, teachers)
    add_learners(
        export, "enrollments.csv", ("Section_id", "Student_id"), sections,
        "a section of sections.csv", students, (("School_id", schools, "schools.csv"),),
    )  # fmt: skip
    info.authoritative = {collector.class_key(key) for key, made in sections.items() if made}
    return info


def _sections(
    export: Export, schools: set[str] | None, teachers: set[str] | None
) -> dict[str, bool]:
    """Section_id (raw) -> whether it became an instance (False: refused, reported, so its
    enrollments are not reported again); its teachers become its instructors."""
    opened = export.table("sections.csv", ("School_id", "Section_id"))
    if opened is None:
        return {}
    table, (school_at, id_at) = opened
    teacher_cols = numbered_columns(table, "Teacher_id", TEACHER_COLUMNS)
    name_at, course_at = table.column("Name"), table.column("Course_name")
    dates = (table.column("Term_start"), table.column("Term_end"))
    collector = export.collector
    sections: dict[str, bool] = {}
    for line, cells in table.rows():
        raw = cells[id_at].strip()
        if not good_key(table, raw, line, id_at + 1, "Section_id"):
            continue
        sections.setdefault(raw, False)
        school = cells[school_at].strip()
        if schools is not None and school not in schools:
            table.problem(
                line, f"School_id {school!r} is not in schools.csv; export again", school_at + 1
            )
            continue
        named = [(at, cells[at].strip()) for at in (name_at, course_at) if at is not None]
        title_at, title = next(((at, name) for at, name in named if name), (None, raw))
        key = collector.class_key(raw)
        info = dated_class(table, cells, line, key, title, dates, us_slashes=True)
        check_name(table, line, title, title_at + 1 if title_at is not None else None)
        if info is None or not record_class(collector, table, line, id_at + 1, info):
            continue
        sections[raw] = True
        add_instructors(collector, table, cells, line, key, teacher_cols, teachers, "teachers.csv")
    return sections
