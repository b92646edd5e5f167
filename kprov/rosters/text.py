"""Roster text as lines: regular files or stdin, BOMs, encodings and line endings.

Districts hand over whatever the SIS or Excel wrote: CR-only line endings, Windows-1252,
UTF-16 with a BOM ("Unicode text"), a fifo by mistake. This module turns each into decoded
lines for the csv module, and what it cannot read into a precise problem: the line, the
byte, and the exact option to pass (and its spelling in a manifest, for `kprov sync`).
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path
from typing import IO, Any, cast

from kprov.rosters.encodings import detect_encoding, encoding_label, guess_encoding
from kprov.rosters.model import Problem

STDIN_NAME = "-"
REFUSED = ""  # what TextLines yields for a line it reported and cannot give
MAX_LINE_CHARS = 1 << 20  # a roster line longer than this is a broken export, not data
BLOCK_LINES = 4096  # lines read at a time by ``TextLines.blocks``
MAX_PROBLEMS = 1000  # kept per run; past it they are only counted
HEAD_BYTES = 64
_ESCAPED = re.compile("[\udc80-\udcff]")  # undecodable bytes, kept by 'surrogateescape'
_SAMPLE_LINES = 200


_READING_A_MANIFEST: ContextVar[bool] = ContextVar("reading_a_manifest", default=False)


@contextmanager
def manifest_words() -> Iterator[None]:
    """Rosters read for a manifest (`kprov sync`): their remedies name manifest keys only,
    since `sync` has no `--encoding` or `--delimiter` to pass."""
    token = _READING_A_MANIFEST.set(True)
    try:
        yield
    finally:
        _READING_A_MANIFEST.reset(token)


def option_fix(option: str, value: str, manifest: str) -> str:
    """A remedy that works where the roster is read: on the command line (*option*), or in a
    `kprov sync` manifest (*manifest*: where to write what), or both when it is not known."""
    if _READING_A_MANIFEST.get():
        return f"set {manifest}"
    return f"pass {option} {value} (in a manifest: {manifest})"


def encoding_fix(codec: str) -> str:
    """``pass --encoding X (in a manifest: `encoding: X` on that roster's entry)``."""
    return option_fix("--encoding", codec, f"`encoding: {codec}` on that roster's entry")


def delimiter_fix(delimiter: str) -> str:
    """``pass --delimiter ';' (in a manifest: `delimiter: ';'` on that roster's entry)``."""
    word = "tab" if delimiter == "\t" else f"'{delimiter}'"  # quoted: shell and YAML alike
    return option_fix("--delimiter", word, f"`delimiter: {word}` on that roster's entry")


NUL_FIX = (
    f"the file is binary, or UTF-16 without a BOM: save it as UTF-8 CSV, or "
    f"{encoding_fix('utf-16-le')}"
)
LINE_TOO_LONG = (
    f"line is longer than {MAX_LINE_CHARS // 1024} KiB; the file is probably not a roster "
    "export (or lacks line breaks)"
)


class Problems(list[Problem]):
    """Problems found so far. Past MAX_PROBLEMS they are only counted, so a broken
    ten-million-row file cannot fill the memory with messages."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def append(self, problem: Problem) -> None:
        if len(self) < MAX_PROBLEMS:
            super().append(problem)
        else:
            self.dropped += 1

    def extend(self, problems: object) -> None:
        for problem in problems:  # type: ignore[attr-defined]
            self.append(problem)

    @property
    def total(self) -> int:
        return len(self) + self.dropped


@dataclass(frozen=True)
class TextOptions:
    """How to read text: None means detect (BOM, else UTF-8; the delimiter from the header)."""

    encoding: str | None = None
    delimiter: str | None = None


def open_regular(path: Path) -> IO[bytes] | str:
    """Open *path* if it is a regular file; otherwise the reason it is refused.

    Opening never blocks: O_NONBLOCK keeps a fifo without a writer from hanging, and the type
    is checked on the open descriptor, so a device such as /dev/zero is never read.
    """
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # Windows: no text-mode translation
    for posix_only in ("O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC"):
        flags |= getattr(os, posix_only, 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return "no such file; check the path"
    except PermissionError:
        return "permission denied; check the file's permissions"
    except OSError as exc:
        return f"cannot open: {exc.strerror}"
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = (
            "a directory" if stat.S_ISDIR(mode)
            else "a named pipe (fifo)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file"
        )  # fmt: skip
        return (
            f"is {kind}, not a roster file; give the path of a regular file "
            "(or `-` to read standard input)"
        )
    return os.fdopen(fd, "rb")


def _peek(stream: IO[bytes], size: int) -> tuple[IO[bytes], bytes]:
    peekable: Any = stream if hasattr(stream, "peek") else io.BufferedReader(cast(Any, stream))
    return peekable, bytes(peekable.peek(size)[:size])


@dataclass
class _Undecodable:
    line: int
    column: int
    byte: int


@dataclass
class TextLines:
    """The decoded lines of one input, numbered; what cannot be read is recorded, not raised.

    Each physical line yields exactly one string, so the csv module's line count is the
    file's; a refused line (reported) yields "", which no real line is. Line endings are
    kept as written (LF, CRLF, CR or a mix): the csv module understands all of them.
    """

    name: str
    binary: IO[bytes]
    problems: list[Problem]
    encoding: str | None = None
    number: int = 0  # physical lines read so far
    codec: str = field(init=False, default="utf-8")
    _text: io.TextIOWrapper = field(init=False, repr=False)
    _undecodable: list[_Undecodable] = field(init=False, default_factory=list)
    _more_undecodable: int = field(init=False, default=0)
    _cr_only: bool = field(init=False, default=False)
    _sample: bytearray = field(init=False, default_factory=bytearray)
    # lines ``blocks`` read and gave back, served first to the line-by-line reading
    _held: deque[str] = field(init=False, default_factory=deque)
    _failure: BaseException | None = field(init=False, default=None)  # raised once held runs out

    def _open(self) -> io.TextIOWrapper:
        self.binary, head = _peek(self.binary, HEAD_BYTES)
        self.codec = detect_encoding(head, self.encoding)
        return io.TextIOWrapper(
            cast(Any, self.binary), encoding=self.codec, errors="surrogateescape", newline=""
        )

    def problem(
        self, line: int | None, message: str, column: int | None = None, fix: str = ""
    ) -> None:
        self.problems.append(
            Problem(self.name, line, f"{message}; {fix}" if fix else message, column)
        )

    def _readline(self, limit: int) -> str:
        if self._held:
            return self._held.popleft()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        return self._text.readline(limit)

    def blocks(self, count: int = BLOCK_LINES) -> Iterator[list[str]]:
        """The next lines, *count* at a time, while every one needs no check: each ends with
        LF or CRLF (no lone CR), holds no NUL and no undecodable byte, and is within the
        length limit. The first block that does not is given back (``unread``) and the blocks
        end; iterating (``__iter__``, already started by the header) goes on from there, line
        by line, exactly as if no block had been read. The caller numbers the lines."""
        # UTF-8 read with surrogateescape cannot fail to decode; a file (not a zip member)
        # cannot be damaged half way: a block is all read, or it is an I/O error
        if self.codec not in ("utf-8", "utf-8-sig") or not isinstance(
            self.binary, io.BufferedReader
        ):
            return
        limit = MAX_LINE_CHARS
        read = iter(partial(self._text.readline, limit), "")  # readline(limit) until the end
        while not self._held and self._failure is None:
            try:
                lines = list(islice(read, count))  # no Python code runs per line
            except OSError as exc:
                self._failure, lines = exc, []  # raised where reading line by line goes on
            text = "".join(lines)
            if (
                not lines
                or self._failure is not None
                or "\x00" in text
                or text.count("\r") != text.count("\r\n")
                or not lines[-1].endswith("\n")
                or max(map(len, lines)) >= limit
                or not (text.isascii() or _ESCAPED.search(text) is None)
            ):
                self.unread(lines)
                return
            self.number += len(lines)
            yield lines

    def unread(self, lines: list[str]) -> None:
        """Give back lines taken from ``blocks``: they are read again, first, line by line."""
        self._held.extendleft(reversed(lines))

    def __iter__(self) -> Iterator[str]:
        limit = MAX_LINE_CHARS
        try:
            self._text = self._open()
            readline = self._readline
            while True:
                line = readline(limit)
                if not line:
                    break
                self.number += 1
                if len(line) >= limit and line[-1] not in "\r\n":
                    self._too_long()
                    yield REFUSED
                    continue
                if not line.isascii() and _ESCAPED.search(line):
                    self._remember_undecodable(line)
                    yield REFUSED
                    continue
                if "\x00" in line:
                    self.problem(
                        self.number, "line contains a NUL byte", line.index("\x00") + 1, NUL_FIX
                    )
                    yield REFUSED
                    continue
                yield line
        except UnicodeDecodeError as exc:
            self.problem(
                self.number + 1,
                f"cannot decode the file as {encoding_label(self.codec)} ({exc.reason})",
                fix=f"save the file as UTF-8, or give its encoding: {encoding_fix('NAME')}",
            )
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            self.problem(self.number + 1, f"the file is damaged ({exc})", fix="export it again")
        except OSError as exc:
            self.problem(self.number + 1, f"cannot read: {exc.strerror or exc}")
        self._report_undecodable()

    def _too_long(self) -> None:
        self.problem(self.number, LINE_TOO_LONG)
        line = "x"
        while line and line[-1] not in "\r\n":  # skip the rest, a piece at a time
            line = self._readline(MAX_LINE_CHARS)

    def _remember_undecodable(self, line: str) -> None:
        found = _ESCAPED.search(line)
        assert found is not None
        if len(self._undecodable) >= MAX_PROBLEMS:
            self._more_undecodable += 1
            return
        self._undecodable.append(
            _Undecodable(self.number, found.start() + 1, ord(found.group()) - 0xDC00)
        )
        if not self._sample:
            self._cr_only = line.endswith("\r")
        if len(self._undecodable) <= _SAMPLE_LINES and len(self._sample) < 65536:
            self._sample += line.encode(self.codec, "surrogateescape")

    def _report_undecodable(self) -> None:
        if not self._undecodable:
            return
        # classic-Mac CR-only line endings come with the Mac's own encoding
        prefer = ("mac_roman",) if self._cr_only else ()
        guess = guess_encoding(bytes(self._sample), self.codec, prefer)
        if guess:
            fix = (
                f"the file looks like {guess}: {encoding_fix(guess)}, or save it as UTF-8 "
                "(in Excel 'CSV UTF-8')"
            )
        else:
            fix = f"give the file's encoding: {encoding_fix('NAME')}, or save it as UTF-8"
        label = encoding_label(self.codec)
        for bad in self._undecodable:
            self.problem(bad.line, f"byte 0x{bad.byte:02X} is not valid {label}", bad.column, fix)
        if isinstance(self.problems, Problems):
            self.problems.dropped += self._more_undecodable
        self._undecodable.clear()
