"""Canvas SIS import CSVs: users, courses, sections, enrollments, terms (a folder or a zip;
Instructure's "SIS Import Format Documentation", doc/api/sis_csv.md in canvas-lms).

Every active course becomes an instance keyed by its `course_id` and named by its
`long_name` (else `short_name`), dated by its own `start_date`/`end_date`, else its term's in
terms.csv. An enrollment names its course, or a section of sections.csv whose course is
taken; a student in several sections of one course is one learner of it. Roles: `student` is
a learner, `teacher` an instructor, `ta` an instructor only if asked (`ta_as_instructor`);
`observer`, `designer` and custom roles are skipped and reported. Only ids, roles and statuses
are read: users.csv's names, logins, emails and passwords never reach a message.

Canvas imports changes (its "full batch update" is an upload option, not part of the files),
so a bundle is read like a OneRoster delta: nothing it leaves out is removed. An enrollment
`deleted` in an active course is an explicit removal (only with `sync --prune`, under the
brake); `completed`, `inactive` and `deleted_last_completed` ones are not provisioned and
not removed either: the learner's analytics stay. Every reference to a file the bundle holds
must resolve; one to a file it does not hold (a course made by an earlier import) is left to
local state.
"""

from __future__ import annotations

from array import array
from typing import NamedTuple

from kprov.rosters.bundle import Bundle
from kprov.rosters.collect import Collector, repeated_digests
from kprov.rosters.csv_table import CsvTable
from kprov.rosters.dates import check_order, parse_date
from kprov.rosters.model import INSTRUCTOR, LEARNER, ClassInfo, Origin
from kprov.rosters.oneroster import ABSENT, BundleInfo
from kprov.rosters.tables import (
    Export,
    check_name,
    date_cell,
    good_key,
    key_set,
    record_class,
    resolves,
)
from kprov.rosters.text import Problems, TextOptions

ACTIVE = "active"
STATES = {
    "terms.csv": ("active", "deleted"),
    "courses.csv": ("active", "published", "deleted", "completed"),
    "sections.csv": ("active", "deleted"),
    "users.csv": ("active", "deleted", "suspended"),
    "enrollments.csv": ("active", "deleted", "completed", "inactive", "deleted_last_completed"),
}
KEPT_STATES = ("completed", "inactive", "deleted_last_completed")
ROLES = {"student": LEARNER, "teacher": INSTRUCTOR}
TA_FIX = "TAs become instructors with `ta_as_instructor: true` (register: --ta-as-instructor)"


class _Section(NamedTuple):
    course: str
    state: str


def read_canvas(
    bundle: Bundle, collector: Collector, options: TextOptions, *, ta_as_instructor: bool = False
) -> BundleInfo:
    info = BundleInfo("Canvas", complete=False)
    info.modes = {m.removesuffix(".csv"): "delta" if bundle.has(m) else ABSENT for m in STATES}
    export = Export(bundle, collector, options, "Canvas")
    if not bundle.has("enrollments.csv"):
        bundle.problem(
            "this Canvas bundle has no enrollments.csv: kprov provisions people through their "
            "enrollments (users.csv has no roles); export it with enrollments.csv"
        )
        return info
    terms = _terms(export) if bundle.has("terms.csv") else None
    accounts = key_set(export, "accounts.csv", "account_id") if bundle.has("accounts.csv") else None
    courses = _courses(export, terms, accounts) if bundle.has("courses.csv") else None
    sections = _sections(export, courses) if bundle.has("sections.csv") else None
    users = _users(export) if bundle.has("users.csv") else None
    _Enrollments(export, courses, sections, users, ta_as_instructor).read()
    return info


def _state(table: CsvTable, cells: list[str], at: int | None, line: int) -> str | None:
    """The row's status, lower case (active without a status column); None if unknown."""
    if at is None or not cells[at].strip():
        return ACTIVE
    value = cells[at].strip().lower()
    allowed = STATES[table.name.rpartition("!")[2].lower()]
    if value in allowed:
        return ACTIVE if value == "published" else value
    table.problem(line, f"status {cells[at].strip()!r} is not one of: {', '.join(allowed)}", at + 1)
    return None


