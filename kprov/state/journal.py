"""Append-only CSV journals: durable appends, last row per key wins, torn tails repaired.

Every local record kprov keeps (the mapping, learning instances, registrations) is such a
journal. A row is durable (written and fsync'ed) before ``append_rows`` returns, so a result is
counted only once it would survive a crash; rows that arrive together from several threads
share one write and one fsync (group commit). A failed write is rolled back (truncated away),
and a crash can at worst cut the last line short: the next locked load completes it when it is
a whole row, otherwise moves it aside to a ``.torn-*`` file and reports it, never dropping it
silently. A file that does not start with the journal's header is refused before anything is
read or repaired, and left exactly as it was.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kprov.errors import ConfigError, Interrupted, KprovError, StorageError
from kprov.outside_text import printable
from kprov.state.blocks import csv_lines
from kprov.state.files import (
    UNCHANGED,
    BoundedReader,
    ensure_private_dir,
    fsync_dir,
    open_fd,
    storage_error,
)
from kprov.state.journal_tail import TAIL_CHUNK, read_tail, repair_torn_tail
from kprov.state.portable import read_at

DAMAGE_EXCERPT = 60  # characters of a damaged line quoted in the error (ids are personal data)


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class _Group:
    """Rows from any number of callers, written and fsync'ed together."""

    chunks: list[bytes] = field(default_factory=list)
    done: bool = False
    error: BaseException | None = None


