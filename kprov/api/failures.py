"""What went wrong on the wire, in words a person can act on, and whether to try again."""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions


@dataclass
class NoAnswer(Exception):
    what: str  # "connection refused", "reset", ...
    maybe_applied: bool
    retry: bool = True
    connecting: bool = False  # refused / unresolvable / unreachable: counted separately


WIRE_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (cause, context, urllib3's reason, args)."""
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo and len(seen) < 20:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return seen


def deadline_passed(deadline: float) -> NoAnswer:
    """The attempt's deadline cut the exchange: whatever arrived is a fragment, not an answer.

    Not retried (a server this slow will be as slow again), and the request may have been
    applied: the server may have stalled or trickled *after* applying it.
    """
    return NoAnswer(
        f"no complete answer within the {deadline:g} s deadline: the server stalled or "
        "sent too slowly",
        maybe_applied=True,
        retry=False,
    )


def cut_short(response: requests.Response, method: str) -> NoAnswer | None:
    """A NoAnswer when fewer body bytes arrived than the answer's Content-Length announced.

    urllib3 2 raises IncompleteRead itself; urllib3 1.26, which requests still accepts, does
    not by default and hands the fragment back as if it were the whole body.
    """
    announced = response.headers.get("Content-Length")
    if (
        announced is None
        or method == "HEAD"
        or response.status_code in (204, 304)
        or "Transfer-Encoding" in response.headers
    ):
        return None
    try:
        expected = int(announced)
    except ValueError:
        return None  # urllib3 refuses a Content-Length it cannot read
    received = getattr(response.raw, "tell", lambda: None)()
    if not isinstance(received, int) or received >= expected:
        return None
    return NoAnswer(
        f"the connection closed after {received} of the {expected} bytes the answer announced",
        maybe_applied=True,
    )


def describe_failure(exc: BaseException, late: bool, deadline: float) -> NoAnswer:
    """What went wrong on the wire, in words, and whether to retry."""
    if late:
        return deadline_passed(deadline)
    chain = _causes(exc)

    def has(*kinds: type[BaseException]) -> bool:
        return any(isinstance(e, kinds) for e in chain)

    if has(requests.exceptions.SSLError, urllib3.exceptions.SSLError):
        return NoAnswer("TLS handshake or certificate check failed", True, retry=False)
    if has(socket.gaierror, urllib3.exceptions.NameResolutionError):
        return NoAnswer("the host name could not be resolved", False, connecting=True)
    if has(ConnectionRefusedError):
        return NoAnswer("connection refused", False, connecting=True)
    if has(requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError):
        return NoAnswer("timed out connecting", False)
    if has(urllib3.exceptions.NewConnectionError):
        return NoAnswer("could not connect (network unreachable?)", False, connecting=True)
    if has(requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError):
        return NoAnswer("timed out waiting for the answer", True)
    return NoAnswer("the connection was reset or closed before a complete answer", True)
