"""One pull, complete or nothing: every collection read in full, checked, then shaped as CSV.

Before anything is planned, a pull has read orgs, academicSessions, classes, users and
enrollments entirely (``paging``), refused any record holding the SIS secret or a token (a
server that echoes what it was sent into its data), kept the schools asked for, checked that
every enrollment of a bulk pull names a class and a user of that same pull, and converted
the records (``convert``). Any failure raises; a partial pull is never returned, so it can
never imply a removal. A delta pull (``since``) reads only the classes, users and
enrollments that changed (orgs and terms in full: a new class is dated by its terms); it
states no class's whole membership, so only its ``tobedeleted`` enrollments remove anyone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from kprov.api.scrub import Scrubber
from kprov.rosters.api_source import V12, ApiSource
from kprov.sis.bundle import PulledData
from kprov.sis.convert import COLUMNS, RecordError, Table, ref, role_rows, row_of
from kprov.sis.errors import data_error
from kprov.sis.paging import ALWAYS_FULL, COLLECTIONS, Collection, read_collection
from kprov.sis.secret import resolve_sis_secret
from kprov.sis.wire import PullOptions, SisClient

# A delta asks from a little before the last pull started: clocks differ between kprov's
# host and the SIS, and an SIS may stamp a change when its transaction starts, not when it
# commits. Reading a change twice costs nothing (the plan finds it done); missing one is
# forever.
OVERLAP = timedelta(minutes=10)


def moment(value: datetime) -> str:
    """A cursor as the filter writes it: UTC, whole seconds, Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pull(source: ApiSource, options: PullOptions, *, since: str | None = None) -> PulledData:
    """Read *source* in full (only changes since *since*, when given), or raise."""
    secret = resolve_sis_secret(source, options.env)
    started = options.now()
    with SisClient(source, secret, options) as client:
        collections: dict[str, Collection] = {}
        for name in COLLECTIONS:
            changed_since = None if name in ALWAYS_FULL else since
            collections[name] = read_collection(client, source, name, since=changed_since)
        _refuse_secrets(source, collections, client.scrubber)
        requests = client.request_count
        server_now = _server_date(collections["orgs"].first_date)
    start = min(started, server_now) if server_now is not None else started
    delta = since is not None
    kept = _select(source, collections, delta=delta)
    tables = _tables(source, collections, kept)
    for collection in collections.values():
        collection.release()  # the CSV tables hold what is needed now
    return PulledData(
        url=source.url,
        version=source.version,
        tables=tables,
        collections=collections,
        delta=delta,
        since=since,
        cursor=moment(start - OVERLAP),
        requests=requests,
    )


def _server_date(raw: str | None) -> datetime | None:
    """The SIS's own clock (the Date header of its first answer), if it sent a usable one."""
    try:
        found = parsedate_to_datetime(raw) if raw else None
    except (TypeError, ValueError):
        return None
    return found if found is not None and found.tzinfo is not None else None


def _strings(value: Any, path: str) -> Any:
    """(field path, text) of every string inside a JSON value."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield from _strings(key, path)
            yield from _strings(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner, path)


GROUP = 256  # records whose text is looked at in one pass


def _refuse_secrets(source: ApiSource, collections: dict[str, Collection], scrub: Scrubber) -> None:
    """Refuse a pull whose data holds a credential, naming the record and field. The text of
    GROUP records is looked at in one pass, joined by NUL (no secret, encoding or escape
    holds one, so nothing is found across two fields that one field alone would not show;
    joining may only find more): a clean group, nearly every group, costs one pass instead
    of one per field (~6.6 µs each: 10 s for 100,000 users). A group that holds something
    is looked at field by field, which is what names, and decides."""
    problems = []
    for name, collection in collections.items():
        records = collection.records
        for start in range(0, len(records), GROUP):
            group = records[start : start + GROUP]
            joined = " ".join(v for record in group for _p, v in _strings(record, ""))
            if scrub.scrub(joined) == joined:
                continue
            for index, record in enumerate(group, start):
                for path, value in _strings(record, ""):
                    if scrub.scrub(value) != value:
                        problems.append(
                            f"{name} {collection.where(index)}: field {path} holds the SIS "
                            "client secret or a token kprov was given; a server that echoes "
                            "credentials into its data is not read"
                        )
                        break
    if problems:
        raise data_error(source.url, problems)


def _orgs_of(record: dict[str, Any]) -> set[str]:
    """A user's orgs: 1.1 ``orgs``, 1.2 ``roles[].org`` and ``primaryOrg``."""
    found: set[str] = set()
    orgs, roles = record.get("orgs"), record.get("roles")
    candidates: list[Any] = list(orgs) if isinstance(orgs, list) else []
    roles = roles if isinstance(roles, list) else []
    candidates += [r.get("org") for r in roles if isinstance(r, dict)]
    candidates.append(record.get("primaryOrg"))
    for candidate in candidates:
        try:
            found.add(ref(candidate, "org"))
        except RecordError:
            continue
    return found - {""}


