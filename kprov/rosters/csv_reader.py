"""CSV as districts export it: any delimiter, Excel's `sep=` line, ragged trailing cells.

The delimiter is Excel's `sep=X` first line when there is one, else `--delimiter`, else the
one of comma, semicolon, tab and pipe that splits the header most. Rows whose cells are all
empty are skipped, header cells that are empty are ignored (and so are cells under them),
and every row keeps the line it started on.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterator
from typing import IO, Any

from kprov.rosters.collect import Collector
from kprov.rosters.csv_blocks import read_blocks
from kprov.rosters.model import LEARNER, Origin, Person, Problem
from kprov.rosters.people import People
from kprov.rosters.roles import FAST_ROLE_OF, RoleError, role_of
from kprov.rosters.text import MAX_LINE_CHARS, REFUSED, TextLines, TextOptions, option_fix
from kprov.rosters.validate import FAST_ID, hash_external_id

DEFAULT_ID_COLUMN = "external_user_id"
DEFAULT_ROLE_COLUMN = "role"
DEFAULT_INSTANCE_COLUMN = "instance"
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|"}
_SEP_LINE = re.compile(r'^"?sep=(.)"?[,;\t|]*\s*$', re.IGNORECASE)
_BLANK = " \t\r\n,;|"

csv.field_size_limit(MAX_LINE_CHARS)


def parse_delimiter(text: str) -> str:
    """`--delimiter` value -> the character; ValueError naming the accepted spellings."""
    value = _DELIMITER_NAMES.get(text.lower(), text)
    if len(value) != 1 or value in '\r\n"':
        raise ValueError(f"--delimiter {text!r}: give one character such as ',' ';' '|', or 'tab'")
    return value


def sniff_delimiter(header_line: str) -> str:
    """The candidate that splits the header line most (outside quotes); comma on a tie."""
    outside = re.sub(r'"[^"]*"', "", header_line)
    counts = [(outside.count(d), -i, d) for i, d in enumerate(DELIMITERS)]
    best = max(counts)
    return best[2] if best[0] else ","


class CsvTable:
    """One CSV file: its dialect found, its header read, its rows in header order."""

    def __init__(
        self, name: str, stream: IO[bytes], problems: list[Problem], options: TextOptions
    ) -> None:
        self.name = name
        self.problems = problems
        self.lines = TextLines(name, stream, problems, options.encoding)
        self.delimiter = options.delimiter
        self.header: list[str] = []
        self.width = 0
        self.offset = 0  # physical lines consumed before the csv reader's first line
        self.reader: Iterator[list[str]] | None = None
        self.escapechar: str | None = None  # Apple School Manager escapes quotes with "\\"
        self._kept: list[int] | None = None  # indexes of named columns when some are unnamed
        self._raw_width = 0
        self._repeated: dict[str, tuple[int, int]] = {}  # lower-case name -> two columns

    def problem(self, line: int | None, message: str, column: int | None = None) -> None:
        self.problems.append(Problem(self.name, line, message, column))

    def open(self) -> bool:
        """Find the dialect and read the header; False (with a problem) when there is none."""
        lines = iter(self.lines)
        consumed = 0
        first: str | None = None
        sep_allowed = True  # Excel's `sep=X` may only be the first line with content
        for line in lines:
            consumed += 1
            if line == REFUSED:  # the header itself cannot be read: its problem says why
                for _rest in lines:  # read on, so every line's problem is reported
                    pass
                return False
            if not line.strip(_BLANK):
                continue
            if sep_allowed:
                sep_allowed = False
                match = _SEP_LINE.match(line)
                if match:
                    self.delimiter = self.delimiter or match.group(1)
                    continue
            first = line
            break
        if first is None:
            self.problem(None, "the file is empty: no header row; export it again")
            return False
        self.delimiter = self.delimiter or sniff_delimiter(first)
        self.offset = consumed - 1
        reader = csv.reader(
            itertools.chain((first,), lines),
            delimiter=self.delimiter,
            escapechar=self.escapechar,
            strict=True,
        )
        self.reader = reader
        try:
            cells = next(reader)
        except csv.Error as exc:
            self.problem(self.offset + 1, f"cannot parse the header ({exc})")
            return False
        self._set_header(cells)
        return True

    def _set_header(self, cells: list[str]) -> None:
        names = [c.strip().lstrip("\ufeff") for c in cells]
        seen: dict[str, int] = {}
        for index, name in enumerate(names, start=1):
            key = name.lower()
            if key and key in seen:
                self._repeated.setdefault(key, (seen[key], index))
            seen.setdefault(key, index)
        if all(names):
            self.header = names
        else:  # Excel's empty trailing header cells: ignore them and what is under them
            self._kept = [i for i, name in enumerate(names) if name]
            self.header = [names[i] for i in self._kept]
        self._raw_width = len(names)
        self.width = len(self.header)

    def column(self, wanted: str) -> int | None:
        """The index of *wanted* (matched case-insensitively), or None.

        A column kprov reads must appear once; other repeated names do not matter (and are
        never quoted: a file without a header would show a row of data there)."""
        lowered = wanted.lower()
        repeated = self._repeated.pop(lowered, None)
        if repeated:
            first, second = repeated
            self.problem(
                self.offset + 1,
                f"column {wanted!r} appears twice in the header (columns {first} and {second}); "
                "remove or rename one of them",
                second,
            )
        for index, name in enumerate(self.header):
            if name.lower() == lowered:
                return index
        return None

    def fit(self, line: int, cells: list[str]) -> list[str] | None:
        """Cells in header order, or None for a row to skip (blank, or reported as ragged)."""
        kept = self._kept
        raw_width = self._raw_width
        if len(cells) == raw_width and kept is None:
            return cells
        if not any(c.strip() for c in cells):
            return None  # an empty row, or Excel's trailing ",,,"
        if len(cells) > raw_width and not any(c.strip() for c in cells[raw_width:]):
            cells = cells[:raw_width]
        if len(cells) < raw_width and kept is not None and len(cells) > kept[-1]:
            cells = cells + [""] * (raw_width - len(cells))
        if len(cells) != raw_width:
            self.problem(
                line,
                f"row has {len(cells)} fields but the header has {raw_width}; check for a "
                f"missing or extra {_named(self.delimiter)}, or an unquoted "
                f"{_named(self.delimiter)} in a value",
            )
            return None
        return cells if kept is None else [cells[i] for i in kept]

    def raw_rows(self) -> Iterator[tuple[int, list[str]]]:
        """(first line, cells as read) for every row after the header; csv errors recorded."""
        reader = self.reader
        assert reader is not None
        offset = self.offset
        previous = reader.line_num  # type: ignore[attr-defined]
        while True:
            try:
                for cells in reader:
                    line, previous = offset + previous + 1, reader.line_num  # type: ignore[attr-defined]
                    yield line, cells
                return
            except csv.Error as exc:
                line, previous = offset + previous + 1, reader.line_num  # type: ignore[attr-defined]
                self.csv_problem(line, exc)

    def csv_problem(self, line: int, exc: csv.Error) -> None:
        self.problem(
            line,
            f"cannot parse CSV ({exc}); check quoting: a value holding the delimiter, a quote "
            "or a line break must be in double quotes",
        )

    @property
    def width_read(self) -> int:
        """How many cells a row has as read (the header's, unnamed columns included)."""
        return self._raw_width

    @property
    def plain(self) -> bool:
        """Whether rows are used as read (no unnamed header cell to drop)."""
        return self._kept is None

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(first line, cells in header order) for every usable row."""
        width = self._raw_width
        plain = self._kept is None
        fit = self.fit
        for line, cells in self.raw_rows():
            if len(cells) != width or not plain:
                fitted = fit(line, cells)
                if fitted is None:
                    continue
                cells = fitted
            elif not cells[0].strip() and blank(cells):
                continue  # an empty row, or Excel's trailing ",,,"
            yield line, cells


def blank(cells: list[str]) -> bool:
    """A row whose cells are all empty or spaces: skipped, like Excel's trailing ",,,"."""
    return not any(c.strip() for c in cells)


def _named(delimiter: str | None) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(
        delimiter or ",", repr(delimiter)
    )


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
    digest_appends = [bucket.append for bucket in collector.digests]
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
    "CsvTable",
    "hash_external_id",
    "parse_delimiter",
    "read_roster_csv",
]
