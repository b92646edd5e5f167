"""A small plain roster file read whole: one read, one decode, one block of rows.

A manifest of 4,000 classes names 4,000 roster files of a few hundred lines. Each went
through the general reader -- a peeked encoding, a text wrapper, the header through the csv
module, blocks read line by line -- about 0.1 ms a file before its first row: 0.5 s a night.
A file that is certainly plain skips all of it: at most ``WHOLE_BYTES``, ASCII, no NUL, no
CR, no quote, every line ended by LF; a header of distinct named cells (no `sep=` line) with
the columns kprov reads; and every row plain as ``csv_blocks`` means it. Its rows are then
taken by ``csv_blocks.take_block``, exactly as the general reader takes a plain block.

Anything else -- and any file whose rows are not all plain -- is given back untouched (the
stream rewound, nothing collected), and the general reader reads it from its first byte, so
every problem is found and named exactly as before (tests/unit/test_rosters_whole.py compares
the two on hostile files).
"""

from __future__ import annotations

import os
from typing import IO

from kprov.rosters.collect import Collector
from kprov.rosters.csv_blocks import take_block
from kprov.rosters.csv_reader import DEFAULT_INSTANCE_COLUMN, DEFAULT_ROLE_COLUMN
from kprov.rosters.csv_table import _BLANK, _SEP_LINE, sniff_delimiter
from kprov.rosters.headers import FIRST_LINE, first_line

WHOLE_BYTES = 1 << 19  # larger files are read a block at a time (their lines stay < the limit)


def read_whole(
    stream: IO[bytes],
    name: str,
    collector: Collector,
    delimiter: str | None,
    columns: tuple[str, str | None, str | None],
) -> bool:
    """Read *stream* (a regular file, at its start) into *collector* when the whole file is
    plain; False, having collected nothing and rewound *stream*, when it is not.
    *columns*: the id column's name, and the role's and the instance's when named (as given
    to ``read_roster_csv``)."""
    if collector.naming is not None or collector.hash_key is not None or collector.id_prefix:
        return False  # read row by row (``_read_rows_slowly``, prefixes)
    size = os.fstat(stream.fileno()).st_size  # read what the file holds (a 512 KiB buffer
    if size > WHOLE_BYTES:  # asked for a 3 KB class file cost more than reading it)
        return False
    raw = stream.read(size + 1)
    if len(raw) != size or not _take_whole(raw, name, collector, delimiter, columns):
        stream.seek(0)  # (a file still being written: the general reader reads it to its end)
        return False
    collector.roster.headers[name] = first_line(raw[:FIRST_LINE])
    return True


def _take_whole(
    raw: bytes,
    name: str,
    collector: Collector,
    delimiter: str | None,
    columns: tuple[str, str | None, str | None],
) -> bool:
    if (
        len(raw) > WHOLE_BYTES
        or not raw.endswith(b"\n")
        or not raw.isascii()
        or b"\x00" in raw
        or b"\r" in raw
        or b'"' in raw
    ):
        return False
    text = raw.decode("ascii")
    lines = text.splitlines(keepends=True)
    if len(lines) < 2 or len(lines) != text.count("\n"):  # only LF ends a line here
        return False
    header = lines[0]
    if not header.strip(_BLANK) or _SEP_LINE.match(header):
        return False
    delimiter = delimiter or sniff_delimiter(header)
    names = [cell.strip() for cell in header[:-1].split(delimiter)]
    lowered = [n.lower() for n in names]
    if not all(names) or len(set(lowered)) != len(lowered):
        return False  # unnamed or repeated header cells: the general reader says what to do
    id_column, role_column, instance_column = columns
    found: list[int | None] = []
    for named, default in ((id_column, id_column), (role_column, DEFAULT_ROLE_COLUMN),
                           (instance_column, DEFAULT_INSTANCE_COLUMN)):  # fmt: skip
        wanted = (named or default).lower()
        if named and wanted not in lowered:
            return False  # a column that must be there is not: the general reader says so
        found.append(lowered.index(wanted) if wanted in lowered else None)
    id_at, role_at, instance_at = found
    assert id_at is not None
    return take_block(lines[1:], delimiter, len(names), collector, name, 2,
                      (id_at, role_at, instance_at))  # fmt: skip
