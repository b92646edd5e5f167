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
from pathlib import Path

from kprov.errors import StorageError
from kprov.state.blocks import split_columns
from kprov.state.registry_index import SENT

Pending = dict[tuple[str, str], str]  # (account id, instance id), lower case -> type


def requests_pending(path: Path, size: int, width: int) -> Pending:
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
    text = text[text.find("\n") + 1 : text.rfind("\n") + 1]  # rows only, whole lines only
    if '"' in text or "\r" in text:  # quoted fields: the csv module reads them
        rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
        columns = [list(column) for column in zip(*rows, strict=True)] if rows else []
    else:
        lines = list(filter(None, text.split("\n")))
        columns = split_columns([line + "\n" for line in lines], width) if lines else []
    if not columns:
        return {}
    account, instance, kinds, *_rest, status = columns
    keys = zip(map(str.lower, account), map(str.lower, instance), strict=True)
    last = dict(zip(keys, zip(kinds, status, strict=True), strict=True))  # last row per key
    return {key: kind for key, (kind, state) in last.items() if state == SENT}


def journal_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
