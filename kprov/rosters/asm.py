"""Apple School Manager's SFTP CSV upload: locations, students, staff, courses, classes,
rosters (a folder or a zip; Apple's templates in "Apple School Manager User Guide",
"Template information for importing records").

Every class becomes an instance keyed by its `class_id` and named by its
`class_display_name` (else its course's `course_name` and its `class_number`); every
instructor it lists (`instructor_id`, `instructor_id_2` ... `instructor_id_15`) is one of its
instructors, every row of rosters.csv a learner. `person_id` is one id space for students
and staff ("person_id must be unique for all locations"). Apple escapes a quote inside a value
with a backslash (`\\"`): read as Apple writes it. Only the id columns are read from students
and staff (the templates also hold names, emails and passwords).

An upload is the whole truth ("if a class is removed from the upload, students are removed
from the class"): bulk, and each class's membership is stated whole. ASM has no term dates:
instances take the manifest's dates.
"""

from __future__ import annotations

from kprov.rosters.bundle import Bundle
from kprov.rosters.collect import Collector
from kprov.rosters.model import INSTRUCTOR, LEARNER, ClassInfo, Origin
from kprov.rosters.oneroster import BULK, BundleInfo
from kprov.rosters.tables import (
    Export,
    add_instructors,
    add_learners,
    check_name,
    good_key,
    key_set,
    numbered_columns,
    people_ids,
    record_class,
    resolves,
)
from kprov.rosters.text import TextOptions

FILES = (
    "locations.csv", "students.csv", "staff.csv", "courses.csv", "classes.csv", "rosters.csv"
)  # fmt: skip
INSTRUCTOR_COLUMNS = r"instructor_id_(\d+)"


def read_asm(bundle: Bundle, collector: Collector, options: TextOptions) -> BundleInfo:
    info = BundleInfo("Apple School Manager", modes={m.removesuffix(".csv"): BULK for m in FILES})
    export = Export(bundle, collector, options, "Apple School Manager", escapechar="\\")
    if export.missing(FILES, "all six Apple School Manager files"):
        return info
    locations = key_set(export, "locations.csv", "location_id")
    at_location = (("location_id", locations, "locations.csv"),)
    students = people_ids(export, "students.csv", "person_id", LEARNER, at_location)
    staff = people_ids(export, "staff.csv", "person_id", INSTRUCTOR, at_location)
    courses = _courses(export, locations)
    classes = _classes(export, locations, courses, staff)
    columns = ("class_id", "student_id")
    add_learners(export, "rosters.csv", columns, classes, "a class of classes.csv", students)
    info.authoritative = {collector.class_key(key) for key, made in classes.items() if made}
    return info


def _courses(export: Export, locations: set[str] | None) -> dict[str, str] | None:
    """course_id -> course_name (None if the file is unusable: reported)."""
    opened = export.table("courses.csv", ("course_id",))
    if opened is None:
        return None
    table, (id_at,) = opened
    name_at = table.column("course_name")
    checks = [(table.column("location_id"), locations, "location_id", "locations.csv")]
    courses: dict[str, str] = {}
    for line, cells in table.rows():
        key = cells[id_at].strip()
        if not good_key(table, key, line, id_at + 1, "course_id"):
            continue
        if key in courses:
            table.problem(line, f"course_id {key!r} appears twice; keep one row", id_at + 1)
            continue
        resolves(table, cells, line, checks)
        courses[key] = cells[name_at].strip() if name_at is not None else ""
    return courses


def _classes(
    export: Export,
    locations: set[str] | None,
    courses: dict[str, str] | None,
    staff: set[str] | None,
) -> dict[str, bool]:
    """class_id (raw) -> whether it became an instance; its instructors are registered."""
    opened = export.table("classes.csv", ("class_id", "course_id"))
    if opened is None:
        return {}
    table, (id_at, course_at) = opened
    instructors = numbered_columns(table, "instructor_id", INSTRUCTOR_COLUMNS)
    display_at, number_at = table.column("class_display_name"), table.column("class_number")
    checks = [
        (table.column("location_id"), locations, "location_id", "locations.csv"),
        (course_at, set(courses) if courses is not None else None, "course_id", "courses.csv"),
    ]
    collector = export.collector
    classes: dict[str, bool] = {}
    for line, cells in table.rows():
        raw = cells[id_at].strip()
        if not good_key(table, raw, line, id_at + 1, "class_id"):
            continue
        classes.setdefault(raw, False)
        if not resolves(table, cells, line, checks):
            continue
        key = collector.class_key(raw)
        title = _title(cells, display_at, number_at, (courses or {}).get(cells[course_at].strip()))
        info = ClassInfo(key, title or raw, Origin(table.name, line))
        check_name(table, line, info.title, display_at + 1 if display_at is not None else None)
        if not record_class(collector, table, line, id_at + 1, info):
            continue
        classes[raw] = True
        add_instructors(collector, table, cells, line, key, instructors, staff, "staff.csv")
    return classes


def _title(
    cells: list[str], display_at: int | None, number_at: int | None, course: str | None
) -> str:
    """The class's own display name, else its course's name and its number."""
    if display_at is not None and cells[display_at].strip():
        return cells[display_at].strip()
    number = cells[number_at].strip() if number_at is not None else ""
    return " ".join(part for part in (course or "", number) if part)
