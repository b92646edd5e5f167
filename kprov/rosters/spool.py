"""Standard input, copied aside so it can be read twice, and checked while it is copied.

A file has an end; standard input may not (`< /dev/zero`, a producer stuck in a loop). So the
copy stops at the first sign that the input is not a roster, with the message a file would
get: a NUL byte, a line longer than MAX_LINE_CHARS, or more bytes than a roster can hold.
"""

from __future__ import annotations

import codecs
from typing import IO

from kprov.rosters.encodings import detect_encoding
from kprov.rosters.model import Problem
from kprov.rosters.text import (
    HEAD_BYTES,
    LINE_TOO_LONG,
    MAX_LINE_CHARS,
    NUL_FIX,
)

MAX_STDIN_BYTES = 1 << 30  # ten million rows take about 300 MB; a file has no such bound
CHUNK = 1 << 18  # shorter than MAX_LINE_CHARS: a line within one chunk is never too long


class _LineWatch:
    """Follows line breaks (LF, CRLF or CR, as the csv module reads them) across chunks of
    decoded text, with str methods only: nothing is done per line."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.line = 1  # the line the next character belongs to
        self.run = 0  # characters of that line seen so far
        self.after_cr = False  # the last chunk ended with CR: a leading LF ends no new line
        self.nul: int | None = None  # column of a NUL in the current line

    def feed(self, text: str) -> Problem | None:
        """The first NUL or overlong line in *text*, or None.

        A NUL is reported once its line has ended: a file's reader names an overlong line
        for being overlong, whatever it holds."""
        if self.nul is None:
            at = text.find("\x00")
            found = self._advance(text if at < 0 else text[:at])
            if found is not None or at < 0:
                return found
            self.nul = self.run + 1
            text = text[at:]
        line = self.line
        found = self._advance(text)
        if found is None and self.line > line:
            return Problem(self.name, line, f"line contains a NUL byte; {NUL_FIX}", self.nul)
        return found

    def finish(self) -> Problem | None:
        """At the end of the input: the NUL of the last line, if it holds one."""
        if self.nul is None:
            return None
        return Problem(self.name, self.line, f"line contains a NUL byte; {NUL_FIX}", self.nul)

    def _advance(self, text: str) -> Problem | None:
        if not text:
            return None
        lf, cr = text.find("\n"), text.find("\r")
        first = min(lf, cr) if lf >= 0 and cr >= 0 else max(lf, cr)
        if first < 0:
            self.run += len(text)
            self.after_cr = False
            return self._too_long() if self.run >= MAX_LINE_CHARS else None
        if self.run + first >= MAX_LINE_CHARS:
            return self._too_long()
        breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
        if self.after_cr and text[0] == "\n":
            breaks -= 1  # the LF of a CRLF split between two chunks
        self.line += breaks
        self.run = len(text) - max(text.rfind("\n"), text.rfind("\r")) - 1
        self.after_cr = text[-1] == "\r"
        return None

    def _too_long(self) -> Problem:
        return Problem(self.name, self.line, LINE_TOO_LONG)


def spool(
    source: IO[bytes],
    target: IO[bytes],
    *,
    name: str,
    encoding: str | None,
    max_bytes: int,
    too_big: str,
    check_lines: bool,
) -> Problem | None:
    """Copy *source* to *target*; stop at the first problem and return it.

    *encoding* None means detect it as a file's would be (BOM, else UTF-8); *check_lines*
    (CSV) also refuses NUL bytes and overlong lines; past *max_bytes*, *too_big* is the problem.
    """
    watch = _LineWatch(name) if check_lines else None
    decoder: codecs.IncrementalDecoder | None = None
    total = 0
    while True:
        chunk = source.read(CHUNK)
        while watch is not None and decoder is None and 0 < len(chunk) < HEAD_BYTES:
            more = source.read(CHUNK)  # the encoding is told by the head, as for a file
            if not more:
                break
            chunk += more
        if not chunk:
            return watch.finish() if watch is not None else None
        total += len(chunk)
        if total > max_bytes:
            return Problem(name, None, too_big)
        target.write(chunk)
        if watch is None:
            continue
        if decoder is None:
            codec = detect_encoding(chunk[:HEAD_BYTES], encoding)
            decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        found = watch.feed(decoder.decode(chunk))
        if found is not None:
            return found
