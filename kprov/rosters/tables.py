"""What the Clever, Apple School Manager and Canvas readers share: a member's table with the
columns a format requires, class keys checked and namespaced, classes recorded once.

Only the columns named here are ever read: the names, emails and passwords those exports
also hold never reach a message (a missing column is named, the header is never quoted: in a
file without one it would be a row of personal data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kprov.rosters.bundle import Bundle
from kprov.rosters.collect import Collector
from kprov.rosters.csv_table import CsvTable
from kprov.rosters.dates import DateError, check_order, parse_date
from kprov.rosters.model import INSTRUCTOR, LEARNER, ClassInfo, Origin
from kprov.rosters.text import TextOptions
from kprov.rosters.validate import FAST_ID, id_problems, name_problems, source_of


@dataclass
class Export:
    """One bundle being read: where it is, where its rows go, and how its text is read."""

    bundle: Bundle
    collector: Collector
    options: TextOptions
    kind: str  # "Clever", "Apple School Manager", "Canvas": how messages name the format
    escapechar: str | None = None

    def table(self, member: str, required: tuple[str, ...]) -> tuple[CsvTable, list[int]] | None:
        """The member's table and the indexes of *required* columns, or None (recorded)."""
        return self.bundle.table(member, required, self.options, self.kind, self.escapechar)

    def missing(self, members: tuple[str, ...], spelled: str) -> bool:
        """Whether a required member is absent (recorded, naming all of them)."""
        absent = [m for m in members if not self.bundle.has(m)]
        if absent:
            self.bundle.problem(
                f"this {self.kind} export lacks {', '.join(absent)}; export {spelled}"
            )
        return bool(absent)


def key_set(export: Export, member: str, column: str) -> set[str] | None:
    """The ids of a file others refer to (None if it is unusable: reported)."""
    opened = export.table(member, (column,))
    if opened is None:
        return None
    table, (id_at,) = opened
    seen: dict[str, int] = {}
    for line, cells in table.rows():
        key = cells[id_at].strip()
        if not good_key(table, key, line, id_at + 1, column):
            continue
        if key in seen:
            table.problem(
                line, f"{column} {key!r} appears twice: first at line {seen[key]}", id_at + 1
            )
        seen.setdefault(key, line)
    return set(seen)


Reference = tuple[str, "set[str] | None", str]  # (column, the ids it may name, their file)


def people_ids(
    export: Export, member: str, column: str, role: str, refs: tuple[Reference, ...] = ()
) -> set[str] | None:
    """The ids of a people file (students, teachers, staff), as accounts; nothing else is
    read but the *refs* columns, each checked against the ids it may name."""
    opened = export.table(member, (column,))
    if opened is None:
        return None
    table, (id_at,) = opened
    checks = [(table.column(name), known, name, listed) for name, known, listed in refs]
    ids: set[str] = set()
    collector = export.collector
    for line, cells in table.rows():
        ids.add(cells[id_at])
        if not resolves(table, cells, line, checks):
            continue
        collector.add(cells[id_at], role, table.name, line, None, account_only=True,
                      column=id_at + 1)  # fmt: skip
    return ids


def resolves(
    table: CsvTable,
    cells: list[str],
    line: int,
    checks: list[tuple[int | None, set[str] | None, str, str]],
) -> bool:
    """Whether every reference of a row names something its file holds (each one that does
    not is recorded); an empty cell names nothing."""
    good = True
    for at, known, name, listed in checks:
        if at is None or known is None:
            continue
        value = cells[at].strip()
        if value and value not in known:
            table.problem(line, f"{name} {value!r} is not in {listed}; export again", at + 1)
            good = False
    return good


def numbered_columns(table: CsvTable, first: str, pattern: str) -> list[int]:
    """The indexes of *first* and of every column matching *pattern* (``Teacher_2_id``...),
    in number order: a class's instructors."""
    shape = re.compile(pattern, re.IGNORECASE)
    numbered = sorted(
        (int(found.group(1)), index)
        for index, name in enumerate(table.header)
        if (found := shape.fullmatch(name))
    )
    at = table.column(first)
    return ([at] if at is not None else []) + [index for _n, index in numbered]


def good_key(table: CsvTable, key: str, line: int, column: int, what: str) -> bool:
    """Whether *key* can be a class key (recorded if not)."""
    messages = [] if FAST_ID.match(key) else id_problems(key, check_pii=False)
    for message in messages:
        table.problem(line, message.replace("id", what, 1), column)
    return not messages


