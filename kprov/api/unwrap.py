"""Server text as a secret may hide in it: decoded layer by layer, each mapped back to the text.

A server or proxy that echoes a secret may re-encode it first: percent-encoding (``%2f`` as
well as ``%2F``), HTML entities (``&plus;``, ``&#43;``, ``&#x2b;``), JSON escapes (``\\u002b``,
``\\/``), or all of them in turn (``&amp;#43;``). ``layers`` decodes such text up to
``MAX_LAYERS`` times; each ``Layer`` can say where any stretch of its text came from in the
text it was decoded from, so a secret found in a decoded layer is redacted in the original.
``encoded_runs`` finds the base64, base64url, base32 and hex runs of a text (hex also as a
dump with separators, and bytes in decimal) and what they decode to;
``squeezed`` reads a text without its line breaks and invisible characters.
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

from kprov.api_facts import UUID_TEXT

MAX_LAYERS = 3  # "&amp;#x25;2F" is three layers deep; nobody nests deeper by accident

ESCAPES = re.compile(
    r"(?P<pct>(?:%[0-9A-Fa-f]{2})+)"
    r"|(?P<html>&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?)"
    r"|(?P<cx>(?:\\x[0-9A-Fa-f]{2})+)"
    r"|(?P<json>(?:\\u[0-9A-Fa-f]{4}|\\[\"\\/bfnrt])+)"
)
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
    if match.group("cx") is not None:  # byte escapes, as C, Python and PHP write them
        return bytes.fromhex(raw.replace("\\x", "")).decode("utf-8", "replace")
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


@dataclass(frozen=True)
class Squeezed:
    """*source* without its gaps (whitespace, invisible format characters): a secret split
    across lines ("sandbox-\nsecret"), base64 or hex wrapped at 76 columns, or a zero-width
    space slipped into a token, read as one piece again."""

    text: str
    source: str

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """Where ``text[start:end]`` came from in the source (gaps inside it included). Only
        computed for a span that holds a secret, so the common path never pays for it."""
        pieces = [m.span() for m in _KEPT.finditer(self.source)]
        starts, length = [], 0
        for a, b in pieces:
            starts.append(length)
            length += b - a
        first = bisect_right(starts, start) - 1
        last = bisect_right(starts, end - 1) - 1
        return (
            pieces[first][0] + start - starts[first],
            pieces[last][0] + end - starts[last],
        )


_GAPS = re.compile(r"[\s\u00ad\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]+")
_KEPT = re.compile(r"[^\s\u00ad\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]+")


def squeezed(text: str) -> Squeezed | None:
    """*text* without its gaps, or None when it holds no line break or invisible character
    inside it. Plain spaces alone do not count: every message has them, and reading every
    message with its words joined would cost more than all the other passes together."""
    if text.isprintable() or text.strip().isprintable():  # C speed: no break, no Cf inside
        return None
    return Squeezed(_GAPS.sub("", text), text)


def encoded_runs(text: str, min_length: int) -> Iterator[tuple[int, int, list[str], list[str]]]:
    """(start, end, decodings, loose decodings) of each base64/base64url/hex run of at least
    *min_length* characters that decodes to something. *decodings* are exact UTF-8 (or UTF-16,
    as .NET's ``Encoding.Unicode`` writes) text, to be looked into again; *loose* ones are
    decoded with replacement characters, from every alignment: a run glued to the word before
    it ("x" + base64, "0x" + hex, "tok_" + base64) decodes to noise, then the secret. A run
    that is a path ("a/b/<base64>") is also tried piece by piece."""
    for match in _runs(min_length).finditer(text):
        run = match.group()
        if UUID_TEXT.match(run):
            continue  # an id: no secret's encoding has this shape
        exact: list[str] = []
        loose: list[str] = []
        for piece in _pieces(run, min_length):
            _decodings(piece, exact, loose)
        if exact or loose:
            yield match.start(), match.end(), exact, loose
    if " " in text or "," in text or ":" in text or "-" in text or "." in text:
        for start, end, data in _byte_lists(text):
            if end - start >= min_length:
                yield start, end, [], [data.decode("utf-8", "replace")]


# Bytes written one group at a time, as debug pages and tools print them: hex with separators
# ("73:65:63", "73 65 63", "73-65-63", "73.65", .NET's "73-65", `xxd`'s "7365 6372",
# `hexdump -C`'s two spaces mid-line, a C array's "0x73, 0x65"), and decimal (Java's
# Arrays.toString "115, 101, 99", signed bytes included). Groups of 2 to 8 hex digits;
# separators may mix: only a decoding that holds a registered secret is ever redacted.
_SEPARATED_HEX = re.compile(
    r"\b(?:0[xX])?(?:[0-9A-Fa-f]{2}){1,4}"
    r"(?:(?:[:._-]| {1,2}|, ?)(?:0[xX])?(?:[0-9A-Fa-f]{2}){1,4}){3,}\b"
)
_HEX_SEPARATORS = re.compile(r"0[xX]|[:._, -]")
_DECIMAL_BYTES = re.compile(r"(?<![\w.])-?[0-9]{1,3}(?:, ?-?[0-9]{1,3}){3,}(?![\w.])")


def _byte_lists(text: str) -> Iterator[tuple[int, int, bytes]]:
    """(start, end, bytes) of each separated hex dump and decimal byte list of *text*."""
    for match in _SEPARATED_HEX.finditer(text):
        digits = _HEX_SEPARATORS.sub("", match.group())
        if len(digits) % 2 == 0:
            yield match.start(), match.end(), bytes.fromhex(digits)
    if "," in text:
        for match in _DECIMAL_BYTES.finditer(text):
            numbers = [int(n) for n in match.group().split(",")]
            if all(-128 <= n <= 255 for n in numbers):
                yield match.start(), match.end(), bytes(n % 256 for n in numbers)


_BASE32 = re.compile(r"[A-Za-z2-7]+")


@lru_cache(maxsize=4)
def _runs(min_length: int) -> re.Pattern[str]:
    """Runs of the base64 / base64url alphabets (hex is a subset) of at least *min_length*
    characters, with any padding; shorter words are skipped by the regex engine itself."""
    return re.compile(f"[A-Za-z0-9+/_-]{{{min_length},}}={{0,6}}")  # base32 pads to 6


_ONE_ALPHABET = re.compile(r"[A-Za-z0-9+/]+=*|[A-Za-z0-9_-]+=*")


def _pieces(run: str, min_length: int) -> list[str]:
    """The run, and its stretches in one alphabet (a run mixing "+/" with "-_" decodes in
    neither) and between slashes, that are long enough to hold an encoded secret."""
    found = [run]
    for pattern in (_ONE_ALPHABET, re.compile(r"[^/]+")):
        found += [p for p in pattern.findall(run) if len(p) >= min_length and p not in found]
    return found


def _decodings(run: str, exact: list[str], loose: list[str]) -> None:
    body = run.rstrip("=")
    raw: list[bytes] = []
    for hex_run in re.findall(r"[0-9A-Fa-f]{4,}", body):
        raw += [bytes.fromhex(hex_run[k : k + (len(hex_run) - k) // 2 * 2]) for k in (0, 1)]
    altchars = b"-_" if "-" in body or "_" in body else b"+/"
    for k in range(4):  # every alignment: a glued prefix of any length is one of them
        piece = body[k:]
        piece = piece[: len(piece) // 4 * 4 + (len(piece) % 4 if len(piece) % 4 > 1 else 0)]
        with contextlib.suppress(binascii.Error, ValueError):
            raw.append(base64.b64decode(piece + "=" * (-len(piece) % 4), altchars, validate=True))
    if _BASE32.fullmatch(body):  # RFC 4648 base32, either case: a run of letters and 2-7
        for k in range(8):  # every alignment, as for base64
            piece = body[k:].upper()
            left = len(piece) % 8
            piece = piece[: len(piece) - left] + (
                piece[len(piece) - left :] + "=" * (8 - left) if left in (2, 4, 5, 7) else ""
            )
            with contextlib.suppress(binascii.Error, ValueError):
                raw.append(base64.b32decode(piece))
    for data in raw:
        if data and data.count(0) * 3 >= len(data):  # mostly NULs: UTF-16, either byte order
            for codec in ("utf-16-le", "utf-16-be"):
                with contextlib.suppress(UnicodeDecodeError):
                    exact.append(data[: len(data) // 2 * 2].decode(codec))
        try:
            exact.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            loose.append(data.decode("utf-8", "replace"))
