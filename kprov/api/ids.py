"""Ids from the wire are UUIDs or nothing; ids put in a URL are one quoted path segment.

A server (or a proxy) that answers ``"id": "../accounts/<uuid>"`` must never make kprov send a
request to another resource, nor store a value that is not an id.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from kprov.api.errors import MalformedAnswer
from kprov.api_facts import UUID_TEXT as UUID_TEXT  # what an id looks like: one home
from kprov.api_facts import is_uuid
from kprov.errors import InputError


def answered_uuid(value: Any, what: str, *, method: str, path: str) -> str:
    """*value* in canonical (lower-case) form if it is a well-formed UUID, else MalformedAnswer
    naming *what* it should be. The server's spelling is not kept: one upper-cased answer once
    left rows that a case-sensitive API answered 404 for, for ever."""
    if is_uuid(value):
        return canonical_id(value)
    if value is None:
        raise MalformedAnswer(f"the answer has no {what}", method=method, path=path)
    # The value itself is not shown: it is server text, and could be anything (a token...).
    kind = f"{len(value)}-character text" if isinstance(value, str) else type(value).__name__
    raise MalformedAnswer(f"the answer's {what} is not a UUID (a {kind})", method=method, path=path)


def canonical_id(value: str) -> str:
    """A UUID as kprov stores and sends it: lower case (RFC 9562's output form). Ids recorded
    by older versions in another case are read through this too."""
    return value.lower()


def same_id(a: str, b: str) -> bool:
    """UUIDs compare without regard to case."""
    return a.lower() == b.lower()


class UnsafeId(InputError):
    """An id kprov was asked to put in a URL is not a UUID: nothing was sent."""


def id_segment(value: str, what: str) -> str:
    """*value* as one percent-quoted path segment, once it is known to be a UUID (canonical
    form: whatever case a state file holds, the server sees the one it issued).

    Quoting alone would not do: ``..`` is unreserved, and some servers decode ``%2F`` before
    routing. Raises UnsafeId (exit 2) before anything is sent.
    """
    if not is_uuid(value):
        raise UnsafeId(
            f"{what} {str(value)[:80]!r} is not a UUID; nothing was sent",
            hint="Ids are UUIDs such as 828815a2-5038-4352-a681-82c96921ddf5. If this one came "
            "from kprov's state files, they were written by a version that trusted the server.",
        )
    return quote(canonical_id(value), safe="")