def check_name(table: CsvTable, line: int, title: str, column: int | None) -> None:
    """Record a class name the API must not get: control characters (ESC, TAB, C1), bidi
    overrides, invisible characters, as the manifest's, OneRoster's and SDS's are refused;
    its rows are still read (their problems are reported too). *column*: 1-based, or None."""
    for message in name_problems(title, "the class name"):
        table.problem(line, message, column)


def record_class(
    collector: Collector, table: CsvTable, line: int, column: int, info: ClassInfo
) -> bool:
    """Add *info* (its key already namespaced) to the roster's classes, once: a key seen in
    another source names the fix for two sources whose ids collide."""
    earlier = collector.roster.classes.get(info.key)
    if earlier is None:
        collector.roster.classes[info.key] = info
        return True
    if source_of(earlier.origin.file) == source_of(table.name):
        advice = f"first at {earlier.origin}; keep one row"
    else:
        advice = (
            f"another source has it too ({earlier.origin}): if they are two classes, give each "
            "source its own `id_prefix:` in the manifest"
        )
    table.problem(line, f"class {info.key!r} appears twice; {advice}", column)
    return False


def add_instructors(
    collector: Collector,
    table: CsvTable,
    cells: list[str],
    line: int,
    key: str,
    columns: list[int],
    known: set[str] | None,
    listed_in: str,
) -> None:
    """Every teacher a class row names (up to four in Clever, several in ASM) becomes an
    instructor of *key*; the same one twice in a row is one. A teacher missing from *known*
    (the export's teachers/staff file; None: not given) is a problem at its cell, never an
    account made for a stranger."""
    listed: set[str] = set()
    for at in columns:
        person = cells[at].strip()
        if not person or person in listed:
            continue
        listed.add(person)
        if known is not None and person not in known:
            where = f"{table.header[at]} {person!r} is not in {listed_in}; export again"
            table.problem(line, where, at + 1)
            continue
        collector.add(person, INSTRUCTOR, table.name, line, key, column=at + 1)


def add_learners(
    export: Export,
    file: str,
    columns: tuple[str, str],
    classes: dict[str, bool],
    defined_in: str,
    students: set[str] | None,
    more_checks: tuple[tuple[str, set[str] | None, str], ...] = (),
) -> None:
    """Read an enrolment file (*columns*: the class column, the student column): each row
    makes its student a learner of a class the export defined (*classes*: key -> recorded,
    *defined_in*: "a class of classes.csv";
    a refused class's rows are skipped, it was said why). A row naming an unknown class or
    student, or failing *more_checks* (column, known ids, the file that lists them), is a
    problem at its cell: a dangling reference is a damaged export, never guessed at."""
    opened = export.table(file, columns)
    if opened is None:
        return
    table, (class_at, student_at) = opened
    class_column, student_column = table.header[class_at], table.header[student_at]
    checks = [(table.column(name), known, name, listed) for name, known, listed in more_checks]
    collector = export.collector
    for line, cells in table.rows():
        raw, student = cells[class_at].strip(), cells[student_at]
        made = classes.get(raw)
        if made is False:
            continue
        if made is None:
            where = f"{class_column} {raw!r} is not {defined_in}; export again"
            table.problem(line, where, class_at + 1)
            continue
        if students is not None and student not in students:
            where = f"{student_column} {student!r} is not in students.csv; export again"
            table.problem(line, where, student_at + 1)
            continue
        if not resolves(table, cells, line, checks):
            continue
        key = collector.class_key(raw)
        collector.add(student, LEARNER, table.name, line, key, column=student_at + 1)


def date_cell(
    table: CsvTable, cells: list[str], at: int | None, line: int, **how: bool
) -> tuple[bool, str]:
    """(readable, ISO date or "") of a date cell; an unreadable one is recorded."""
    if at is None or not cells[at].strip():
        return True, ""
    try:
        return True, parse_date(cells[at], **how).isoformat()
    except DateError as exc:
        table.problem(line, str(exc), at + 1)
        return False, ""


def dated_class(
    table: CsvTable,
    cells: list[str],
    line: int,
    key: str,
    title: str,
    dates: tuple[int | None, int | None],
    **how: bool,
) -> ClassInfo | None:
    """A class with its own start and end dates (None, recorded, when they cannot be used)."""
    start_ok, start = date_cell(table, cells, dates[0], line, **how)
    end_ok, end = date_cell(table, cells, dates[1], line, **how)
    if not (start_ok and end_ok):
        return None
    order = check_order(parse_date(start) if start else None, parse_date(end) if end else None)
    if order:
        table.problem(line, order, (dates[1] or 0) + 1)
        return None
    return ClassInfo(key, title.strip() or key, Origin(table.name, line), start, end)
