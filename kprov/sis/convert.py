"""REST records as OneRoster CSV rows: the JSON binding's shapes, written as the CSV binding's.

What the bundle reader reads (sourcedId, status, enabledUser, roles, the class/user/school
references, titles, terms and their dates) must have the shape the bindings give it, or the
record is refused by name; every other field is carried along when it is a plain value and
left empty when it is not ("unknown fields are ignored"). A 1.1 user's ``role`` becomes the
``role`` column; a 1.2 user's ``roles`` array becomes ``roles.csv`` rows, exactly as a 1.2
CSV export holds them. ``enabledUser`` and ``primary`` may be JSON booleans or the strings
"true"/"false" (both are seen). References may be GUIDRef objects or bare sourcedId strings.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import Any

from kprov.rosters.api_source import V12

BREAKS = re.compile(r"\r\n|\r|\n")
COMMON = ["sourcedId", "status", "dateLastModified"]
COLUMNS: dict[str, list[str]] = {
    "orgs": [*COMMON, "name", "type", "identifier", "parentSourcedId"],
    "academicSessions": [*COMMON, "title", "type", "startDate", "endDate", "parentSourcedId",
                         "schoolYear"],
    "classes": [*COMMON, "title", "grades", "courseSourcedId", "classCode", "classType",
                "location", "schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes",
                "periods"],
    "users": [*COMMON, "enabledUser", "orgSourcedIds", "role", "username", "userIds",
              "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone",
              "agentSourcedIds", "grades", "password"],
    "users-1.2": [*COMMON, "enabledUser", "username", "userIds", "givenName", "familyName",
                  "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds",
                  "grades", "password", "userMasterIdentifier", "resourceSourcedIds",
                  "preferredGivenName", "preferredMiddleName", "preferredFamilyName",
                  "primaryOrgSourcedId", "pronouns"],
    "roles": [*COMMON, "userSourcedId", "roleType", "role", "beginDate", "endDate",
              "orgSourcedId", "userProfileSourcedId"],
    "enrollments": [*COMMON, "classSourcedId", "schoolSourcedId", "userSourcedId", "role",
                    "primary", "beginDate", "endDate"],
}  # fmt: skip
# JSON field -> CSV column where the names differ (1.2 renamed the preferred names)
RENAMED = {"preferredFirstName": "preferredGivenName", "preferredLastName": "preferredFamilyName"}


class RecordError(ValueError):
    """A field kprov reads does not have the shape the binding gives it."""


def text(value: Any, field: str) -> str:
    """A plain JSON value as CSV text; containers are refused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise RecordError(f"{field} is {type(value).__name__}, not a single value")


def ref(value: Any, field: str) -> str:
    """The sourcedId of a GUIDRef (or of a bare string)."""
    if isinstance(value, dict):
        found = value.get("sourcedId")
        if not isinstance(found, str):
            raise RecordError(f"{field} names no sourcedId")
        return found
    if value is None or isinstance(value, str):
        return value or ""
    raise RecordError(f"{field} is not a reference (an object with a sourcedId)")


def refs(value: Any, field: str) -> str:
    if isinstance(value, dict):
        value = [value]
    if value is None or isinstance(value, str):
        return value or ""
    if not isinstance(value, list):
        raise RecordError(f"{field} is not a list of references")
    return ",".join(ref(v, field) for v in value)


def words(value: Any, field: str) -> str:
    if isinstance(value, list):
        return ",".join(text(v, field) for v in value)
    return text(value, field)


def loose(convert: Callable[[Any, str], str], value: Any, field: str) -> str:
    """A field kprov does not read: its value if plain, else empty (never a refusal)."""
    try:
        return convert(value, field)
    except RecordError:
        return ""


def user_ids(value: Any) -> str:
    """userIds as the CSV binding writes them: {type:identifier},..."""
    if not isinstance(value, list):
        return ""
    found = [v for v in value if isinstance(v, dict)]
    return ",".join(
        f"{{{loose(text, v.get('type'), '')}:{loose(text, v.get('identifier'), '')}}}"
        for v in found
    )