class CsvJournal:
    """A CSV file with a fixed header whose last column is a status. Thread-safe appends."""

    header: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    what = "journal"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cond = threading.Condition()
        self._fd: int | None = None
        self._needs_header = False
        self._open_group: _Group | None = None
        self._writing = False
        self._broken: str | None = None  # why appends are refused after a failed write
        self._broken_hint: str | None = None

    # ------------------------------------------------------------------ reading

    def _open_read(self) -> int | None:
        try:
            return open_fd(self.path, os.O_RDONLY, doing="read")
        except FileNotFoundError:
            return None

    def _header_line(self) -> bytes:
        return (",".join(self.header) + "\n").encode("utf-8")

    def _check_header(self, fd: int) -> bool:
        """Refuse a file that is not this journal; False when it holds only a torn header."""
        first = read_at(fd, TAIL_CHUNK, 0)
        if not first:
            return True
        end = first.find(b"\n")
        if end < 0:
            if len(first) < TAIL_CHUNK and self._header_line().startswith(first):
                return False  # a crash while the file was being created
            self._refuse_foreign()
        if first[: end + 1] != self._header_line():  # byte for byte: the csv module would
            line = first[: end + 1].decode("utf-8", "replace")  # read a CR LF header as ours
            plain = line.removeprefix("\ufeff").rstrip("\r\n")
            self._refuse_foreign(resaved=tuple(next(csv.reader([plain]), [])) == self.header)
        return True

    def _refuse_foreign(self, *, resaved: bool = False) -> None:
        """Refuse the file; *resaved*: its header is this journal's but for a byte order mark
        or CR LF, as a spreadsheet writes when a person opens the file and saves it (which may
        also have changed ids: leading zeros, scientific notation), so it is not read either."""
        if resaved:
            raise ConfigError(
                f"{self.path} was saved by a spreadsheet or editor (a byte order mark or CR LF "
                f"line ends where kprov writes neither): it is not read, since the same save may "
                f"have changed ids (leading zeros, 1.2E+05)",
                hint=f"Restore the {self.what} from a backup (docs/state.md); if you know only "
                f"its line ends changed (a copy through a Windows tool), `dos2unix` restores it; "
                f"to look at it, open a copy in a text editor; {UNCHANGED}.",
            )
        raise ConfigError(
            f"{self.path} is not a kprov {self.what}: it does not start with the header "
            f"{','.join(self.header)}",
            hint=f"Point kprov at its own {self.what} (check --mapping / KPROV_MAPPING / "
            f"KPROV_STATE_DIR), or move this file away; {UNCHANGED}.",
        )

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, fields) of every complete row after the header; damaged rows raise.

        A torn last line (no newline: a crash, or a run writing right now) is not read; only a
        locked load repairs it (``repair_tail``).
        """
        with self.text() as handle:
            if handle is not None:
                yield from self.parse(handle)

    @contextmanager
    def text(self, offset: int = 0) -> Iterator[io.TextIOWrapper | None]:
        """The journal's text, header included, without a torn last line (None: no file, or
        only part of a header). Undecodable text and read errors raise ConfigError and
        StorageError, as ``rows`` does. With *offset* (the end of a line, where a snapshot's
        bytes end: ``state.snapshot``), the text from that byte on."""
        fd = self._open_read()
        if fd is None:
            yield None
            return
        try:
            whole_header = self._check_header(fd)
            tail = read_tail(fd) if whole_header else None
        except BaseException:
            os.close(fd)
            raise
        if tail is None:
            os.close(fd)
            yield None
            return
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        if tail.keep_until is None:
            raw: io.RawIOBase = io.FileIO(fd, closefd=True)
        else:
            raw = BoundedReader(fd, max(0, tail.keep_until - offset))
        try:
            with io.TextIOWrapper(
                io.BufferedReader(raw, TAIL_CHUNK), encoding="utf-8", newline=""
            ) as handle:
                yield handle
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{self.what} {self.path} is not valid UTF-8 ({exc.reason} at byte {exc.start} "
                "of a block)",
                hint="Restore it from a backup; kprov will not guess what it said.",
            ) from None
        except OSError as exc:
            raise storage_error(self.path, exc, doing="read", after=UNCHANGED) from None
        finally:
            if tail.keep_until is not None:
                os.close(fd)

    def parse(
        self, lines: Iterable[str], *, header: bool = True, first_line: int = 1
    ) -> Iterator[tuple[int, list[str]]]:
        """The rows of *lines* (the header first when *header*), numbered from *first_line*."""
        reader = csv.reader(lines)
        if header:
            next(reader, None)  # the header, checked already
        offset = first_line - 1
        width, valid = len(self.header), self.valid
        while True:
            start = offset + reader.line_num + 1  # a quoted field may run over several lines
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise self._damaged(start, offset + reader.line_num, [], str(exc)) from None
            if not row:
                continue
            if len(row) != width or not valid(row):
                raise self._damaged(start, offset + reader.line_num, row, "")
            yield start, row

    def _damaged(self, start: int, end: int, row: list[str], why: str) -> ConfigError:
        """The line where the damage starts, and a short excerpt of it: never the rest of the
        file (an unbalanced quote swallows every line after it into one "row")."""
        line = ",".join(row).split("\n", 1)[0]
        cut = "…" if len(line) > DAMAGE_EXCERPT else ""
        spread = f" (a quote opened there runs to line {end})" if end > start else ""
        excerpt = f"'{printable(line[:DAMAGE_EXCERPT])}{cut}'"
        shown = f": {excerpt}" if row else f" ({why})" if why else ""
        return ConfigError(
            f"{self.what} {self.path}:{start} is damaged{spread}{shown}",
            hint="Restore it from a backup, or fix that line by hand; kprov will not guess "
            "what it said.",
        )

    def valid(self, row: list[str]) -> bool:
        """Whether a row with the right number of fields is complete and meaningful."""
        return bool(row[0]) and row[-1] in self.statuses

    def _whole_row(self, row: list[str]) -> bool:
        return len(row) == len(self.header) and self.valid(row)

    def check(self) -> None:
        """Refuse (ConfigError) a file that is not this journal; reads the header only."""
        fd = self._open_read()
        if fd is not None:
            try:
                self._check_header(fd)
            finally:
                os.close(fd)

    def torn_notice(self) -> list[str]:
        """What a read without repair skipped: the notice for a torn last line, if any."""
        fd = self._open_read()
        if fd is None:
            return []
        try:
            if not self._check_header(fd) or read_tail(fd).keep_until is None:
                return []
        finally:
            os.close(fd)
        return [
            f"the last line of {self.path} is incomplete (a crash, or a run writing it now); "
            "it was not read, and the next run that holds the lock will repair it"
        ]

    def repair_tail(self) -> list[str]:
        """Complete or set aside a last line without its newline (a write cut by a crash).

        Call only under the state lock. The header is checked first: a file that is not this
        journal is refused before a single byte of it is changed.
        """
        fd = self._open_read()
        if fd is None:
            return []
        try:
            whole_header = self._check_header(fd)
            tail = read_tail(fd)
        finally:
            os.close(fd)
        if tail.keep_until is None:
            return []
        try:
            return repair_torn_tail(self.path, tail, whole_header, self._whole_row)
        except OSError as exc:
            raise storage_error(self.path, exc, doing="repair") from None

    # ------------------------------------------------------------------ writing

    def append_rows(self, rows: Sequence[Sequence[str]]) -> None:
        """Write *rows* together and return once they are durable (fsync'ed).

        Callers in several threads are grouped: whoever finds no write in progress writes and
        fsyncs every row queued so far, in one write and one fsync, while the others wait for
        theirs. If that write fails, it is rolled back and every caller of the group gets the
        error (StorageError, exit 9): none of its rows counts as recorded. After a failure the
        journal refuses further appends, so nothing is ever written after a damaged tail.
        """
        if not rows:
            return
        data = csv_lines(rows).encode("utf-8")
        with self._cond:
            self._raise_if_broken()
            group = self._open_group
            if group is None:
                group = self._open_group = _Group()
            group.chunks.append(data)
            while not group.done:
                if self._writing:
                    self._cond.wait()
                    continue
                self._lead()  # writes the open group: ours, or an earlier one still waiting
        if group.error is not None:
            raise self._caller_error(group.error)

    def ensure_exists(self) -> None:
        """Create the journal (its header only) if it does not exist yet; durable."""
        if self.path.exists():
            return
        with self._cond:
            while self._writing:
                self._cond.wait()
            self._raise_if_broken()
            if not self.path.exists():
                self._commit([])

    def _lead(self) -> None:
        """Write and fsync the open group; called with the condition held, returns with it."""
        batch, self._open_group = self._open_group, None
        assert batch is not None
        self._writing = True
        self._cond.release()
        try:
            self._raise_if_broken()
            self._commit(batch.chunks)
        except BaseException as exc:
            batch.error = exc
        finally:
            self._cond.acquire()
            self._writing = False
            batch.done = True
            self._cond.notify_all()

    def _raise_if_broken(self) -> None:
        if self._broken is not None:
            raise StorageError(
                self._broken,
                hint=self._broken_hint
                or "Fix the cause this message names, then rerun: nothing recorded so far is lost.",
            )

    def _caller_error(self, error: BaseException) -> BaseException:
        """A fresh exception per waiting caller (one object must not be raised in two threads)."""
        if isinstance(error, KprovError):
            return type(error)(error.message, hint=error.hint)
        if isinstance(error, OSError):
            return storage_error(self.path, error, doing="write")
        return Interrupted(f"stopped before these rows were saved to {self.path}")

    def _ensure_open(self) -> int:
        if self._fd is not None:
            return self._fd
        ensure_private_dir(self.path.parent)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        fd = open_fd(self.path, flags, doing="write")
        try:
            probe = self._open_read()
            if probe is not None:
                try:
                    whole_header = self._check_header(probe)
                    tail = read_tail(probe)
                finally:
                    os.close(probe)
                if not whole_header or tail.keep_until is not None:
                    raise ConfigError(
                        f"{self.path} ends with an incomplete line; kprov appends only after "
                        "loading it under the state lock, which repairs it",
                        hint="Rerun the command: the lock and the repair come first.",
                    )
            self._needs_header = os.fstat(fd).st_size == 0
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return fd

    def _commit(self, chunks: list[bytes]) -> None:
        try:
            fd = self._ensure_open()
        except OSError as exc:
            raise storage_error(self.path, exc, doing="write") from None
        fresh = self._needs_header
        data = b"".join([self._header_line(), *chunks] if fresh else chunks)
        before = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException as exc:
            self._roll_back(fd, before, exc)
            raise
        if fresh:
            self._needs_header = False
            fsync_dir(self.path.parent)

    def _roll_back(self, fd: int, size: int, cause: BaseException) -> None:
        """Cut a failed write away, so the file holds only rows that were reported durable."""
        if isinstance(cause, OSError):  # later callers see the root cause and its remedy
            root = storage_error(self.path, cause, doing="write")
            self._broken, self._broken_hint = root.message, root.hint
        else:
            self._broken = f"an earlier write to {self.path} failed ({type(cause).__name__})"
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        except OSError:
            self._broken += " (its last line may be incomplete: the next run repairs it)"

    def close(self) -> None:
        with self._cond:
            while self._writing:
                self._cond.wait()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