def _keyed_rows(export: Export, member: str, column: str) -> tuple[CsvTable, int] | None:
    opened = export.table(member, (column,))
    return None if opened is None else (opened[0], opened[1][0])


def _terms(export: Export) -> dict[str, tuple[str, str]] | None:
    """term_id -> (start, end) as ISO dates ("" when not given)."""
    opened = _keyed_rows(export, "terms.csv", "term_id")
    if opened is None:
        return None
    table, id_at = opened
    start_at, end_at, status_at = (table.column(c) for c in ("start_date", "end_date", "status"))
    terms: dict[str, tuple[str, str]] = {}
    for line, cells in table.rows():
        key = cells[id_at].strip()
        if not good_key(table, key, line, id_at + 1, "term_id") or key in terms:
            if key in terms:
                table.problem(line, f"term_id {key!r} appears twice; keep one row", id_at + 1)
            continue
        _state(table, cells, status_at, line)
        start_ok, start = date_cell(table, cells, start_at, line, loose=True)
        end_ok, end = date_cell(table, cells, end_at, line, loose=True)
        terms[key] = (start, end) if start_ok and end_ok else ("", "")
    return terms


def _courses(
    export: Export, terms: dict[str, tuple[str, str]] | None, accounts: set[str] | None
) -> dict[str, str] | None:
    """course_id (raw) -> state; active courses become instances."""
    opened = _keyed_rows(export, "courses.csv", "course_id")
    if opened is None:
        return None
    table, id_at = opened
    long_at, short_at, term_at, status_at, start_at, end_at = (
        table.column(c)
        for c in ("long_name", "short_name", "term_id", "status", "start_date", "end_date")
    )
    collector = export.collector
    checks = [(table.column("account_id"), accounts, "account_id", "accounts.csv")]
    courses: dict[str, str] = {}
    for line, cells in table.rows():
        raw = cells[id_at].strip()
        if not good_key(table, raw, line, id_at + 1, "course_id"):
            continue
        found = resolves(table, cells, line, checks)
        state = _state(table, cells, status_at, line)
        term = cells[term_at].strip() if term_at is not None else ""
        if term and terms is not None and term not in terms:
            column = (term_at or 0) + 1
            table.problem(line, f"term_id {term!r} is not in terms.csv; export again", column)
            found = False
        if state is None or not found:
            courses.setdefault(raw, "that kprov cannot read")  # reported; no cascade
            continue
        if raw in courses:
            table.problem(line, f"course_id {raw!r} appears twice; keep one row", id_at + 1)
            continue
        courses[raw] = state
        if state != ACTIVE:
            collector.skip(table.name, line, raw, f"course {state}: no instance")
            continue
        start_ok, start = date_cell(table, cells, start_at, line, loose=True)
        end_ok, end = date_cell(table, cells, end_at, line, loose=True)
        term_start, term_end = (terms or {}).get(term, ("", ""))
        start, end = start or term_start, end or term_end
        order = check_order(*(parse_date(d) if d else None for d in (start, end)))
        if not (start_ok and end_ok) or order:
            if order:
                table.problem(line, f"{order} (its own dates, else its term's)", (end_at or 0) + 1)
            continue
        named = [(at, cells[at].strip()) for at in (long_at, short_at) if at is not None]
        title_at, title = next(((at, name) for at, name in named if name), (None, raw))
        info = ClassInfo(collector.class_key(raw), title, Origin(table.name, line), start, end)
        check_name(table, line, title, title_at + 1 if title_at is not None else None)
        record_class(collector, table, line, id_at + 1, info)
    return courses


def _sections(export: Export, courses: dict[str, str] | None) -> dict[str, _Section] | None:
    """section_id -> its course (raw) and state."""
    opened = export.table("sections.csv", ("section_id", "course_id"))
    if opened is None:
        return None
    table, (id_at, course_at) = opened
    status_at = table.column("status")
    sections: dict[str, _Section] = {}
    for line, cells in table.rows():
        key, course = cells[id_at].strip(), cells[course_at].strip()
        if not good_key(table, key, line, id_at + 1, "section_id"):
            continue
        if key in sections:
            table.problem(line, f"section_id {key!r} appears twice; keep one row", id_at + 1)
            continue
        state = _state(table, cells, status_at, line) or "with a status kprov cannot read"
        if not good_key(table, course, line, course_at + 1, "course_id"):
            continue
        if courses is not None and course not in courses:
            table.problem(
                line, f"course_id {course!r} is not in courses.csv; export again", course_at + 1
            )
        sections[key] = _Section(course, state)
    return sections


