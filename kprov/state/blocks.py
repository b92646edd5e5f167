"""Journal lines at C speed: read a block at a time where they are plain (row by row where
they are not), and written without the csv module when nothing needs quoting.

Most journal lines are ids, a date and a status: no quote, no CR, no comma inside a field.
Such a block is split into its columns with string methods (C speed) and handed over whole;
a journal of millions of lines loads in seconds. The first block that is not plain -- or
that the caller finds unusual -- and everything after it is read by the journal's own
parser (``CsvJournal.parse``), which names a damaged line exactly as it always has.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING

from kprov.gc_pause import gc_paused

if TYPE_CHECKING:
    from kprov.state.journal import CsvJournal
    from kprov.state.snapshot import Covered

BLOCK = 1 << 22  # characters read at a time (whole lines)
Columns = list[list[str]]  # one list per field, each as long as the block


def read_journal(
    journal: CsvJournal,
    take_block: Callable[[Columns], bool],
    take_row: Callable[[list[str]], None],
    after: Covered | None = None,
) -> None:
    """Read every row of *journal* (after a snapshot's bytes: ``read_journal_lines``): plain
    blocks as columns to *take_block* (which returns False, having applied nothing, when it
    wants them row by row), then rows to *take_row*."""
    width = len(journal.header)
    read_journal_lines(
        journal, lambda lines: take_block(split_columns(lines, width)), take_row, after
    )


def read_journal_lines(
    journal: CsvJournal,
    take_block: Callable[[list[str]], bool],
    take_row: Callable[[list[str]], None],
    after: Covered | None = None,
) -> None:
    """``read_journal``, each plain block handed over as its lines (as written, "\\n" after
    each, *width* fields on each): a reader may split only the lines it needs
    (``split_columns``), and keep a line to split when asked. With *after* (what a snapshot
    covers: ``state.snapshot``), only the rows after those bytes, numbered after its lines."""
    width = len(journal.header)
    with journal.text(after.length if after else 0) as handle, gc_paused():
        if handle is None:
            return
        if after is None:
            handle.readline()  # the header, checked already
        line = after.next_line if after else 2  # of the first row
        while True:
            lines = handle.readlines(BLOCK)  # whole lines, as the csv module would see them
            if not lines:
                return
            if not _plain(lines, width) or not take_block(lines):
                break
            line += len(lines)
        for _line, row in journal.parse(chain(lines, handle), header=False, first_line=line):
            take_row(row)


def _plain(lines: list[str], width: int) -> bool:
    """Whether every line is plain (no quote, no CR, "\\n" after it) with *width* fields."""
    block = "".join(lines)
    return not (
        '"' in block
        or "\r" in block
        or not block.endswith("\n")
        or set(map(str.count, lines, repeat(","))) != {width - 1}
    )


def split_columns(lines: list[str], width: int) -> Columns:
    """The fields of plain *lines* (``_plain``) by column."""
    fields = "".join(lines).replace("\n", ",").split(",")
    count = len(lines)
    return [fields[at::width][:count] for at in range(width)]


def _columns(lines: list[str], width: int) -> Columns | None:
    """The fields of *lines* by column, when every line is plain and has *width* fields."""
    return split_columns(lines, width) if _plain(lines, width) else None


def csv_lines(rows: Sequence[Sequence[str]]) -> str:
    """*rows* as the csv module writes them (quotes where needed, "\\n" after each). When no
    field needs quotes -- most rows are ids, dates and a status -- the rows are joined
    directly: no quote, CR or LF anywhere, and exactly the commas that separate fields."""
    text = "\n".join([",".join(row) for row in rows]) + "\n"
    if (
        '"' in text
        or "\r" in text
        or text.count("\n") != len(rows)
        or text.count(",") != sum(map(len, rows)) - len(rows)
        or min(map(len, rows)) < 2  # a lone empty field is written as ""
    ):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        return buffer.getvalue()
    return text
