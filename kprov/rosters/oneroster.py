"""OneRoster 1.1 and 1.2 CSV bundles, and Microsoft SDS v2.1 (OneRoster-shaped).

`manifest.csv` says what each file is: `bulk` (the whole truth for its kind), `delta` (only
changes) or `absent` (unknown). A delta never implies a removal: only its `tobedeleted`
enrollments are removals. `tobedeleted` classes, users and enrollments are never created or
registered; `enabledUser=false` users are skipped and reported. The registration type comes
from the enrollment's role. OneRoster 1.2 (and SDS v2.1) give users' roles in `roles.csv`;
`userProfiles.csv` and every other file are not read. A bundle without `manifest.csv` (SDS
v2.1, older exports) is read as bulk for the files it holds.

Instances are keyed by the class `sourcedId` and named by its `title`; their dates come from
the class's terms in `academicSessions.csv`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kprov.rosters.bundle import Bundle
from kprov.rosters.collect import Collector
from kprov.rosters.csv_table import CsvTable
from kprov.rosters.dates import Term, term_span
from kprov.rosters.model import INSTRUCTOR, LEARNER, ClassInfo, Origin, Problem
from kprov.rosters.roles import RoleError, role_of
from kprov.rosters.tables import record_class
from kprov.rosters.text import TextOptions
from kprov.rosters.validate import FAST_ID, id_problems, name_problems

BULK, DELTA, ABSENT = "bulk", "delta", "absent"
READ = ("users", "classes", "enrollments", "roles", "academicsessions")
ACTIVE, DELETED, INACTIVE = "active", "tobedeleted", "inactive"
_TRUE = {"", "true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


@dataclass
class BundleInfo:
    """What one bundle states, for the manifest: which classes' membership it states whole."""

    kind: str
    modes: dict[str, str] = field(default_factory=dict)
    authoritative: set[str] = field(default_factory=set)
    complete: bool = True


@dataclass
class _Reader:
    bundle: Bundle
    collector: Collector
    options: TextOptions
    info: BundleInfo
    # Active users with no role kprov provisions, by id: (file, line, why). Skipped only if
    # no enrollment gives them one (an enrolled user gets an account from it).
    roleless: dict[str, tuple[str, int, str]] = field(default_factory=dict)

    @property
    def problems(self) -> list[Problem]:
        return self.collector.problems

    def table(self, member: str, required: tuple[str, ...]) -> tuple[CsvTable, list[int]] | None:
        """The member's table and the indexes of *required* columns, or None (recorded)."""
        return self.bundle.table(member, required, self.options, self.info.kind)

    def status(self, table: CsvTable, cells: list[str], at: int | None, line: int) -> str | None:
        """active, tobedeleted or inactive; None (recorded) for anything else."""
        if at is None:
            return ACTIVE
        value = cells[at].strip().lower()
        if value in ("", ACTIVE):
            return ACTIVE
        if value in (DELETED, INACTIVE):
            return value
        table.problem(
            line,
            f"status {cells[at]!r} is not active or tobedeleted; fix it in the SIS and export "
            "again",
            at + 1,
        )
        return None


def read_manifest_csv(reader: _Reader) -> dict[str, str] | None:
    """file.X -> bulk/delta/absent for the files kprov reads; None if unusable (recorded)."""
    bundle = reader.bundle
    opened = reader.table("manifest.csv", ("propertyName", "value"))
    if opened is None:
        return None
    table, (name_at, value_at) = opened
    declared: dict[str, str] = {}
    for line, cells in table.rows():
        prop = cells[name_at].strip().lower()
        if prop == "oneroster.version":
            reader.info.kind = f"OneRoster {cells[value_at].strip()}"
        if not prop.startswith("file."):
            continue
        value = cells[value_at].strip().lower() or ABSENT
        if value not in (BULK, DELTA, ABSENT):
            table.problem(
                line, f"{cells[name_at]} is {cells[value_at]!r}: expected bulk, delta or absent"
            )
            continue
        declared[prop.removeprefix("file.")] = value
    modes: dict[str, str] = {}
    for kind in READ:
        present = bundle.has(f"{kind}.csv")
        mode = declared.get(kind)
        if mode is None:
            if present:
                bundle.problem(
                    f"manifest.csv does not say whether {kind}.csv is bulk or delta; add "
                    f"`file.{kind},bulk` (or delta) to it"
                )
            mode = ABSENT
        elif mode != ABSENT and not present:
            bundle.problem(
                f"manifest.csv declares file.{kind} as {mode}, but the bundle has no "
                f"{kind}.csv; export the bundle again"
            )
            mode = ABSENT
        modes[kind] = mode
    return modes


