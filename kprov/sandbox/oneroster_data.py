"""What the OneRoster sandbox serves: a bundle's CSV files, shaped as the REST bindings shape them.

The files are read with the standard library's csv module, never with kprov's roster readers:
the sandbox is a second, independent reading of the OneRoster specifications, so a mistake in
kprov's reading shows up as a difference instead of being repeated on both sides. The same
records are served as OneRoster 1.1 (a ``role`` string and ``orgs`` on each user,
``enabledUser`` as the strings "true"/"false", as several 1.1 servers write it) and as 1.2 (a
``roles`` array built from ``roles.csv``, ``enabledUser`` a JSON boolean).

``apply_bundle`` plays a change in the SIS: every row of another bundle replaces (or adds) the
record with its sourcedId and is stamped with the server's clock, the way an SIS stamps
``dateLastModified`` when something changes, so delta pulls (``filter=dateLastModified>...``)
see exactly that change.
"""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

COLLECTIONS = ("orgs", "academicSessions", "classes", "users", "enrollments")
_FILES = {name.lower() + ".csv": name for name in COLLECTIONS}
_TYPES = {"orgs": "org", "academicSessions": "academicSession", "classes": "class",
          "users": "user", "enrollments": "enrollment", "courses": "course"}  # fmt: skip
V11, V12 = "1.1", "1.2"


