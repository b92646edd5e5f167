"""The registration requests a journal records without an answer: read when first asked for.

A "sent" row is written just before a registration request; its answer ("registered", or a
refusal's row) follows. Only a run that sends a registration asks which requests are still
pending (an "already registered" that does not name a type is kprov's own only if it matches
the type last asked for), so loading the registry checks "sent" rows but does not apply them:
the first such question reads them here, from the bytes the load read (rows appended since,
perhaps half-written by another thread right now, are never read), and the rows the index
applied since are replayed on top, in the order it applied them.
"""

from __future__ import annotations

import csv
import io
import os
from collections import deque
from itertools import compress, repeat
from operator import not_
from pathlib import Path
from typing import BinaryIO

from kprov.errors import StorageError
from kprov.state import blocks
from kprov.state.registry_index import SENT

Pending = dict[tuple[str, str], str]  # (account id, instance id), lower case -> type
_KEY = slice(0, 73)  # "account,instance" when both are 36 characters


def requests_pending(path: Path, size: int) -> Pending:
    """(account id, instance id) -> type, of every request whose key's last row among the
    first *size* bytes of the journal at *path* is "sent" (the rows already checked by a
    load: a torn last line is left out, as the load left it). Read a block at a time: only
    the requests still pending at each block's end are kept."""
    try:
        with open(path, "rb") as handle:
            pending = _pending_by_blocks(handle, size)
            if pending is None:  # lines kprov does not write: the csv module reads them all
                handle.seek(0)
                pending = _by_columns(handle.read(size))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return pending


def _pending_by_blocks(handle: BinaryIO, size: int) -> Pending | None:
    """``requests_pending`` of plain lines that start with two ids of 36 characters (as
    kprov writes them), a block at a time; None at the first block that is not so."""
    left = size - len(handle.readline())  # the header
    asked_last: dict[str, str] = {}  # key ("account,instance") -> its last "sent" line
    rest = b""
    while left > 0:
        data = handle.read(min(blocks.BLOCK, left))
        if not data:
            break
        left -= len(data)
        data, rest = rest + data, b""
        cut = data.rfind(b"\n") + 1
        data, rest = data[:cut], data[cut:]  # whole lines (a torn last one stays out)
        text = data.decode("utf-8")
        lines = list(filter(None, text.split("\n")))
        if not lines:
            continue
        if (
            '"' in text
            or "\r" in text
            or set(map(str.find, lines, repeat(","))) != {36}
            or set(map(str.find, lines, repeat(","), repeat(37))) != {73}
        ):
            return None
        keys: list[str] = list(map(str.__getitem__, lines, repeat(_KEY)))
        joined = "\n".join(keys)
        if joined != joined.lower():
            keys = joined.lower().split("\n")
        asked = list(map(str.endswith, lines, repeat(f",{SENT}")))
        last = dict(zip(keys, asked, strict=True))  # each key's last row in the block
        deque(map(asked_last.pop, compress(last, map(not_, last.values())), repeat(None)), 0)
        waiting = set(compress(last, last.values()))  # asked last: pending so far
        for key, line in zip(reversed(keys), reversed(lines), strict=True):
            if not waiting:
                break
            if key in waiting:  # its last request in the block (found from the end)
                asked_last[key] = line
                waiting.discard(key)
    return {(key[:36], key[37:]): line[74:].split(",", 1)[0] for key, line in asked_last.items()}


def _by_columns(data: bytes) -> Pending:
    text = data.decode("utf-8")
    text = text[text.find("\n") + 1 : text.rfind("\n") + 1]  # rows only, whole lines only
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    last = {(row[0].lower(), row[1].lower()): (row[2], row[-1]) for row in rows}
    return {key: kind for key, (kind, state) in last.items() if state == SENT}


def journal_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
