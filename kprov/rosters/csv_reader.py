"""Streaming CSV reading with line numbers, strict UTF-8 (BOM allowed) and precise problems."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import IO

from kprov.rosters.model import LEARNER, ROLES, Origin, Person, Problem, Roster

MAX_LINE_BYTES = 1 << 20  # a roster line longer than 1 MiB is a broken export, not data
DEFAULT_ID_COLUMN = "external_user_id"

csv.field_size_limit(MAX_LINE_BYTES)


class CsvRecords:
    """Rows of one CSV file as (first line number, {column: value}), problems gathered aside.

    Undecodable bytes, over-long lines, ragged rows and broken quoting become problems naming
    the line; reading continues so that one run reports every problem of the file.
    """

    def __init__(self, name: str, stream: IO[bytes], problems: list[Problem]) -> None:
        self.name = name
        self._stream = stream
        self._problems = problems
        self._physical_line = 0
        self.header: list[str] = []

    def _lines(self) -> Iterator[str]:
        first = True
        while True:
            raw = self._stream.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            self._physical_line += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                self._problem(
                    self._physical_line,
                    f"line is longer than {MAX_LINE_BYTES // 1024} KiB; the file is probably "
                    "not a roster export (or lacks line breaks)",
                )
                while raw and not raw.endswith(b"\n"):  # skip the rest of the line
                    raw = self._stream.readline(MAX_LINE_BYTES + 1)
                continue
            if first:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
                first = False
            if b"\x00" in raw:
                self._problem(
                    self._physical_line,
                    "line contains a NUL byte",
                    column=raw.index(b"\x00") + 1,
                    fix="the file is binary or UTF-16: save it as UTF-8 CSV",
                )
                yield "\n"
                continue

            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._problem(
                    self._physical_line,
                    f"byte 0x{raw[exc.start]:02X} is not valid UTF-8",
                    column=len(raw[: exc.start].decode("utf-8", "replace")) + 1,
                    fix="save the file as UTF-8 (in Excel: 'CSV UTF-8'), or convert it with "
                    "`iconv -f WINDOWS-1252 -t UTF-8`",
                )
                yield "\n"  # keep line numbers aligned; the row is reported, not used

    def _problem(
        self, line: int | None, message: str, *, column: int | None = None, fix: str = ""
    ) -> None:
        text = f"{message}; {fix}" if fix else message
        self._problems.append(Problem(self.name, line, text, column))

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """Rows as {column: value}; see ``field_rows`` for the fast positional form."""
        for line, fields in self.field_rows():
            yield line, dict(zip(self.header, fields, strict=True))

    def field_rows(self) -> Iterator[tuple[int, list[str]]]:
        """Rows as lists in header order (``header`` is set before the first one)."""
        reader = csv.reader(self._lines(), strict=True)

        start = 1
        try:
            for fields in reader:
                line, start = start, self._physical_line + 1
                if not self.header:
                    if not fields or all(not f.strip() for f in fields):
                        continue
                    self.header = [f.strip() for f in fields]
                    self._check_header(line)
                    continue
                if not fields or fields == [""] or fields == ["\n"]:
                    continue
                if len(fields) != len(self.header):
                    self._problem(
                        line,
                        f"row has {len(fields)} fields but the header has {len(self.header)}",
                        fix="check for a missing or extra comma, or an unquoted comma in a value",
                    )
                    continue
                yield line, fields
        except csv.Error as exc:
            self._problem(
                self._physical_line,
                f"cannot parse CSV ({exc})",
                fix="check quoting: a value with commas or quotes must be in double quotes",
            )
        if not self.header:
            self._problem(None, "the file is empty: no header row", fix="export it again")

    def _check_header(self, line: int) -> None:
        seen: dict[str, int] = {}
        for index, name in enumerate(self.header, start=1):
            key = name.lower()
            if key in seen:
                self._problem(
                    line,
                    f"column {name!r} appears twice in the header (columns {seen[key]} and "
                    f"{index})",
                    column=index,
                    fix="remove or rename one of them",
                )
            seen.setdefault(key, index)

    def index(self, column: str | None) -> int | None:
        return None if column is None else self.header.index(column)

    def column(self, wanted: str) -> str | None:
        """The header's spelling of *wanted*, matched case-insensitively."""
        for name in self.header:
            if name.lower() == wanted.lower():
                return name
        return None


def read_roster_csv(
    name: str,
    stream: IO[bytes],
    problems: list[Problem],
    roster: Roster,
    *,
    id_column: str = DEFAULT_ID_COLUMN,
) -> None:
    """Read a plain roster CSV: an id column, optional ``role`` and ``instance`` columns."""
    records = CsvRecords(name, stream, problems)
    columns: tuple[int, int | None, int | None] | None = None
    for line, row in records.field_rows():
        if columns is None:
            id_name = records.column(id_column)
            if id_name is None:
                break
            columns = (records.header.index(id_name), records.index(records.column("role")),
                       records.index(records.column("instance")))  # fmt: skip

        id_at, role_at, instance_at = columns
        raw_role = row[role_at] if role_at is not None else ""
        role = (raw_role.strip().lower() or LEARNER) if raw_role else LEARNER
        if role not in ROLES:
            problems.append(
                Problem(
                    name,
                    line,
                    f"role {raw_role!r} is not one of: {', '.join(ROLES)}; fix the value "
                    "(an empty role means learner)",
                    (role_at or 0) + 1,
                )
            )
            continue
        instance = row[instance_at].strip() if instance_at is not None else ""
        roster.people.append(Person(row[id_at], role, Origin(name, line), instance or None))
    if records.header and records.column(id_column) is None:
        problems.append(
            Problem(
                name,
                1,
                f"no {id_column!r} column (found: {', '.join(records.header)}); "
                f"name the id column {id_column!r}, or pass --id-column NAME",
            )
        )
