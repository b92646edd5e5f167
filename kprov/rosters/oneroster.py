"""OneRoster 1.1 CSV bundles (a directory or a .zip): users, classes and enrollments.

``sourcedId`` is the SIS id. Roles: teacher -> instructor, student -> learner; other roles
(administrator, aide, guardian, ...) are not provisioned. Rows with status ``tobedeleted`` are
skipped. Zip members are read in place, never extracted, and a bundle naming a path outside
itself is refused.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path, PurePosixPath
from typing import IO

from kprov.rosters.csv_reader import CsvRecords
from kprov.rosters.model import (
    INSTRUCTOR,
    LEARNER,
    ClassInfo,
    Origin,
    Person,
    Problem,
    Roster,
    Skipped,
)

ROLE_MAP = {"teacher": INSTRUCTOR, "student": LEARNER}
NOT_PROVISIONED = {"administrator", "aide", "guardian", "parent", "relative", "proctor"}
MAX_MEMBER_BYTES = 512 * 1024 * 1024


def is_oneroster_bundle(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() == ".zip"


def _unsafe_member(name: str) -> bool:
    pure = PurePosixPath(name.replace("\\", "/"))
    return pure.is_absolute() or ".." in pure.parts or (len(name) > 1 and name[1] == ":")


def _opener(
    path: Path, stack: ExitStack, problems: list[Problem]
) -> Callable[[str], IO[bytes] | None] | None:
    """A function opening a member of the bundle by name, or None if the bundle is unusable."""
    name = str(path)
    if path.is_dir():

        def open_file(member: str) -> IO[bytes] | None:
            target = path / member
            return stack.enter_context(target.open("rb")) if target.is_file() else None

        return open_file
    try:
        archive = stack.enter_context(zipfile.ZipFile(path))
    except (OSError, zipfile.BadZipFile) as exc:
        problems.append(Problem(name, None, f"not a readable zip file ({exc})"))
        return None
    unsafe = [i.filename for i in archive.infolist() if _unsafe_member(i.filename)]
    if unsafe:
        problems.append(
            Problem(
                name,
                None,
                f"refusing a bundle with paths outside itself: {unsafe[:3]}; "
                "export the bundle again",
            )
        )
        return None
    members = {
        PurePosixPath(i.filename).name.lower(): i for i in archive.infolist() if not i.is_dir()
    }

    def open_member(member: str) -> IO[bytes] | None:
        info = members.get(member.lower())
        if info is None:
            return None
        if info.file_size > MAX_MEMBER_BYTES:
            problems.append(Problem(f"{name}!{member}", None, "member is larger than 512 MiB"))
            return None
        return stack.enter_context(archive.open(info))  # ZipExtFile: readline(limit) streams

    return open_member


def _records(
    label: str, stream: IO[bytes], problems: list[Problem], required: tuple[str, ...]
) -> list[tuple[int, dict[str, str]]] | None:
    records = CsvRecords(label, stream, problems)
    rows = list(records.rows())
    missing = [c for c in required if records.header and records.column(c) is None]
    if missing:
        problems.append(
            Problem(label, 1, f"missing column(s) {', '.join(missing)} required by OneRoster 1.1")
        )
        return None
    # normalise column names to the spec's spelling
    spelled = {records.column(c): c for c in required}
    return [(line, {spelled.get(k, k): v for k, v in row.items()}) for line, row in rows]


def read_oneroster(path: Path, problems: list[Problem], roster: Roster) -> None:
    """Users (and, when present, enrollments and class titles) of a OneRoster bundle."""
    name = str(path)
    with ExitStack() as stack:
        open_member = _opener(path, stack, problems)
        if open_member is None:
            return
        users_file = open_member("users.csv")
        if users_file is None:
            problems.append(Problem(name, None, "no users.csv in this OneRoster bundle"))
            return
        users = _records(f"{name}!users.csv", users_file, problems, ("sourcedId", "role"))
        if users is None:
            return
        roles: dict[str, str] = {}
        first_line: dict[str, int] = {}
        for line, row in users:
            origin = Origin(f"{name}!users.csv", line)
            if row.get("status", "").strip().lower() == "tobedeleted":
                roster.skipped_rows.append(Skipped(origin, row["sourcedId"], "tobedeleted"))
                continue
            sourced_id = row["sourcedId"]
            raw_role = row["role"].strip().lower()
            if raw_role in NOT_PROVISIONED:
                roster.skipped_rows.append(Skipped(origin, sourced_id, f"role {raw_role}"))
                continue
            if raw_role not in ROLE_MAP:
                problems.append(
                    Problem(
                        f"{name}!users.csv",
                        line,
                        f"role {row['role']!r} is not a OneRoster 1.1 role (teacher, student, ...)",
                    )
                )
                continue
            roles[sourced_id] = ROLE_MAP[raw_role]
            first_line.setdefault(sourced_id, line)
            roster.people.append(
                Person(
                    sourced_id,
                    ROLE_MAP[raw_role],
                    Origin(f"{name}!users.csv", line),
                    account_only=True,
                )
            )

        classes_file = open_member("classes.csv")
        if classes_file is not None:
            classes = _records(
                f"{name}!classes.csv", classes_file, problems, ("sourcedId", "title")
            )
            for line, row in classes or []:
                if row.get("status", "").strip().lower() != "tobedeleted":
                    key = row["sourcedId"].strip()
                    roster.classes[key] = ClassInfo(
                        key, row["title"].strip(), Origin(f"{name}!classes.csv", line)
                    )

        enrollments_file = open_member("enrollments.csv")
        if enrollments_file is None:
            return
        label = f"{name}!enrollments.csv"
        enrollments = _records(
            label, enrollments_file, problems, ("classSourcedId", "userSourcedId", "role")
        )
        for line, row in enrollments or []:
            origin = Origin(label, line)
            if row.get("status", "").strip().lower() == "tobedeleted":
                roster.skipped_rows.append(Skipped(origin, row["userSourcedId"], "tobedeleted"))
                continue
            raw_role = row["role"].strip().lower()
            if raw_role in NOT_PROVISIONED:
                roster.skipped_rows.append(Skipped(origin, row["userSourcedId"], raw_role))
                continue
            if raw_role not in ROLE_MAP:
                problems.append(
                    Problem(label, line, f"role {row['role']!r} is not a OneRoster 1.1 role")
                )
                continue
            user = row["userSourcedId"]
            if user not in roles:
                problems.append(
                    Problem(
                        label,
                        line,
                        f"userSourcedId {user!r} is not an active "
                        "user in users.csv; export the bundle again",
                    )
                )
                continue
            roster.people.append(
                Person(
                    user,
                    ROLE_MAP[raw_role],
                    Origin(label, line),
                    instance_key=row["classSourcedId"].strip() or None,
                )
            )