def _users(export: Export) -> dict[str, str] | None:
    """user_id -> state; nothing else of users.csv is read."""
    opened = _keyed_rows(export, "users.csv", "user_id")
    if opened is None:
        return None
    table, id_at = opened
    status_at = table.column("status")
    users: dict[str, str] = {}
    first: dict[str, int] = {}
    for line, cells in table.rows():
        user = cells[id_at]
        if user in first:
            table.problem(
                line, f"user_id {user!r} appears twice: first at line {first[user]}; keep one row",
                id_at + 1,
            )  # fmt: skip
            continue
        first[user] = line
        users[user] = _state(table, cells, status_at, line) or "with a status kprov cannot read"
    return users


class _Enrollments:
    """enrollments.csv: each active row of a provisioned role a registration, once per person
    and course; `deleted` rows in active courses removals, unless the person stays."""

    def __init__(
        self,
        export: Export,
        courses: dict[str, str] | None,
        sections: dict[str, _Section] | None,
        users: dict[str, str] | None,
        ta_as_instructor: bool,
    ) -> None:
        self.export = export
        self.collector = export.collector
        self.courses, self.sections, self.users = courses, sections, users
        self.roles = dict(ROLES, ta=INSTRUCTOR) if ta_as_instructor else ROLES
        # A person in two sections of a course is one line. A first pass finds the (user,
        # course) pairs whose 8-byte digest repeats; only those are then kept, exactly, as
        # (user, course) -> line (negative for an instructor), with each id kept once.
        self.repeated: set[int] = set()
        self.seen: dict[tuple[str, str], int] = {}
        self.same: dict[str, str] = {}
        self.removals: list[tuple[str, str, int, str]] = []
        self.kept: set[tuple[str, str]] = set()  # repeated pairs a completed/inactive row keeps

    def read(self) -> None:
        opened = _keyed_rows(self.export, "enrollments.csv", "user_id")
        if opened is None:
            return
        table, user_at = opened
        columns = ("course_id", "section_id", "role", "role_id", "status")
        self.at = dict(zip(columns, (table.column(c) for c in columns), strict=True))
        if self.at["role"] is None and self.at["role_id"] is None:
            table.problem(table.offset + 1, "missing column role required by Canvas; export again")
            return
        self.repeated = self.repeated_pairs(user_at)
        for line, cells in table.rows():
            self.row(table, line, cells, user_at)
        class_key = self.collector.class_key
        for user, role, line, course in self.removals:
            if (user, course) not in self.seen and (user, course) not in self.kept:
                # not still enrolled, nor completed/inactive, in another section: removed
                self.collector.removal(user, role, table.name, line, class_key(course))

    def repeated_pairs(self, user_at: int) -> set[int]:
        """The digests of the (user, course) pairs more than one row names (a first pass,
        quiet: the second reports what is wrong)."""
        stream = self.export.bundle.open("enrollments.csv")
        if stream is None:
            return set()
        table = CsvTable("", stream, Problems(), self.export.options)
        if not table.open():
            return set()
        course_at, section_at = self.at["course_id"], self.at["section_id"]
        sections = self.sections or {}
        buckets = [array("q") for _ in range(256)]
        for _line, cells in table.rows():
            course = cells[course_at].strip() if course_at is not None else ""
            if section_at is not None and cells[section_at].strip() in sections:
                course = sections[cells[section_at].strip()].course
            digest = hash((cells[user_at], course))
            buckets[digest & 0xFF].append(digest)
        return repeated_digests(buckets)

    def course_of(self, table: CsvTable, line: int, cells: list[str]) -> tuple[str, str] | None:
        """(course, section state) of a row; None when it does not resolve (recorded)."""
        at = self.at
        course = cells[at["course_id"]].strip() if at["course_id"] is not None else ""
        section = cells[at["section_id"]].strip() if at["section_id"] is not None else ""
        section_state = ACTIVE
        if section and self.sections is not None:
            found = self.sections.get(section)
            column = (at["section_id"] or 0) + 1
            if found is None:
                table.problem(line, f"section_id {section!r} is not in sections.csv", column)
                return None
            if course and course != found.course:
                table.problem(
                    line,
                    f"section {section!r} is in course {found.course!r} (sections.csv), not "
                    f"{course!r}; export again",
                    column,
                )
                return None
            course, section_state = found.course, found.state
        if not course:
            table.problem(
                line,
                "no course_id, and no section_id that sections.csv places in a course: "
                "kprov cannot tell the class",
            )
            return None
        if self.courses is not None and course not in self.courses:
            table.problem(
                line, f"course_id {course!r} is not in courses.csv; export again",
                (at["course_id"] or 0) + 1,
            )  # fmt: skip
            return None
        return course, section_state

    def row(self, table: CsvTable, line: int, cells: list[str], user_at: int) -> None:
        user = cells[user_at]
        if not user.strip():
            table.problem(line, "user_id is empty (user_integration_id is not read)", user_at + 1)
            return
        if self.users is not None and user not in self.users:
            table.problem(line, f"user_id {user!r} is not in users.csv; export again", user_at + 1)
            return
        found = self.course_of(table, line, cells)
        state = _state(table, cells, self.at["status"], line)
        role = self.role(table, line, cells, user)
        if found is None or state is None or role == "":
            return
        course, section_state = found
        skip = self.collector.skip
        if role is None:
            return  # skipped, with the role's reason
        course_state = (self.courses or {}).get(course, ACTIVE)
        if course_state != ACTIVE:
            skip(table.name, line, user, f"course {course} {course_state}")
        elif state == "deleted":
            self.removals.append((user, role, line, course))
        elif state in KEPT_STATES:
            skip(table.name, line, user, f"enrollment {state}: not provisioned, not removed")
            if hash((user, course)) in self.repeated:  # a deleted row elsewhere must not remove
                self.kept.add((user, course))
        elif section_state != ACTIVE:
            skip(table.name, line, user, f"section {section_state}")
        elif (self.users or {}).get(user, ACTIVE) != ACTIVE:
            skip(table.name, line, user, f"user {(self.users or {})[user]}")
        else:
            self.register(table, line, user, role, course)

    def role(self, table: CsvTable, line: int, cells: list[str], user: str) -> str | None:
        """learner or instructor; None for a role kprov leaves alone (skipped, said so); ""
        for a row without a role (recorded)."""
        role_at, role_id_at = self.at["role"], self.at["role_id"]
        word = cells[role_at].strip() if role_at is not None else ""
        if not word:
            role_id = cells[role_id_at].strip() if role_id_at is not None else ""
            if not role_id:
                table.problem(line, "the role is empty; give role (or role_id)", (role_at or 0) + 1)
                return ""
            self.collector.skip(table.name, line, user, f"role_id {role_id}: not provisioned")
            return None
        found = self.roles.get(word.lower())
        if found is None:
            why = f"role {word} is not provisioned"
            if word.lower() == "ta":
                why += f": {TA_FIX}"
            elif word.lower() not in ("observer", "designer"):
                why = f"custom role {word!r} is not provisioned (student and teacher are)"
            self.collector.skip(table.name, line, user, why)
        return found

    def register(self, table: CsvTable, line: int, user: str, role: str, course: str) -> None:
        if hash((user, course)) not in self.repeated:  # its only row: nothing to compare
            key = self.collector.class_key(course)
            self.collector.add(user, role, table.name, line, key, column=None)
            return
        same = self.same
        pair = (same.setdefault(user, user), same.setdefault(course, course))
        earlier = self.seen.get(pair)
        if earlier is None:
            self.seen[pair] = -line if role == INSTRUCTOR else line
            key = self.collector.class_key(course)
            self.collector.add(user, role, table.name, line, key, column=None)
        elif (earlier < 0) != (role == INSTRUCTOR):
            other = INSTRUCTOR if earlier < 0 else LEARNER
            table.problem(
                line,
                f"user {user!r} is enrolled as {role} here but as {other} at line "
                f"{abs(earlier)} in course {course!r}: one person has one role in a class; "
                "keep one of them",
            )
