"""Server text as a secret may hide in it: decoded layer by layer, each mapped back to the text.

A server or proxy that echoes a secret may re-encode it first: percent-encoding (``%2f`` as
well as ``%2F``), HTML entities (``&plus;``, ``&#43;``, ``&#x2b;``), JSON escapes (``\\u002b``,
``\\/``), or all of them in turn (``&amp;#43;``). ``layers`` decodes such text up to
``MAX_LAYERS`` times; each ``Layer`` can say where any stretch of its text came from in the
text it was decoded from, so a secret found in a decoded layer is redacted in the original.
``encoded_runs`` finds the base64, base64url and hex runs of a text and what they decode to.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import html
import json
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

MAX_LAYERS = 3  # "&amp;#x25;2F" is three layers deep; nobody nests deeper by accident

ESCAPES = re.compile(
    r"(?P<pct>(?:%[0-9A-Fa-f]{2})+)"
    r"|(?P<html>&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?)"
    r"|(?P<json>(?:\\u[0-9A-Fa-f]{4}|\\[\"\\/bfnrt])+)"
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+\Z")


@dataclass(frozen=True)
class Layer:
    """One decoding of *source*: ``text``, and for each piece of it where it came from.

    ``starts[k]`` is where piece k begins in ``text``; ``spans[k]`` the (start, end) it was
    decoded from in *source*; ``literal[k]`` whether it was copied as is (then every character
    maps to one character) or decoded (then all of it maps to the whole escape).
    """

    text: str
    starts: list[int]
    spans: list[tuple[int, int]]
    literal: list[bool]

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """Where ``text[start:end]`` came from in the source text."""
        first = bisect_right(self.starts, start) - 1
        last = bisect_right(self.starts, end - 1) - 1
        a = self.spans[first][0] + (start - self.starts[first] if self.literal[first] else 0)
        if self.literal[last]:
            b = self.spans[last][0] + (end - self.starts[last])
        else:
            b = self.spans[last][1]
        return a, b


def _decoded(match: re.Match[str]) -> str:
    """What one escape (or run of escapes) says; the text itself when it says nothing."""
    raw = match.group()
    if match.group("pct") is not None:
        return bytes.fromhex(raw.replace("%", "")).decode("utf-8", "replace")
    if match.group("html") is not None:
        return html.unescape(raw)
    try:
        value = json.loads(f'"{raw}"')
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


def decode_once(source: str) -> Layer | None:
    """*source* with every escape decoded once; None when it holds none."""
    text: list[str] = []
    starts: list[int] = []
    spans: list[tuple[int, int]] = []
    literal: list[bool] = []
    length = done = 0
    changed = False
    for match in ESCAPES.finditer(source):
        begin, end = match.span()
        decoded = _decoded(match)
        if decoded == match.group():
            continue  # an unknown entity: part of the literal text around it
        if begin > done:
            starts.append(length)
            spans.append((done, begin))
            literal.append(True)
            text.append(source[done:begin])
            length += begin - done
        if decoded:
            starts.append(length)
            spans.append((begin, end))
            literal.append(False)
            text.append(decoded)
            length += len(decoded)
        done = end
        changed = True
    if not changed:
        return None
    if done < len(source):
        starts.append(length)
        spans.append((done, len(source)))
        literal.append(True)
        text.append(source[done:])
    return Layer("".join(text), starts, spans, literal)


def layers(text: str) -> list[Layer]:
    """The successive decodings of *text* (empty when it holds no escape)."""
    found: list[Layer] = []
    current = text
    while len(found) < MAX_LAYERS and _may_hold_escapes(current):
        layer = decode_once(current)
        if layer is None or layer.text == current:
            break
        found.append(layer)
        current = layer.text
    return found


def _may_hold_escapes(text: str) -> bool:
    """Three C-speed scans, before the regex (which scans every position in Python's engine)."""
    return "%" in text or "&" in text or "\\" in text


def to_original(found: list[Layer], depth: int, start: int, end: int) -> tuple[int, int]:
    """A span of layer *depth* (1-based; 0 is the text itself) mapped back to the text."""
    for layer in reversed(found[:depth]):
        start, end = layer.source_span(start, end)
    return start, end


def encoded_runs(text: str, min_length: int) -> Iterator[tuple[int, int, list[str]]]:
    """(start, end, decodings) of each base64/base64url/hex run of at least *min_length*
    characters that decodes to UTF-8 text. A run that is a path ("a/b/<base64>") is also
    tried piece by piece: "/" belongs to the base64 alphabet, and would shift the decoding."""
    for match in _runs(min_length).finditer(text):
        run = match.group()
        if _UUID.match(run):
            continue  # an id: no secret's encoding has this shape
        decodings = _decodings(run)
        if "/" in run:
            for piece in run.split("/"):
                if len(piece) >= min_length:
                    decodings.extend(_decodings(piece))
        if decodings:
            yield match.start(), match.end(), decodings


@lru_cache(maxsize=4)
def _runs(min_length: int) -> re.Pattern[str]:
    """Runs of the base64 / base64url alphabets (hex is a subset) of at least *min_length*
    characters, with any padding; shorter words are skipped by the regex engine itself."""
    return re.compile(f"[A-Za-z0-9+/_-]{{{min_length},}}={{0,2}}")


def _decodings(run: str) -> list[str]:
    found = []
    body = run.rstrip("=")
    if _HEX.match(body):
        found.append(bytes.fromhex(body))
    if len(body) % 4 != 1:
        padded = body + "=" * (-len(body) % 4)
        altchars = b"-_" if "-" in body or "_" in body else b"+/"
        with contextlib.suppress(binascii.Error, ValueError):
            found.append(base64.b64decode(padded, altchars=altchars, validate=True))
    texts = []
    for raw in found:
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return texts
