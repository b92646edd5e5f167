"""Append-only CSV journals: durable appends, last row per key wins, torn tails repaired.

Every local record kprov keeps (the mapping, learning instances, registrations) is such a
journal. A row is durable (flushed and fsync'ed) before ``append`` returns, so a result is
counted only once it would survive a crash. A crash can at worst cut the last line short; the
next load completes it when it is a whole row, otherwise moves it aside to a ``.torn-*`` file
and reports it, never dropping it silently.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from kprov.errors import ConfigError


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class CsvJournal:
    """A CSV file with a fixed header whose last column is a status. Thread-safe appends."""

    header: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    what = "journal"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle: IO[str] | None = None

    # ------------------------------------------------------------------ reading

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, fields) of every row after the header; damaged rows raise."""
        if not self.path.exists():
            return
        try:
            handle = self.path.open(encoding="utf-8", newline="")
        except OSError as exc:
            raise ConfigError(f"cannot read {self.what} {self.path}: {exc.strerror}") from None
        with handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return
            if tuple(header) != self.header:
                raise ConfigError(
                    f"{self.path} does not start with the {self.what} header "
                    f"{','.join(self.header)}",
                    hint=f"Point kprov at a kprov {self.what}, or move this file away.",
                )
            for row in reader:
                if not row:
                    continue
                if len(row) != len(self.header) or not self.valid(row):
                    raise ConfigError(
                        f"{self.what} {self.path}:{reader.line_num} is damaged: {row!r}",
                        hint="Restore it from a backup, or fix that line by hand; kprov will "
                        "not guess what it said.",
                    )
                yield reader.line_num, row

    def valid(self, row: list[str]) -> bool:
        """Whether a row with the right number of fields is complete and meaningful."""
        return bool(row[0]) and row[-1] in self.statuses

    def repair_tail(self) -> list[str]:
        """Complete or set aside a last line without its newline (a write cut by a crash)."""
        if not self.path.exists():
            return []
        size = self.path.stat().st_size
        if size == 0:
            return []
        with self.path.open("rb+") as handle:
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return []
            start, tail = size, b""
            while start > 0:
                step = min(1 << 16, start)
                start -= step
                handle.seek(start)
                tail = handle.read(step) + tail
                if b"\n" in tail:
                    break
            cut = tail.rfind(b"\n")
            fragment = tail[cut + 1 :]
            keep_until = start + cut + 1
            row = next(csv.reader([fragment.decode("utf-8", "replace")]), [])
            whole_row = len(row) == len(self.header) and self.valid(row)
            if whole_row or (keep_until == 0 and tuple(row) == self.header):
                handle.seek(size)
                handle.write(b"\n")
                handle.flush()
                os.fsync(handle.fileno())
                return [f"completed the last line of {self.path}, cut short by a crash"]
            stamp = time.strftime("%Y%m%dT%H%M%S")
            aside = self.path.with_name(f"{self.path.name}.torn-{stamp}")
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "wb") as saved:
                saved.write(fragment + b"\n")
            handle.truncate(keep_until)
            handle.flush()
            os.fsync(handle.fileno())
        return [
            f"the last line of {self.path} was cut short by a crash; it was moved to {aside}, "
            f"and what it recorded will be reconciled with the API on the next run"
        ]

    # ------------------------------------------------------------------ writing

    def _open_for_append(self) -> IO[str]:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fresh = not self.path.exists() or self.path.stat().st_size == 0
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
            if fresh:
                self._handle.write(",".join(self.header) + "\n")
                self._handle.flush()
                os.fsync(self._handle.fileno())
                fsync_dir(self.path.parent)
        return self._handle

    def append_rows(self, rows: Sequence[Sequence[str]]) -> None:
        """Write *rows* in one write and make them durable before returning."""
        if not rows:
            return
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        with self._lock:
            handle = self._open_for_append()
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None
