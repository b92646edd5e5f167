"""Snapshots of loaded indexes: a cache beside a journal, trusted only for the bytes it covers.

Reading a statewide journal from scratch every night (the registrations: 2,000,000 rows,
284 MB; the mapping: a million) was most of a no-change sync's time. A snapshot
(``<journal>.idx``) holds what an index was after loading the journal's first N bytes, in a
form ``marshal`` reads at C speed (lists, bytes, ints and strings only: never pickled
classes, as a state directory may hold other users' files). It is trusted only when the
journal's first N bytes are still exactly the ones it was made from: their SHA-256 is
computed on every open (in a thread, while the body is read) and compared. Then the journal's
bytes after N are read as a load reads them (the same code: torn tails, damaged rows and
repairs behave as always, line numbers counted from the snapshot's). Anything off -- another
format, Python or kprov version, a body that fails its own checksum, a torn file, a journal
shorter than N or with other bytes, another journal's snapshot -- and it is ignored: the
journal is read in full, as without one, and nothing is said (a ``--debug`` line).

A snapshot is never the record: it can be deleted at any time. It is written only under the
state lock, once a load that needed no repair has passed the state's checks and before
anything is recorded (``state.local``), and only while the journal is still the size that
load read; atomically (a temporary file renamed over it, mode 0600, no fsync: a lost one
costs one full read). A write that fails is dropped silently. Its body is written and read a
record at a time (columns in lists of 65,536), and its header last, as a trailer: a whole
body in one ``marshal`` string cost a statewide plan ~70 % more memory at its peak (5,000,000
people: 1.7 GiB, over the 1 GiB bar), a record at a time ~1 %.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import logging
import marshal
import os
import secrets
import sys
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from kprov import __version__
from kprov.errors import StorageError
from kprov.state.files import BINARY, NOFOLLOW, open_fd

log = logging.getLogger("kprov.state")

SUFFIX = ".idx"
MAGIC = b"kprov index snapshot\n"
FORMAT = 2
# marshal's format 2: no back-references. Formats 3 and up keep a table of every object
# written that anything else refers to -- every id and account of an index held by its dict
# -- which at 5,000,000 people cost ~700 MB more at its peak than the snapshot itself.
MARSHAL_VERSION = 2
_LENGTH_BYTES = 8
_CHUNK = 1 << 22  # bytes hashed at a time (hashlib lets go of the GIL on large buffers)
# a read of the journal after its snapshot rewrites it when the bytes read after the covered
# ones are more than this share of them (and more than REWRITE_MIN): a few nights of changes
# are read after an older snapshot, not a rewrite of 150 MB every night
REWRITE_SHARE = 8
REWRITE_MIN = 1 << 20


@dataclass(frozen=True)
class Covered:
    """The journal bytes a snapshot stands for: the first *length* bytes, *lines* lines."""

    length: int
    lines: int

    @property
    def next_line(self) -> int:
        """The line number of the first line after them."""
        return self.lines + 1


def snapshot_path(journal: Path) -> Path:
    return journal.with_name(journal.name + SUFFIX)


def _identity(kind: str, journal: Path) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "kind": kind,
        "kprov": __version__,
        "python": list(sys.version_info[:2]),
        "marshal": MARSHAL_VERSION,
        "journal": journal.name,
    }


def _journal_digest(journal: Path, length: int, *, count_lines: bool) -> tuple[str, int] | None:
    """SHA-256 (hex) of the journal's first *length* bytes, and how many lines they hold
    (0 unless *count_lines*: a snapshot whose digest matches has the count it was written
    with); None when the journal is shorter, or cannot be read."""
    digest = hashlib.sha256()
    lines = 0
    try:
        fd = open_fd(journal, os.O_RDONLY, doing="read")
    except (OSError, StorageError):
        return None
    try:
        if os.fstat(fd).st_size < length:
            return None
        buffer = bytearray(min(_CHUNK, length))  # read into, not mapped: a file cut
        view = memoryview(buffer)  # short meanwhile must not kill the process (SIGBUS)
        with open(fd, "rb", buffering=0, closefd=False) as handle:
            left = length
            while left > 0:
                got = handle.readinto(view[: min(_CHUNK, left)])
                if not got:
                    return None
                digest.update(view[:got])  # hashlib and the read let go of the GIL
                if count_lines:
                    lines += buffer.count(b"\n", 0, got)
                left -= got
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return digest.hexdigest(), lines


class _Digest(threading.Thread):
    """``_journal_digest`` in a thread, so the snapshot's body is read meanwhile."""

    def __init__(self, journal: Path, length: int) -> None:
        super().__init__(name="kprov-snapshot-digest", daemon=True)
        self._journal, self._length = journal, length
        self.result: tuple[str, int] | None = None

    def run(self) -> None:
        self.result = _journal_digest(self._journal, self._length, count_lines=False)