class Table:
    """One CSV member being written: its bytes, and where each record starts (physical
    line) and came from, so a problem the reader finds can name the page and record."""

    def __init__(self, header: list[str]) -> None:
        self.header = header
        self.parts = [",".join(header) + "\n"]
        self.starts: list[int] = []
        self.origins: list[tuple[str, int]] = []  # (collection, record index)
        self.next_line = 2

    def add(self, cells: list[str], origin: tuple[str, int]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(cells)
        row = buffer.getvalue()
        self.starts.append(self.next_line)
        self.origins.append(origin)
        self.next_line += len(BREAKS.findall(row))
        self.parts.append(row)

    def data(self) -> bytes:
        return "".join(self.parts).encode("utf-8")


def _cells(record: dict[str, Any], header: list[str], strict: dict[str, str]) -> list[str]:
    """One row: *strict* maps columns to their JSON field (read by kprov, refused if
    malformed); every other column comes from the field of its own name, loosely."""
    cells = []
    for column in header:
        if column in strict:
            cells.append(text(record.get(strict[column]), strict[column]))
        else:
            field = next((k for k, v in RENAMED.items() if v == column), column)
            cells.append(loose(text, record.get(field), field))
    return cells


def row_of(collection: str, record: dict[str, Any], version: str) -> list[str]:
    """The CSV row of one REST record (RecordError if a field kprov reads is malformed)."""
    base = {"sourcedId": "sourcedId", "status": "status", "dateLastModified": "dateLastModified"}
    if collection == "orgs":
        header = COLUMNS["orgs"]
        cells = _cells(record, header, base)
        cells[header.index("parentSourcedId")] = loose(ref, record.get("parent"), "parent")
    elif collection == "academicSessions":
        header = COLUMNS["academicSessions"]
        cells = _cells(record, header, {**base, "title": "title", "startDate": "startDate",
                                        "endDate": "endDate"})  # fmt: skip
        cells[header.index("parentSourcedId")] = loose(ref, record.get("parent"), "parent")
    elif collection == "classes":
        header = COLUMNS["classes"]
        cells = _cells(record, header, {**base, "title": "title"})
        cells[header.index("courseSourcedId")] = loose(ref, record.get("course"), "course")
        cells[header.index("schoolSourcedId")] = ref(record.get("school"), "school")
        cells[header.index("termSourcedIds")] = refs(record.get("terms"), "terms")
        for column in ("grades", "subjects", "subjectCodes", "periods"):
            cells[header.index(column)] = loose(words, record.get(column), column)
    elif collection == "users":
        cells = _user(record, version)
    else:
        header = COLUMNS["enrollments"]
        strict = {**base, "role": "role", "primary": "primary", "beginDate": "beginDate",
                  "endDate": "endDate"}  # fmt: skip
        cells = _cells(record, header, strict)
        for column, field in (("classSourcedId", "class"), ("schoolSourcedId", "school"),
                              ("userSourcedId", "user")):  # fmt: skip
            cells[header.index(column)] = ref(record.get(field), field)
    return cells


def _user(record: dict[str, Any], version: str) -> list[str]:
    strict = {"sourcedId": "sourcedId", "status": "status", "enabledUser": "enabledUser"}
    header = COLUMNS["users-1.2" if version == V12 else "users"]
    if version != V12:
        strict["role"] = "role"
    cells = _cells(record, header, strict)
    put = {  # columns of both versions that are built, not copied
        "dateLastModified": loose(text, record.get("dateLastModified"), "dateLastModified"),
        "userIds": user_ids(record.get("userIds")),
        "agentSourcedIds": loose(refs, record.get("agents"), "agents"),
        "grades": loose(words, record.get("grades"), "grades"),
        "orgSourcedIds": loose(refs, record.get("orgs"), "orgs"),
        "primaryOrgSourcedId": loose(ref, record.get("primaryOrg"), "primaryOrg"),
        "resourceSourcedIds": loose(refs, record.get("resources"), "resources"),
        "password": "",  # never kept: kprov does not read it, and --out writes to disk
    }
    for column, value in put.items():
        if column in header:
            cells[header.index(column)] = value
    return cells


def role_rows(record: dict[str, Any]) -> list[list[str]]:
    """A 1.2 user's ``roles`` as roles.csv rows (RecordError when not the binding's shape)."""
    roles = record.get("roles")
    if roles is None:
        return []
    if not isinstance(roles, list) or not all(isinstance(r, dict) for r in roles):
        raise RecordError("roles is not a list of role objects")
    user = text(record.get("sourcedId"), "sourcedId")
    modified = loose(text, record.get("dateLastModified"), "dateLastModified")
    return [
        [f"{user}#role{index}", "active", modified, user,
         text(role.get("roleType"), "roles.roleType"), text(role.get("role"), "roles.role"),
         loose(text, role.get("beginDate"), ""), loose(text, role.get("endDate"), ""),
         ref(role.get("org"), "roles.org"), loose(ref, role.get("userProfile"), "")]
        for index, role in enumerate(roles, 1)
    ]  # fmt: skip
