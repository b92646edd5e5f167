"""A journal's last line after a crash: where the last complete line ends, and the repair of
one a crash cut short. A cut line that is a whole row is completed (its newline was all that
was missing); anything else is moved aside to a ``.torn-*`` file and reported, never dropped
silently; a file holding only part of its header starts afresh (nothing was recorded)."""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kprov.state.files import open_fd
from kprov.state.portable import read_at, write_at

TAIL_CHUNK = 1 << 16


@dataclass
class Tail:
    """Where the last complete line ends, when the file does not end with a newline."""

    size: int
    keep_until: int | None = None  # None: the file ends with a newline (or is empty)
    fragment: bytes = b""


def read_tail(fd: int) -> Tail:
    size = os.fstat(fd).st_size
    if size == 0 or read_at(fd, 1, size - 1) == b"\n":
        return Tail(size)
    start, tail = size, b""
    while start > 0:
        step = min(TAIL_CHUNK, start)
        start -= step
        tail = read_at(fd, step, start) + tail
        if b"\n" in tail:
            break
    cut = tail.rfind(b"\n")
    return Tail(size, start + cut + 1, tail[cut + 1 :])


def repair_torn_tail(
    path: Path, tail: Tail, whole_header: bool, whole_row: Callable[[list[str]], bool]
) -> list[str]:
    """Complete or set aside *tail* (a last line without its newline); what was done, for the
    run's notices. Only under the state lock, once the header is known to be the journal's."""
    assert tail.keep_until is not None
    fd = open_fd(path, os.O_RDWR, doing="repair")
    try:
        if not whole_header:  # only part of the header was written: nothing was recorded
            os.ftruncate(fd, 0)
            os.fsync(fd)
            return [f"{path} held only part of its header (a crash); it starts afresh"]
        row = next(csv.reader([tail.fragment.decode("utf-8", "replace")]), [])
        if whole_row(row):
            write_at(fd, b"\n", tail.size)
            os.fsync(fd)
            return [f"completed the last line of {path}, cut short by a crash"]
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = path.with_name(f"{path.name}.torn-{stamp}")
        saved = open_fd(aside, os.O_WRONLY | os.O_CREAT | os.O_APPEND, doing="write")
        try:
            os.write(saved, tail.fragment + b"\n")
            os.fsync(saved)
        finally:
            os.close(saved)
        os.ftruncate(fd, tail.keep_until)
        os.fsync(fd)
    finally:
        os.close(fd)
    return [
        f"the last line of {path} was cut short by a crash; it was moved to {aside}, "
        f"and what it recorded will be reconciled with the API on the next run"
    ]