def read_snapshot(journal: Path, kind: str) -> tuple[Covered, Any] | None:
    """The data of *journal*'s snapshot and the bytes it covers, when the journal still
    starts with exactly those bytes; else None (read the journal in full)."""
    path = snapshot_path(journal)
    try:
        fd = open_fd(path, os.O_RDONLY, doing="read")  # never through a link, nor a FIFO
    except FileNotFoundError:
        return None
    except (OSError, StorageError) as exc:
        log.debug("snapshot %s not read (%s): reading the journal in full", path, exc)
        return None
    try:
        with open(fd, "rb", closefd=False) as handle:
            got = _checked(journal, kind, handle)
    except OSError as exc:
        got = str(exc)
    finally:
        os.close(fd)
    if isinstance(got, str):
        log.debug("snapshot %s ignored (%s): reading the journal in full", path, got)
        return None
    log.debug("snapshot %s used: %d bytes of %s", path, got[0].length, journal.name)
    return got


def _checked(journal: Path, kind: str, handle: BinaryIO) -> tuple[Covered, Any] | str:
    """The snapshot's (covered bytes, data), or why it cannot be trusted. Its header is a
    trailer (written once the body's length and CRC-32 are known)."""
    total = handle.seek(0, io.SEEK_END)
    handle.seek(0)
    if handle.read(len(MAGIC)) != MAGIC or total < len(MAGIC) + _LENGTH_BYTES:
        return "not a snapshot"
    handle.seek(total - _LENGTH_BYTES)
    size = int.from_bytes(handle.read(_LENGTH_BYTES), "big")
    head_at = total - _LENGTH_BYTES - size
    if head_at < len(MAGIC):
        return "a damaged header"
    handle.seek(head_at)
    try:
        header = marshal.loads(handle.read(size))
    except (EOFError, ValueError, TypeError, MemoryError):  # a damaged count: a huge list
        return "a damaged header"
    if not isinstance(header, dict) or any(
        header.get(name) != value for name, value in _identity(kind, journal).items()
    ):
        return "another format, version or journal"
    length, lines = header.get("length"), header.get("lines")
    digest, body_crc = header.get("sha256"), header.get("body_crc32")
    if not (
        isinstance(length, int)
        and isinstance(lines, int)
        and isinstance(digest, str)
        and isinstance(body_crc, int)
    ):
        return "a damaged header"
    if header.get("body_length") != head_at - len(MAGIC):
        return "a torn or damaged body"
    try:
        if os.stat(journal).st_size < length:
            return "the journal is shorter than the bytes it covers"
    except OSError:
        return "no journal"
    hashing = _Digest(journal, length)
    hashing.start()
    try:
        handle.seek(len(MAGIC))
        data = _read_body(handle, head_at - len(MAGIC), body_crc)
    finally:
        hashing.join()
    if isinstance(data, str):
        return data
    if hashing.result != (digest, 0):
        return "the journal's bytes are not the ones it was made from"
    return Covered(length, lines), data


# A snapshot's body is a stream of marshal records, each after its length (8 bytes), so that
# neither writing nor reading it holds a second copy of a statewide index: the number of
# parts of the data (a tuple), then each part: ("list", chunks) and its items in lists of
# at most _ITEMS, or ("one",) and the part whole.
_ITEMS = 1 << 16