def _select(
    source: ApiSource, collections: dict[str, Collection], *, delta: bool
) -> dict[str, list[int]]:
    """Indexes of the records to keep: the schools' classes, their enrollments and people;
    a bulk pull's enrollments must name its own classes and users."""
    schools = set(source.schools)
    problems: list[str] = []
    classes, users = collections["classes"], collections["users"]
    enrollments = collections["enrollments"]
    if schools:  # orgs are read in full, deltas included
        known = {r.get("sourcedId") for r in collections["orgs"].records}
        problems += [
            f"schools: {s!r} is not among the orgs of {source.url} (a typo would select nothing)"
            for s in sorted(schools - known)
        ]
    class_ids = {r["sourcedId"]: i for i, r in enumerate(classes.records)}
    user_ids = {r["sourcedId"] for r in users.records}
    kept_classes: set[str] = set()
    for index, record in enumerate(classes.records):
        try:
            school = ref(record.get("school"), "school")
        except RecordError as exc:
            problems.append(f"classes {classes.where(index)}: {exc}")
            continue
        if not schools or school in schools:
            kept_classes.add(record["sourcedId"])
    kept_enrollments: list[int] = []
    enrolled: set[str] = set()
    for index, record in enumerate(enrollments.records):
        try:
            names = [ref(record.get(f), f) for f in ("class", "user", "school")]
        except RecordError as exc:
            problems.append(f"enrollments {enrollments.where(index)}: {exc}")
            continue
        klass, user, school = names
        mine = klass in kept_classes or (klass not in class_ids and school in schools)
        if schools and not mine:
            continue
        if not delta:
            for what, name, known_ids in (("class", klass, class_ids), ("user", user, user_ids)):
                if name not in known_ids:
                    problems.append(
                        f"enrollments {enrollments.where(index)}: enrollment "
                        f"{record['sourcedId']!r} names {what} {name!r}, which this pull's "
                        f"{'classes' if what == 'class' else 'users'} do not hold"
                    )
        kept_enrollments.append(index)
        enrolled.add(user)
    if problems:
        raise data_error(source.url, problems)
    return {
        "orgs": list(range(len(collections["orgs"].records))),
        "academicSessions": list(range(len(collections["academicSessions"].records))),
        "classes": [i for i, r in enumerate(classes.records) if r["sourcedId"] in kept_classes],
        "users": [
            i for i, r in enumerate(users.records)
            if not schools or r["sourcedId"] in enrolled or _orgs_of(r) & schools
        ],
        "enrollments": kept_enrollments,
    }  # fmt: skip


def _tables(
    source: ApiSource, collections: dict[str, Collection], kept: dict[str, list[int]]
) -> dict[str, Table]:
    """The CSV members; a record whose fields kprov reads are malformed is refused by name."""
    v12 = source.version == V12
    tables: dict[str, Table] = {}
    problems: list[str] = []
    for name in COLLECTIONS:
        header = COLUMNS["users-1.2" if v12 and name == "users" else name]
        table = tables[f"{name}.csv"] = Table(header)
        collection = collections[name]
        for index in kept[name]:
            record = collection.records[index]
            try:
                table.add(row_of(name, record, source.version), (name, index))
                if v12 and name == "users":
                    roles = tables.setdefault("roles.csv", Table(COLUMNS["roles"]))
                    for row in role_rows(record):
                        roles.add(row, (name, index))
            except RecordError as exc:
                problems.append(f"{name} {collection.where(index)}: {exc}")
    if v12:
        tables.setdefault("roles.csv", Table(COLUMNS["roles"]))
    if problems:
        raise data_error(source.url, problems)
    return tables
