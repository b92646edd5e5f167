"""CSV as districts export it: any delimiter, Excel's `sep=` line, ragged trailing cells.

The delimiter is Excel's `sep=X` first line when there is one, else `--delimiter`, else the
one of comma, semicolon, tab and pipe that splits the header most. Rows whose cells are all
empty are skipped, header cells that are empty are ignored (and so are cells under them),
and every row keeps the line it started on. Every CSV kprov reads (plain rosters and each
member of a bundle) is a ``CsvTable``.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterator
from typing import IO

from kprov.rosters.model import Problem
from kprov.rosters.text import MAX_LINE_CHARS, REFUSED, TextLines, TextOptions

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