def _body_records(data: tuple[Any, ...]) -> Iterator[bytes]:
    def record(value: Any) -> bytes:
        packed = marshal.dumps(value, MARSHAL_VERSION)
        return len(packed).to_bytes(_LENGTH_BYTES, "big") + packed

    yield record(len(data))
    for part in data:
        if isinstance(part, list):
            chunks = range(0, len(part), _ITEMS)
            yield record(("list", len(chunks)))
            for start in chunks:
                yield record(part[start : start + _ITEMS])
        else:
            yield record(("one",))
            yield record(part)


class _Records:
    """The body's records in turn, each counted into the running CRC-32."""

    def __init__(self, handle: BinaryIO, length: int) -> None:
        self.handle, self.left, self.crc = handle, length, 0

    def next(self) -> Any:
        size_bytes = self.handle.read(_LENGTH_BYTES)
        size = int.from_bytes(size_bytes, "big")
        if len(size_bytes) != _LENGTH_BYTES or size > self.left - _LENGTH_BYTES:
            raise ValueError("a torn or damaged body")
        packed = self.handle.read(size)
        if len(packed) != size:
            raise ValueError("a torn or damaged body")
        self.left -= _LENGTH_BYTES + size
        self.crc = zlib.crc32(packed, zlib.crc32(size_bytes, self.crc))
        return marshal.loads(packed)


def _read_body(handle: BinaryIO, length: int, crc: int) -> tuple[Any, ...] | str:
    """The data of a body of *length* bytes whose CRC-32 is *crc*; or why not."""
    records = _Records(handle, length)
    parts: list[Any] = []
    try:
        count = records.next()
        if not isinstance(count, int):
            return "a damaged body"
        for _ in range(count):
            shape = records.next()
            if shape == ("one",):
                parts.append(records.next())
            elif isinstance(shape, tuple) and len(shape) == 2 and shape[0] == "list":
                items: list[Any] = []
                for _chunk in range(int(shape[1])):
                    chunk = records.next()
                    if not isinstance(chunk, list):
                        return "a damaged body"
                    items.extend(chunk)
                parts.append(items)
            else:
                return "a damaged body"
    except (EOFError, ValueError, TypeError, MemoryError):  # MemoryError: a damaged count
        return "a torn or damaged body"  # asked marshal for a list of billions of items
    if records.left or records.crc != crc:
        return "a torn or damaged body"
    return tuple(parts)


def write_snapshot(journal: Path, kind: str, covered_length: int, data: tuple[Any, ...]) -> bool:
    """Write *journal*'s snapshot of *data* (an index after its first *covered_length*
    bytes); call only under the state lock. False, writing nothing, when anything fails."""
    path = snapshot_path(journal)
    for stale in path.parent.glob(f"{glob.escape(path.name)}.tmp-*"):  # a run killed writing
        with contextlib.suppress(OSError):
            stale.unlink()
    temp = path.with_name(f"{path.name}.tmp-{secrets.token_hex(6)}")
    try:
        got = _journal_digest(journal, covered_length, count_lines=True)
        if got is None:
            return False
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | BINARY, 0o600)
        try:
            _write_all(fd, MAGIC)
            body_length, body_crc = 0, 0
            for record in _body_records(data):
                _write_all(fd, record)
                body_length += len(record)
                body_crc = zlib.crc32(record, body_crc)
            header = _identity(kind, journal) | {
                "length": covered_length,
                "lines": got[1],
                "sha256": got[0],
                "body_length": body_length,
                "body_crc32": body_crc,
            }
            head = marshal.dumps(header, MARSHAL_VERSION)
            _write_all(fd, head + len(head).to_bytes(_LENGTH_BYTES, "big"))  # a trailer
        finally:
            os.close(fd)
        os.replace(temp, path)
    except (OSError, ValueError, OverflowError) as exc:  # a cache: never fail the run for it
        log.debug("snapshot %s not written (%s)", path, exc)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        return False
    log.debug("snapshot %s written: %d bytes of %s", path, covered_length, journal.name)
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def worth_rewriting(covered: Covered | None, length: int) -> bool:
    """Whether a load that read up to byte *length* should write a new snapshot: always
    after a full read; after a snapshot, when much was read after it."""
    if covered is None:
        return True
    after = length - covered.length
    return after > REWRITE_MIN and after * REWRITE_SHARE > covered.length