def iso(moment: datetime) -> str:
    """OneRoster's DateTime form: UTC with milliseconds and a Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date-time (a Z or an offset; a bare one is read as UTC); ValueError if not."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_tables(path: Path) -> dict[str, list[dict[str, str]]]:
    """lower-case file name -> rows (dicts by header), from a bundle folder or zip."""
    raw: dict[str, bytes] = {}
    if path.is_dir():
        for entry in path.iterdir():
            if entry.is_file() and entry.suffix.lower() == ".csv":
                raw[entry.name.lower()] = entry.read_bytes()
    else:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename.rsplit("/", 1)[-1].lower()
                if name.endswith(".csv"):
                    raw[name] = archive.read(info)
    return {
        name: list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
        for name, data in raw.items()
    }


def _split(cell: str | None) -> list[str]:
    return [part.strip() for part in (cell or "").split(",") if part.strip()]


class RosterData:
    """The records of one district, thread-safe; what ``view`` returns is a fresh copy."""

    def __init__(self, bundle: Path, *, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lock = threading.Lock()
        self.records: dict[str, dict[str, dict[str, str]]] = {c: {} for c in COLLECTIONS}
        self.roles: dict[str, list[dict[str, str]]] = {}
        # records the bundle gives no date: older than any pull a test or a newcomer starts
        self.loaded_at = iso(self.clock() - timedelta(days=1))
        self._load(bundle, stamp=None)

    def apply_bundle(self, bundle: Path) -> None:
        """Upsert every row of *bundle*, stamped now (a change made in the SIS)."""
        self._load(bundle, stamp=iso(self.clock()))

    def _load(self, bundle: Path, *, stamp: str | None) -> None:
        tables = read_tables(bundle)
        with self.lock:
            for file, collection in _FILES.items():
                for row in tables.get(file, []):
                    row = {k.strip(): (v or "") for k, v in row.items() if k}
                    row["dateLastModified"] = stamp or row.get("dateLastModified") or self.loaded_at
                    row["status"] = (row.get("status") or "active").strip() or "active"
                    self.records[collection][row["sourcedId"]] = row
            for row in tables.get("roles.csv", []):
                if (row.get("status") or "active").strip() in ("", "active"):
                    self.roles.setdefault(row["userSourcedId"], []).append(dict(row))

    @property
    def secret_target(self) -> str | None:
        """The first user's sourcedId (the `secret-in-data` mode writes the secret into it)."""
        with self.lock:
            return next(iter(self.records["users"]), None)

    def view(self, collection: str, version: str, href: str) -> list[dict[str, Any]]:
        """Every record of *collection* as *version*'s JSON, in bundle order."""
        with self.lock:
            rows = list(self.records[collection].values())
            roles = {k: list(v) for k, v in self.roles.items()}
        shape = getattr(self, f"_{collection}")
        return [shape(row, version, href, roles) for row in rows]

    # ---------------------------------------------------------------- shapes

    @staticmethod
    def _ref(href: str, collection: str, sourced_id: str) -> dict[str, str] | None:
        if not sourced_id:
            return None
        return {"href": f"{href}/{collection}/{sourced_id}", "sourcedId": sourced_id,
                "type": _TYPES[collection]}  # fmt: skip

    def _base(self, row: dict[str, str]) -> dict[str, Any]:
        return {k: row.get(k, "") for k in ("sourcedId", "status", "dateLastModified")}

    def _orgs(self, row: dict[str, str], version: str, href: str, _r: Any) -> dict[str, Any]:
        return {
            **self._base(row),
            "name": row.get("name", ""),
            "type": row.get("type", ""),
            "identifier": row.get("identifier", ""),
            "parent": self._ref(href, "orgs", row.get("parentSourcedId", "")),
        }

    def _academicSessions(  # named after the collection
        self, row: dict[str, str], version: str, href: str, _r: Any
    ) -> dict[str, Any]:
        return {
            **self._base(row),
            "title": row.get("title", ""),
            "type": row.get("type", ""),
            "startDate": row.get("startDate", ""),
            "endDate": row.get("endDate", ""),
            "parent": self._ref(href, "academicSessions", row.get("parentSourcedId", "")),
            "schoolYear": row.get("schoolYear", ""),
        }

    def _classes(self, row: dict[str, str], version: str, href: str, _r: Any) -> dict[str, Any]:
        terms = _split(row.get("termSourcedIds") or row.get("sessionSourcedIds"))
        return {
            **self._base(row),
            "title": row.get("title", ""),
            "classCode": row.get("classCode", ""),
            "classType": row.get("classType", ""),
            "location": row.get("location", ""),
            "grades": _split(row.get("grades")),
            "subjects": _split(row.get("subjects")),
            "periods": _split(row.get("periods")),
            "course": self._ref(href, "courses", row.get("courseSourcedId", "")),
            "school": self._ref(href, "orgs", row.get("schoolSourcedId", "")),
            "terms": [self._ref(href, "academicSessions", t) for t in terms],
        }

    def _users(
        self, row: dict[str, str], version: str, href: str, roles: dict[str, list[dict[str, str]]]
    ) -> dict[str, Any]:
        sourced = row["sourcedId"]
        orgs = _split(row.get("orgSourcedIds")) or _split(row.get("primaryOrgSourcedId"))
        own = roles.get(sourced, [])
        enabled = (row.get("enabledUser") or "true").strip().lower() not in ("false", "0", "no")
        user: dict[str, Any] = {
            **self._base(row),
            "username": row.get("username", ""),
            "givenName": row.get("givenName", ""),
            "familyName": row.get("familyName", ""),
            "identifier": row.get("identifier", ""),
            "email": row.get("email", ""),
            "grades": _split(row.get("grades")),
            "agents": [self._ref(href, "users", a) for a in _split(row.get("agentSourcedIds"))],
        }
        if version == V11:
            primary = [r for r in own if r.get("roleType") == "primary"] or own
            user["role"] = row.get("role") or (primary[0]["role"] if primary else "")
            user["orgs"] = [self._ref(href, "orgs", o) for o in orgs]
            user["enabledUser"] = "true" if enabled else "false"
            return user
        if not own and row.get("role"):
            own = [{"roleType": "primary", "role": row["role"],
                    "orgSourcedId": orgs[0] if orgs else ""}]  # fmt: skip
        user["enabledUser"] = enabled
        user["roles"] = [
            {
                "roleType": r.get("roleType") or "primary",
                "role": r.get("role", ""),
                "org": self._ref(href, "orgs", r.get("orgSourcedId", "")),
                "beginDate": r.get("beginDate") or None,
                "endDate": r.get("endDate") or None,
            }
            for r in own
        ]
        user["primaryOrg"] = self._ref(href, "orgs", row.get("primaryOrgSourcedId", ""))
        user["pronouns"] = row.get("pronouns", "")
        return user

    def _enrollments(self, row: dict[str, str], version: str, href: str, _r: Any) -> dict[str, Any]:
        primary = (row.get("primary") or "false").strip().lower() == "true"
        return {
            **self._base(row),
            "role": row.get("role", ""),
            "primary": primary if version == V12 else ("true" if primary else "false"),
            "beginDate": row.get("beginDate") or None,
            "endDate": row.get("endDate") or None,
            "user": self._ref(href, "users", row.get("userSourcedId", "")),
            "class": self._ref(href, "classes", row.get("classSourcedId", "")),
            "school": self._ref(href, "orgs", row.get("schoolSourcedId", "")),
        }
