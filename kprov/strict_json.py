"""The one strict JSON reader, for every JSON kprov did not write itself in this run: server
answers (Knewton's and a SIS's), saved plans a person may have edited.

Python's ``json`` keeps the last of two equal names in an object, and reads ``NaN`` and
``Infinity``; another reader (the server's, a proxy's) may keep the first or refuse. Which
value was meant cannot be told, so such a document is refused, never guessed at."""

from __future__ import annotations

import json
import math
from typing import Any


class DuplicateName(ValueError):
    """A JSON object names one key twice. The name is outside text (a server's, an SIS's):
    it is kept in ``name`` for the caller to scrub and cut, never in the message, so that a
    handler that prints any ValueError cannot show a secret echoed as a name."""

    def __init__(self, name: str) -> None:
        super().__init__("a name appears twice in one object")
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


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999: the Infinity refused above, spelled as a number
        raise ValueError(f"the number {text[:40]} is too large for a float")
    return value


def loads(raw: bytes | str) -> Any:
    """The JSON value of *raw*, or ValueError: bad UTF-8, bad JSON, ``NaN``/``Infinity`` (or
    a number only infinity holds, ``1e999``), nesting too deep for the interpreter, or an
    object that names a key twice (``DuplicateName``). A leading byte order mark (a .NET
    server's) is ignored, as RFC 8259 allows and requests' ``.json()`` does."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return json.loads(
            text.removeprefix("\ufeff"),
            object_pairs_hook=_refuse_duplicates,
            parse_constant=_no_constant,
            parse_float=_finite,
        )
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
