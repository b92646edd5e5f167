"""The mapping journal: external_user_id -> account_id, the partner's source of truth.

The API offers no lookup by external id, so a lost line is lost data. The file is a plain CSV
that is only ever appended to; every batch of rows is flushed and fsync'ed before the caller
counts it as done. The last row for an id wins (a later ``disabled`` row supersedes
``created``). A torn last line left by a crash is repaired on the next load: completed when it
is a whole row, otherwise moved aside to a ``.torn-*`` file and reported, never silently
dropped (the accounts it named are then recovered from the API on the next import).
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kprov.errors import ConfigError

HEADER = ("external_user_id", "account_id", "created_at", "sis_id", "status")
STATUS_CREATED = "created"
STATUS_RECOVERED = "recovered"
STATUS_DISABLED = "disabled"
STATUSES = (STATUS_CREATED, STATUS_RECOVERED, STATUS_DISABLED)


@dataclass(frozen=True, slots=True)
class MappingEntry:
    external_user_id: str
    account_id: str
    created_at: str
    sis_id: str = ""
    status: str = STATUS_CREATED

    def row(self) -> tuple[str, str, str, str, str]:
        return (self.external_user_id, self.account_id, self.created_at, self.sis_id, self.status)


@dataclass
class MappingIndex:
    """What the journal says now, held compactly (a million ids fit in a few hundred MB)."""

    account_of: dict[str, str] = field(default_factory=dict)
    sis_of: dict[str, str] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)
    repairs: list[str] = field(default_factory=list)  # what load() had to mend, to tell users

    def __contains__(self, external_user_id: object) -> bool:
        return external_user_id in self.account_of

    def __len__(self) -> int:
        return len(self.account_of)

    def apply(self, entry: MappingEntry) -> None:
        self.account_of[entry.external_user_id] = entry.account_id
        if entry.sis_id:
            self.sis_of[entry.external_user_id] = entry.sis_id
        if entry.status == STATUS_DISABLED:
            self.disabled.add(entry.external_user_id)
        else:
            self.disabled.discard(entry.external_user_id)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _fsync_dir(path: Path) -> None:
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


class MappingJournal:
    """Append-only CSV journal with durable appends and torn-tail repair. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._handle: IO[str] | None = None

    # ------------------------------------------------------------------ reading

    def load(self) -> MappingIndex:
        """Read the journal into an index, repairing a torn last line first."""
        index = MappingIndex()
        if not self.path.exists():
            return index
        index.repairs.extend(self._repair_tail())
        for line, row in self._rows():
            if len(row) != len(HEADER) or not row[0] or not row[1]:
                raise ConfigError(
                    f"mapping file {self.path}:{line} is damaged: {row!r}",
                    hint="Restore it from a backup, or fix that line by hand; kprov will not "
                    "guess which account an id belongs to.",
                )
            index.apply(MappingEntry(*row))
        return index

    def entries(self) -> Iterator[MappingEntry]:
        """Every row as written (history included), for export and show."""
        for _line, row in self._rows():
            if len(row) == len(HEADER):
                yield MappingEntry(*row)

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        try:
            handle = self.path.open(encoding="utf-8", newline="")
        except OSError as exc:
            raise ConfigError(f"cannot read mapping file {self.path}: {exc.strerror}") from None
        with handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return
            if tuple(header) != HEADER:
                raise ConfigError(
                    f"{self.path} does not start with the mapping header {','.join(HEADER)}",
                    hint="Point --mapping (or KPROV_MAPPING) at a kprov mapping file.",
                )
            for row in reader:
                if row:
                    yield reader.line_num, row

    def _repair_tail(self) -> list[str]:
        """Complete or set aside a last line without its newline (a write cut by a crash)."""
        size = self.path.stat().st_size
        if size == 0:
            return []
        with self.path.open("rb+") as handle:
            handle.seek(max(0, size - 1))
            if handle.read(1) == b"\n":
                return []
            chunk = 1 << 16
            start = size
            tail = b""
            while start > 0:
                step = min(chunk, start)
                start -= step
                handle.seek(start)
                tail = handle.read(step) + tail
                if b"\n" in tail:
                    break
            cut = tail.rfind(b"\n")
            fragment = tail[cut + 1 :]
            keep_until = start + cut + 1
            row = next(csv.reader([fragment.decode("utf-8", "replace")]), [])
            complete = (
                len(row) == len(HEADER) and row[0] and len(row[1]) >= 8 and row[4] in STATUSES
            )
            if complete or (keep_until == 0 and tuple(row) == HEADER):
                handle.seek(size)
                handle.write(b"\n")
                handle.flush()
                os.fsync(handle.fileno())
                return [f"completed the last line of {self.path}, cut short by a crash"]
            aside = self.path.with_name(f"{self.path.name}.torn-{time.strftime('%Y%m%dT%H%M%S')}")
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "wb") as saved:
                saved.write(fragment + b"\n")
            handle.truncate(keep_until)
            handle.flush()
            os.fsync(handle.fileno())
        return [
            f"the last line of {self.path} was cut short by a crash; it was moved to {aside} "
            "and the accounts it named will be recovered from the API on the next import"
        ]

    # ------------------------------------------------------------------ writing

    def _open_for_append(self) -> IO[str]:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fresh = not self.path.exists() or self.path.stat().st_size == 0
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
            if fresh:
                self._handle.write(",".join(HEADER) + "\n")
                self._handle.flush()
                os.fsync(self._handle.fileno())
                _fsync_dir(self.path.parent)
        return self._handle

    def append(self, entries: Sequence[MappingEntry]) -> None:
        """Write *entries* in one write and make them durable before returning."""
        if not entries:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows(e.row() for e in entries)
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