def read_oneroster(bundle: Bundle, collector: Collector, options: TextOptions) -> BundleInfo:
    """Users, classes and enrollments of a OneRoster (or SDS v2.1) bundle, into *collector*."""
    kind = bundle.kind() or "oneroster"
    info = BundleInfo("SDS v2.1" if kind == "sds-v2.1" else "OneRoster")
    reader = _Reader(bundle, collector, options, info)
    if bundle.has("manifest.csv"):
        modes = read_manifest_csv(reader)
        if modes is None:
            return info
    else:
        modes = {k: BULK if bundle.has(f"{k}.csv") else ABSENT for k in READ}
    info.modes = modes
    info.complete = all(modes[k] == BULK for k in ("users", "classes", "enrollments"))
    if modes["users"] == ABSENT and modes["enrollments"] == ABSENT:
        bundle.problem(f"no users.csv or enrollments.csv in this {info.kind} bundle")
        return info
    user_roles = _read_roles(reader) if modes["roles"] != ABSENT else {}
    users = _read_users(reader, user_roles) if modes["users"] != ABSENT else {}
    check_users = modes["users"] == BULK and users is not None  # unusable: reported already
    sessions = _read_sessions(reader) if modes["academicsessions"] != ABSENT else {}
    check_terms = modes["academicsessions"] == BULK and modes["classes"] == BULK
    classes = _read_classes(reader, sessions, check_terms) if modes["classes"] != ABSENT else {}
    check_classes = modes["classes"] == BULK and classes is not None
    if modes["enrollments"] != ABSENT:
        _read_enrollments(
            reader, users or {}, classes or {}, check_users=check_users, check_classes=check_classes
        )
    for user, (file, line, why) in reader.roleless.items():
        reader.collector.skip(file, line, user, why)
    return info


def _read_roles(reader: _Reader) -> dict[str, set[str | None]]:
    """1.2 / SDS v2.1 roles.csv: user -> the kprov roles of their roles (None: not provisioned)."""
    opened = reader.table("roles.csv", ("userSourcedId", "role"))
    if opened is None:
        return {}
    table, (user_at, role_at) = opened
    status_at = table.column("status")
    roles: dict[str, set[str | None]] = {}
    for line, cells in table.rows():
        if reader.status(table, cells, status_at, line) != ACTIVE:
            continue
        try:
            role = role_of(cells[role_at])
        except RoleError as exc:
            table.problem(line, str(exc), role_at + 1)
            continue
        roles.setdefault(cells[user_at], set()).add(role)
    return roles


def _read_users(reader: _Reader, user_roles: dict[str, set[str | None]]) -> dict[str, str] | None:
    """sourcedId -> state (active, or why not). Active users with a provisioned role become
    accounts; only the sourcedId, status, enabledUser and role columns are ever read."""
    opened = reader.table("users.csv", ("sourcedId",))
    if opened is None:
        return None
    table, (id_at,) = opened
    status_at, enabled_at, role_at = (table.column(c) for c in ("status", "enabledUser", "role"))
    modes = reader.info.modes
    if role_at is None and modes["roles"] == ABSENT and modes["enrollments"] == ABSENT:
        table.problem(
            table.offset + 1,
            "users.csv has no role column, and the bundle has no roles.csv or enrollments.csv: "
            "kprov cannot tell learners from instructors; export the bundle with roles "
            "(OneRoster 1.1: a role column; 1.2: roles.csv)",
        )
        return None
    users: dict[str, str] = {}
    first_line: dict[str, int] = {}
    collector = reader.collector
    for line, cells in table.rows():
        user = cells[id_at]
        state = reader.status(table, cells, status_at, line)
        if state is None:
            users.setdefault(user, "with a status kprov cannot read")  # reported; no cascade
            continue
        if user in first_line:
            table.problem(
                line,
                f"user {user!r} appears twice: first at {table.name}:{first_line[user]}; keep "
                "one row",
                id_at + 1,
            )
            continue
        first_line[user] = line
        if state == ACTIVE and enabled_at is not None:
            enabled = cells[enabled_at].strip().lower()
            if enabled in _FALSE:
                state = "enabledUser=false"
            elif enabled not in _TRUE:
                table.problem(
                    line,
                    f"enabledUser {cells[enabled_at]!r} is not true or false; fix it in the SIS "
                    "and export again",
                    enabled_at + 1,
                )
                continue
        users[user] = state
        if state != ACTIVE:
            collector.skip(table.name, line, user, f"user {state}")
            continue
        words: set[str | None] = set(user_roles.get(user, ()))
        if role_at is not None and cells[role_at].strip():
            try:
                words.add(role_of(cells[role_at]))
            except RoleError as exc:
                table.problem(line, str(exc), role_at + 1)
                continue
        role = INSTRUCTOR if INSTRUCTOR in words else LEARNER if LEARNER in words else None
        if role is None:
            reason = (
                "only roles kprov does not provision" if words
                else "no role in roles.csv" if modes["roles"] != ABSENT
                else "no role"
            )  # fmt: skip
            reader.roleless[user] = (table.name, line, f"{reason}, and no enrollment: no account")
            continue
        collector.add(user, role, table.name, line, None, account_only=True, column=id_at + 1)
    return users


