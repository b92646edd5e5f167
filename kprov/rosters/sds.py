"""Microsoft School Data Sync v1 CSVs: School, Section, Student, Teacher, StudentEnrollment,
TeacherRoster (a folder or a zip). SDS v2.1 is OneRoster-shaped and read by ``oneroster``.

Sections become instances keyed by their `SIS ID` and named by their `Section Name`, with
the term's dates. Student.csv and Teacher.csv also hold names, usernames and passwords: only
their `SIS ID` column is ever read, and nothing else from them can reach a message.
SDS syncs the whole school every time, so every file is bulk.
"""

from __future__ import annotations

from datetime import date

from kprov.rosters.bundle import Bundle
from kprov.rosters.collect import Collector
from kprov.rosters.csv_table import CsvTable
from kprov.rosters.dates import DateError, check_order, parse_date
from kprov.rosters.model import INSTRUCTOR, LEARNER, ClassInfo, Origin
from kprov.rosters.oneroster import BULK, BundleInfo
from kprov.rosters.tables import record_class
from kprov.rosters.text import TextOptions
from kprov.rosters.validate import FAST_ID, id_problems, name_problems

SPELLED = {
    "section.csv": "Section.csv",
    "student.csv": "Student.csv",
    "teacher.csv": "Teacher.csv",
    "studentenrollment.csv": "StudentEnrollment.csv",
    "teacherroster.csv": "TeacherRoster.csv",
}
READ = tuple(SPELLED)
KIND = "SDS v1"  # how messages name the format


def _people(
    bundle: Bundle, collector: Collector, options: TextOptions, member: str, role: str
) -> set[str] | None:
    """The SIS ids of Student.csv or Teacher.csv, as accounts (None if the file is unusable:
    its problem is reported). Nothing else is read."""
    opened = bundle.table(member, ("SIS ID",), options, KIND)
    if opened is None:
        return None
    table, (id_at,) = opened
    ids: set[str] = set()
    for line, cells in table.rows():
        sis_id = cells[id_at]
        ids.add(sis_id)
        collector.add(sis_id, role, table.name, line, None, account_only=True, column=id_at + 1)
    return ids


def _date(table: CsvTable, cells: list[str], at: int | None, line: int) -> date | None:
    if at is None or not cells[at].strip():
        return None
    try:
        return parse_date(cells[at], us_slashes=True)
    except DateError as exc:
        table.problem(line, str(exc), at + 1)
        return None


def _sections(bundle: Bundle, collector: Collector, options: TextOptions) -> dict[str, bool]:
    """Section SIS ID -> active; active sections become instances."""
    opened = bundle.table("section.csv", ("SIS ID", "Section Name"), options, KIND)
    if opened is None:
        return {}
    table, (id_at, name_at) = opened
    start_at, end_at, status_at = (
        table.column(c) for c in ("Term StartDate", "Term EndDate", "Status")
    )
    sections: dict[str, bool] = {}
    for line, cells in table.rows():
        key = cells[id_at]
        messages = [] if FAST_ID.match(key) else id_problems(key, check_pii=False)
        if messages:
            for message in messages:
                table.problem(line, message.replace("id", "section SIS ID", 1), id_at + 1)
            continue
        if key in sections:
            table.problem(line, f"section {key!r} appears twice; keep one row", id_at + 1)
            continue
        status = cells[status_at].strip().lower() if status_at is not None else ""
        sections[key] = status in ("", "active")
        if not sections[key]:
            collector.skip(table.name, line, key, f"section {cells[status_at or 0].strip()}")
            continue
        title = cells[name_at].strip()
        for message in name_problems(title, "the Section Name"):
            table.problem(line, message, name_at + 1)  # refused; its memberships still read
        start, end = _date(table, cells, start_at, line), _date(table, cells, end_at, line)
        order = check_order(start, end)
        if order:
            table.problem(line, order, (end_at or 0) + 1)
            continue
        info = ClassInfo(
            collector.class_key(key),
            title or key,
            Origin(table.name, line),
            start.isoformat() if start else "",
            end.isoformat() if end else "",
        )
        record_class(collector, table, line, id_at + 1, info)
    return sections


def _memberships(
    bundle: Bundle,
    collector: Collector,
    options: TextOptions,
    member: str,
    role: str,
    people: set[str] | None,
    sections: dict[str, bool],
    listed_in: str,
) -> set[str]:
    opened = bundle.table(member, ("Section SIS ID", "SIS ID"), options, KIND)
    if opened is None:
        return set()
    table, (section_at, id_at) = opened
    stated: set[str] = set()
    for line, cells in table.rows():
        key, sis_id = cells[section_at].strip(), cells[id_at]
        active = sections.get(key)
        if active is None:
            table.problem(
                line, f"Section SIS ID {key!r} is not in Section.csv; export again", section_at + 1
            )
            continue
        if not active:
            collector.skip(table.name, line, sis_id, f"section {key} is not active")
            continue
        if people is not None and sis_id not in people:
            table.problem(line, f"SIS ID {sis_id!r} is not in {listed_in}; export again", id_at + 1)
            continue
        stated.add(key)
        collector.add(sis_id, role, table.name, line, collector.class_key(key), column=id_at + 1)
    return stated


def read_sds_v1(bundle: Bundle, collector: Collector, options: TextOptions) -> BundleInfo:
    info = BundleInfo("SDS v1", modes={m.removesuffix(".csv"): BULK for m in READ})
    missing = [m for m in READ if not bundle.has(m)]
    if missing:
        names = ", ".join(SPELLED[m] for m in missing)
        bundle.problem(f"this SDS v1 bundle lacks {names}; export all six SDS files")
        return info
    students = _people(bundle, collector, options, "student.csv", LEARNER)
    teachers = _people(bundle, collector, options, "teacher.csv", INSTRUCTOR)
    sections = _sections(bundle, collector, options)
    _memberships(bundle, collector, options, "studentenrollment.csv", LEARNER, students,
                 sections, "Student.csv")  # fmt: skip
    _memberships(bundle, collector, options, "teacherroster.csv", INSTRUCTOR, teachers,
                 sections, "Teacher.csv")  # fmt: skip
    info.authoritative = {collector.class_key(k) for k, active in sections.items() if active}
    return info
