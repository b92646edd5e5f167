"""Ids the server handed out for creations: one id, one resource.

A server (or a cache keyed on the path) that answers one registration id for three
registrations would have kprov record it three times, and a later removal of one person
DELETE another's registration. Each created id is claimed by the request that created it;
an answer giving that id to another request is refused. The same request answered twice (a
resend after a lost answer) may keep its id. The registry enforces the same rule for every
id it records, from any run (``IdHeldElsewhere``); this check also covers a client used
without one, and refuses the answer before anything else reads it.
"""

from __future__ import annotations

import threading
from typing import Any

from kprov.api.errors import MalformedAnswer


class CreatedIds:
    """Created ids and the request each belongs to; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: dict[tuple[str, str], tuple[Any, ...]] = {}

    def claim(
        self, kind: str, new_id: str, request: tuple[Any, ...], where: dict[str, str]
    ) -> None:
        """Record *new_id* as *request*'s, or raise MalformedAnswer if another request has it."""
        request = _key(request)
        with self._lock:
            first = self._owner.setdefault((kind, new_id.lower()), request)
        if first != request:
            raise MalformedAnswer(
                f"the answer gives a {kind} id already given to another {kind}", **where
            )


def _key(request: tuple[Any, ...]) -> tuple[Any, ...]:
    """A creation request, compared without regard to the case of its ids."""
    return tuple(v.lower() if isinstance(v, str) else v for v in request)