def _read_sessions(reader: _Reader) -> dict[str, Term]:
    opened = reader.table("academicSessions.csv", ("sourcedId", "startDate", "endDate"))
    if opened is None:
        return {}
    table, (id_at, start_at, end_at) = opened
    return {
        cells[id_at].strip(): Term(
            Origin(table.name, line), cells[start_at], cells[end_at], (start_at + 1, end_at + 1)
        )
        for line, cells in table.rows()
    }


def _read_classes(
    reader: _Reader, sessions: dict[str, Term], check_terms: bool
) -> dict[str, str] | None:
    """sourcedId -> state (None if the file is unusable: reported); active classes become
    instances (roster.classes)."""
    opened = reader.table("classes.csv", ("sourcedId", "title"))
    if opened is None:
        return None
    table, (id_at, title_at) = opened
    status_at = table.column("status")
    terms_at = table.column("termSourcedIds")
    if terms_at is None:
        terms_at = table.column("sessionSourcedIds")  # SDS v2.1
    classes: dict[str, str] = {}
    for line, cells in table.rows():
        key = cells[id_at]
        messages = [] if FAST_ID.match(key) else id_problems(key, check_pii=False)
        if messages:
            for message in messages:
                table.problem(line, message.replace("id", "class sourcedId", 1), id_at + 1)
            continue
        state = reader.status(table, cells, status_at, line)
        if state is None:
            continue
        if key in classes:
            table.problem(line, f"class {key!r} appears twice; keep one row", id_at + 1)
            continue
        classes[key] = state
        if state != ACTIVE:
            reader.collector.skip(table.name, line, key, f"class {state}: no instance")
            continue
        title = cells[title_at].strip()
        for message in name_problems(title, "the class title"):
            table.problem(line, message, title_at + 1)  # refused; its enrolments still read
        terms = cells[terms_at] if terms_at is not None else ""
        if (
            check_terms
            and terms_at is not None
            and not _terms_resolve(table, terms, sessions, line, terms_at + 1)
        ):
            continue
        start, end = term_span(sessions, terms, reader.problems)
        info = ClassInfo(
            reader.collector.class_key(key),
            title or key,
            Origin(table.name, line),
            start.isoformat() if start else "",
            end.isoformat() if end else "",
        )
        record_class(reader.collector, table, line, id_at + 1, info)
    return classes


def _terms_resolve(
    table: CsvTable, terms: str, sessions: dict[str, Term], line: int, column: int
) -> bool:
    """Whether every term a class names is in a bulk academicSessions.csv (recorded if not):
    a class dated by a term that does not exist would silently get no dates."""
    unknown = [t for t in (i.strip() for i in terms.split(",")) if t and t not in sessions]
    for term in unknown:
        table.problem(
            line,
            f"term {term!r} is not in academicSessions.csv; export the bundle again",
            column,
        )
    return not unknown


def _read_enrollments(
    reader: _Reader,
    users: dict[str, str],
    classes: dict[str, str],
    *,
    check_users: bool,
    check_classes: bool,
) -> None:
    opened = reader.table("enrollments.csv", ("classSourcedId", "userSourcedId", "role"))
    if opened is None:
        return
    table, (class_at, user_at, role_at) = opened
    status_at = table.column("status")
    modes = reader.info.modes
    delta = modes["enrollments"] == DELTA
    collector = reader.collector
    name = table.name
    stated: set[str] = set()
    for line, cells in table.rows():
        user, key = cells[user_at], cells[class_at].strip()
        state = reader.status(table, cells, status_at, line)
        if state is None:
            continue
        try:
            role = role_of(cells[role_at])
        except RoleError as exc:
            table.problem(line, str(exc), role_at + 1)
            continue
        if state == DELETED and delta:
            if role is not None:
                collector.removal(user, role, name, line, collector.class_key(key))
            continue
        if state != ACTIVE:
            collector.skip(name, line, user, f"enrollment {state}")
            continue
        if role is None:
            collector.skip(name, line, user, f"role {cells[role_at].strip()} is not provisioned")
            continue
        class_state = classes.get(key)
        if class_state is None and check_classes:
            table.problem(
                line,
                f"classSourcedId {key!r} is not in classes.csv; export the bundle again",
                class_at + 1,
            )
            continue
        if class_state not in (None, ACTIVE):
            collector.skip(name, line, user, f"class {key} {class_state}")
            continue
        user_state = users.get(user)
        if user_state is None and check_users:
            table.problem(
                line,
                f"userSourcedId {user!r} is not an active user in users.csv; export the bundle "
                "again",
                user_at + 1,
            )
            continue
        if user_state not in (None, ACTIVE):
            collector.skip(name, line, user, f"user {user_state}")
            continue
        stated.add(collector.class_key(key))
        collector.add(user, role, name, line, collector.class_key(key), column=user_at + 1)
        if reader.roleless:
            reader.roleless.pop(user, None)  # their enrollment makes their account
    if modes["enrollments"] == BULK:
        active = {collector.class_key(k) for k, s in classes.items() if s == ACTIVE}
        reader.info.authoritative = stated | active
