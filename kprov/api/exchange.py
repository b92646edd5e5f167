"""What one HTTP exchange carries: the answer (body read within a cap), and the wait a
refusal asks for."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from kprov.api.pacing import parse_retry_after


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer, body read (within the cap)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    reason: str = ""
    resent_after_unknown: bool = False  # an earlier attempt of this call may have been applied

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


def asked_wait(headers: Mapping[str, str]) -> float:
    """Seconds the server asked before a resend: Retry-After, or X-Knewton-Rate-Delay (ms)."""
    retry_after = parse_retry_after(headers.get("Retry-After")) or 0.0
    delay = parse_retry_after(headers.get("X-Knewton-Rate-Delay"))
    return max(retry_after, (delay or 0.0) / 1000.0)


class TooBig(Exception):
    """The answer's body is larger than the cap."""


def read_capped(chunks: Iterator[bytes], cap: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > cap:
            raise TooBig
        parts.append(chunk)
    return b"".join(parts)
