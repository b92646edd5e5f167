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
from itertools import compress, repeat
from pathlib import Path

from kprov.errors import StorageError
from kprov.state.registry_index import SENT

Pending = dict[tuple[str, str], str]  # (account id, instance id), lower case -> type
_KEY = slice(0, 73)  # "account,instance" when both are 36 characters


def requests_pending(path: Path, size: int) -> Pending:
    """(account id, instance id) -> type, of every request whose key's last row among the
    first *size* bytes of the journal at *path* is "sent" (the rows already checked by a
    load: a torn last line is left out, as the load left it)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(size)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = data.decode("utf-8")
    text = text[text.find("\n") + 1 : text.rfind("\n")]  # rows only, whole lines only
    if not text:
        return {}
    if '"' in text or "\r" in text:  # quoted fields: the csv module reads them
        return _by_columns([row for row in csv.reader(io.StringIO(text, newline="")) if row])
    lines = list(filter(None, text.split("\n")))
    if not (
        set(map(str.find, lines, repeat(","))) == {36}
        and set(map(str.find, lines, repeat(","), repeat(37))) == {73}
    ):  # not two ids of 36 characters first: by columns
        return _by_columns(list(map(str.split, lines, repeat(","))))
    # as kprov writes them: a key is a line's first 73 characters, in lower case
    keys: list[str] = list(map(str.__getitem__, lines, repeat(_KEY)))
    joined = "\n".join(keys)
    if joined != joined.lower():
        keys = joined.lower().split("\n")
    asked = list(map(str.endswith, lines, repeat(f",{SENT}")))
    last = dict(zip(keys, asked, strict=True))  # the last row of each key
    pending = set(compress(last, last.values()))
    if not pending:
        return {}
    found: Pending = {}
    for key, line in zip(compress(keys, asked), compress(lines, asked), strict=True):
        if key in pending:
            found[(key[:36], key[37:])] = line[74:].split(",", 1)[0]  # its last request
    return found


def _by_columns(rows: list[list[str]]) -> Pending:
    last = {(row[0].lower(), row[1].lower()): (row[2], row[-1]) for row in rows}
    return {key: kind for key, (kind, state) in last.items() if state == SENT}


def journal_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
