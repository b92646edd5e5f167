"""A plain roster CSV: an id column, optional role and instance columns, read a row at a
time into a ``Collector`` (the file's dialect and header are ``rosters.csv_table``'s).

The common row costs no Python call beyond the csv module's (``_read_rows``); --hash-ids and
the naming of duplicates take the slower path through ``Collector.add``.
"""

from __future__ import annotations

import csv
from typing import Any

from kprov.rosters.collect import Collector
from kprov.rosters.csv_blocks import read_blocks
from kprov.rosters.csv_table import CsvTable, blank
from kprov.rosters.model import LEARNER, Origin, Person
from kprov.rosters.people import People
from kprov.rosters.roles import FAST_ROLE_OF, RoleError, role_of
from kprov.rosters.text import option_fix
from kprov.rosters.validate import FAST_ID, hash_external_id

DEFAULT_ID_COLUMN = "external_user_id"
DEFAULT_ROLE_COLUMN = "role"
DEFAULT_INSTANCE_COLUMN = "instance"


def read_roster_csv(
    table: CsvTable,
    collector: Collector,
    *,
    id_column: str = DEFAULT_ID_COLUMN,
    instance_column: str | None = None,
    role_column: str | None = None,
) -> None:
    """A plain roster: an id column, optional role and instance columns (``role`` and
    ``instance`` unless named: a named column must be there)."""
    if not table.open():
        return
    id_at = table.column(id_column)
    if id_at is None:
        table.problem(
            table.offset + 1,
            f"no {id_column!r} column (found: {', '.join(table.header)}); name the id "
            f"column {id_column!r}, or "
            + option_fix(
                "--id-column", "NAME", "`id_column: NAME` on that roster's entry or in `defaults:`"
            ),
        )
        return
    role_at = table.column(role_column or DEFAULT_ROLE_COLUMN)
    instance_at = table.column(instance_column or DEFAULT_INSTANCE_COLUMN)
    for named, at, option in (
        (role_column, role_at, "role"),
        (instance_column, instance_at, "instance"),
    ):
        if named and at is None:
            table.problem(
                table.offset + 1,
                f"no {named!r} column (found: {', '.join(table.header)}); check the name given "
                f"to --{option}-column (in a manifest: `{option}_column:`)",
            )
            return
    if collector.naming is not None or collector.hash_key is not None:
        _read_rows_slowly(table, collector, id_at, role_at, instance_at)
    else:
        _read_rows(table, collector, id_at, role_at, instance_at)


def _role(
    table: CsvTable, collector: Collector, raw: str, line: int, column: int, ext: str
) -> str | None:
    """The role of a row; None when the row is skipped or refused (both recorded)."""
    try:
        role = role_of(raw, empty=LEARNER)
    except RoleError as exc:
        table.problem(line, f"{exc} (an empty role means learner)", column)
        return None
    if role is None:
        collector.skip(table.name, line, ext, f"role {raw.strip()} is not provisioned")
    return role


def _read_rows(
    table: CsvTable, collector: Collector, id_at: int, role_at: int | None, inst_at: int | None
) -> None:
    """The hot loop: the common row costs no Python call beyond the csv module's. It is
    ``rows()`` and ``Collector.add`` written out, for a million rows in about a second; the
    people kept are gathered a column at a time and handed to the roster in blocks."""
    name = table.name
    people = collector.roster.people
    columns = isinstance(people, People)
    ids: list[str] = []
    roles: list[Any] = []  # str: a row without a role is skipped before it is kept
    lines: list[int] = []
    instances: list[str | None] = []
    digest_appends = collector.digest_appends
    problems = collector.problems
    role_of_cell = FAST_ROLE_OF
    fast_id = FAST_ID.match
    forced_instance = collector.force_instance
    forced_role = collector.force_role
    prefix = collector.id_prefix
    keep = collector.still_keeping()
    good_keys, bad_key = collector.good_keys, collector.bad_key
    reader = table.reader
    assert reader is not None
    width, fitted_rows, offset = table.width_read, not table.plain, table.offset
    previous = reader.line_num  # type: ignore[attr-defined]
    seen = 0
    if table.plain and table.delimiter is not None and not prefix:  # plain stretches: blocks
        first = offset + previous + 1
        at = (id_at, role_at, inst_at)
        offset += read_blocks(table.lines, table.delimiter, width, collector, name, first, at)

    def hand_over() -> None:
        if columns:
            people.add_rows(name, ids, roles, lines, instances)  # type: ignore[attr-defined]
        else:
            people.extend(
                Person(ext, role, Origin(name, line), instance)
                for ext, role, line, instance in zip(ids, roles, lines, instances, strict=True)
            )
        for column in (ids, roles, lines, instances):
            column.clear()

    while True:
        try:
            for cells in reader:
                line = offset + previous + 1
                previous = reader.line_num  # type: ignore[attr-defined]
                if fitted_rows or len(cells) != width:
                    fitted = table.fit(line, cells)
                    if fitted is None:
                        continue
                    cells = fitted
                ext = cells[id_at]
                if role_at is None:
                    role: str | None = LEARNER
                else:
                    role = role_of_cell.get(cells[role_at])
                    if role is None:
                        role = _role(table, collector, cells[role_at], line, role_at + 1, ext)
                        if role is None:
                            continue
                instance = forced_instance
                if instance is None and inst_at is not None:
                    instance = cells[inst_at].strip() or None
                    if prefix and instance:
                        instance = prefix + instance
                if forced_role is not None:
                    role = forced_role
                if not fast_id(ext) and (
                    blank(cells) or collector.bad_id(ext, name, line, id_at + 1)
                ):
                    continue
                if (
                    instance is not None
                    and instance not in good_keys
                    and bad_key(instance, name, line)
                ):
                    continue
                if prefix:
                    ext = collector.prefixed(ext, name, line)
                    if not ext:
                        continue
                seen += 1
                digest = hash((ext, instance))
                digest_appends[digest & 0xFF](digest)
                if keep:
                    if problems:
                        keep = collector.still_keeping()
                        for column in (ids, roles, lines, instances):
                            column.clear()
                        continue
                    ids.append(ext)
                    roles.append(role)
                    lines.append(line)
                    instances.append(instance)
                    if len(ids) == 65536:
                        hand_over()
            break
        except csv.Error as exc:
            line, previous = offset + previous + 1, reader.line_num  # type: ignore[attr-defined]
            table.csv_problem(line, exc)
    if keep and collector.still_keeping():
        hand_over()
    collector.rows += seen


def _read_rows_slowly(
    table: CsvTable, collector: Collector, id_at: int, role_at: int | None, inst_at: int | None
) -> None:
    """The same rows through ``Collector.add``: for --hash-ids and for naming duplicates."""
    for line, cells in table.rows():
        ext = cells[id_at]
        if not ext.strip() and blank(cells):
            continue
        role: str | None = LEARNER
        if role_at is not None:
            role = _role(table, collector, cells[role_at], line, role_at + 1, ext)
        if role is None:
            continue
        instance = cells[inst_at].strip() or None if inst_at is not None else None
        if instance and collector.id_prefix and collector.force_instance is None:
            instance = collector.id_prefix + instance
        collector.add(ext, role, table.name, line, instance, column=id_at + 1)


__all__ = [
    "DEFAULT_ID_COLUMN",
    "DEFAULT_INSTANCE_COLUMN",
    "DEFAULT_ROLE_COLUMN",
    "hash_external_id",
    "read_roster_csv",
]
