"""The one strict JSON reader, for every JSON kprov did not write itself in this run: server
answers (Knewton's and a SIS's), saved plans a person may have edited.

Python's ``json`` keeps the last of two equal names in an object, and reads ``NaN`` and
``Infinity``; another reader (the server's, a proxy's) may keep the first or refuse. Which
value was meant cannot be told, so such a document is refused, never guessed at."""

from __future__ import annotations

import json
from typing import Any


class DuplicateName(ValueError):
    """A JSON object names one key twice."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the name {name[:40]!r} appears twice in one object")
        self.name = name


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)  # C speed; a name given twice leaves fewer keys than pairs
    if len(found) != len(pairs):
        seen: set[str] = set()
        for name, _value in pairs:
            if name in seen:
                raise DuplicateName(name)
            seen.add(name)
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(raw: bytes | str) -> Any:
    """The JSON value of *raw*, or ValueError: bad UTF-8, bad JSON, ``NaN``/``Infinity``,
    nesting too deep for the interpreter, or an object that names a key twice
    (``DuplicateName``)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(text, object_pairs_hook=_refuse_duplicates, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
