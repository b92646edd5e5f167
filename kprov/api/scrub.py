"""Secrets never leave: every server-supplied string is scrubbed before anyone sees it.

A server or a proxy may echo what it was sent (the Authorization header, the Basic value, a
form body with a refresh token) in an error message, an HTML page or a header, and may
re-encode it first. The client registers each secret it holds -- the API secret, the Basic
value, every token as it arrives -- and passes all server text through ``Scrubber.scrub``
before putting it in an exception, a log line or a result. A secret is found:
- as it is, in any letter case (a proxy that upper-cases what it echoes leaks it as well);
- in any decoding of the text (``unwrap``): percent-encoding in either case, HTML entities
  (named, decimal, hex), JSON escapes, several layers deep;
- inside any base64, base64url or hex run that decodes to text holding it.
Whatever holds it is replaced by ``<redacted>`` in the original text. Scrub first, make
printable, clip last (``clip``): a cut token is still a leak.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

from kprov.api.unwrap import encoded_runs, layers, squeezed, to_original
from kprov.outside_text import printable

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 3  # shorter strings would mangle every message, and are no secret anyway
PREFIX = 6  # secrets at least this long are found through an index of their first characters
FIND_EACH = 128  # up to this many indexed prefixes, each is looked for with str.find
NESTING = 2  # base64 inside base64 (or hex inside base64) is looked into, no deeper
_SECRET_KEYS = frozenset(
    {"access_token", "refresh_token", "client_secret", "api_secret", "password", "secret"}
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(text: str) -> str:
    """*text* in lower case, character for character (positions must not move)."""
    folded = text.lower()
    return folded if len(folded) == len(text) else text.translate(_ASCII_LOWER)


def _variants(secret: str) -> set[str]:
    """The forms a secret takes on the wire that decoding alone would not undo: as is,
    form-encoded (a space as "+"), and the escapes the fast path finds without decoding."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms |= {
        html.escape(secret, quote=False),
        html.escape(secret),
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    return {_fold(f) for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Scrubber:
    """Replaces registered secrets, in every reversible form, by ``<redacted>``; thread-safe.

    A run may hold thousands of tokens (one per recovered user): secrets are indexed by their
    first characters, so finding them costs one dictionary look-up per character of the text,
    however many secrets there are (a regex alternation of 4,000 tokens took ~8 ms a line).
    The decoding passes run only on text that holds an escape or a long enough encoded run.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_prefix: dict[str, set[str]] = {}
        self._short: set[str] = set()  # under PREFIX characters: a small regex
        self._short_pattern: re.Pattern[str] | None = None
        self._min_run = 0  # the shortest encoded run that could hold a registered secret

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            return
        # base64 of the shortest secret is 4/3 as long (hex: twice), less its padding
        shortest = max(4, -(-4 * len(secret.encode("utf-8")) // 3) - 2)
        with self._lock:
            self._min_run = min(self._min_run or shortest, shortest)
            for form in _variants(secret):
                if len(form) >= PREFIX:
                    self._by_prefix.setdefault(form[:PREFIX], set()).add(form)
                elif form not in self._short:
                    self._short.add(form)
                    self._short_pattern = None

    def add_credentials(self, api_key: str, api_secret: str) -> str:
        """Register the secret and its Basic forms; returns the Authorization header value."""
        encoded = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
        self.add(api_secret)
        self.add(f"{api_key}:{api_secret}")
        self.add(encoded)
        self.add(encoded.rstrip("="))
        return f"Basic {encoded}"

    def scrub(self, text: str) -> str:
        if not text or not (self._by_prefix or self._short):
            return text
        with self._lock:
            if self._short and self._short_pattern is None:
                ordered = sorted(self._short, key=len, reverse=True)
                self._short_pattern = re.compile("|".join(re.escape(s) for s in ordered))
            spans = self._find(text, NESTING)
        if not spans:
            return text
        parts: list[str] = []
        done = 0
        for start, end in _merged(spans):
            parts += [text[done:start], REDACTED]
            done = end
        return "".join([*parts, text[done:]])

    def clip(self, text: str, limit: int = 300) -> str:
        """Scrubbed, on one line, made printable, then cut to *limit* characters (with an
        ellipsis): the order that never shows part of a secret or a raw control character."""
        clean = self.scrub(text)
        one_line = " ".join(clean.split())
        if one_line != clean:  # joining lines could join the halves of a secret
            one_line = self.scrub(one_line)
        shown = printable(one_line)
        return shown if len(shown) <= limit else shown[: limit - 1] + "…"

    # --------------------------------------------------------------- finding

    def _find(self, text: str, nesting: int) -> list[tuple[int, int]]:
        """Spans of *text* that hold a registered secret in some form (lock held)."""
        spans = self._plain(text)
        decoded = layers(text)
        for depth, layer in enumerate(decoded, 1):
            spans += [to_original(decoded, depth, a, b) for a, b in self._plain(layer.text)]
        for depth, view in enumerate([text, *(layer.text for layer in decoded)]):
            if nesting > 0:
                spans += [to_original(decoded, depth, a, b) for a, b in self._runs(view, nesting)]
            joined = squeezed(view)
            if joined is not None:  # split across lines, or by invisible characters
                found = self._plain(joined.text)
                if nesting > 0:
                    found += self._runs(joined.text, nesting)
                for a, b in found:
                    spans.append(to_original(decoded, depth, *joined.source_span(a, b)))
        return spans

    def _runs(self, view: str, nesting: int) -> list[tuple[int, int]]:
        """Spans of the encoded runs of *view* whose decoding holds a secret: looked into
        again when exact, only searched as is when loose (decoded from noise)."""
        if not self._min_run:
            return []
        return [
            (start, end)
            for start, end, exact, loose in encoded_runs(view, self._min_run)
            if (loose and self._plain("\0".join(loose)))
            or any(self._find(t, nesting - 1) for t in exact)
        ]

    def _plain(self, text: str) -> list[tuple[int, int]]:
        """Spans where a registered form appears as is, in any letter case."""
        folded = _fold(text)
        spans: list[tuple[int, int]] = []
        index = self._by_prefix
        if index:
            covered = 0
            for position in _candidates(folded, index):
                if position < covered:
                    continue  # inside a secret found already
                found = max(
                    (s for s in index[folded[position : position + PREFIX]]
                     if folded.startswith(s, position)),
                    key=len,
                    default="",
                )  # fmt: skip
                if found:  # the longest secret here, so an encoded form is not half-replaced
                    covered = position + len(found)
                    spans.append((position, covered))
        if self._short_pattern is not None:
            spans += [m.span() for m in self._short_pattern.finditer(folded)]
        return spans


def _candidates(folded: str, index: dict[str, set[str]]) -> list[int]:
    """Positions of *folded* where an indexed prefix starts, in order. Few prefixes: one
    C-speed ``find`` each; many (a run that recovered thousands of users): one set look-up
    per character, whose cost does not grow with the number of secrets."""
    if len(index) <= FIND_EACH:
        found = []
        for prefix in index:
            at = folded.find(prefix)
            while at >= 0:
                found.append(at)
                at = folded.find(prefix, at + 1)
        return sorted(found)
    return [i for i in range(len(folded) - PREFIX + 1) if folded[i : i + PREFIX] in index]


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans as one, in order."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def redact(value: Any) -> Any:
    """Copy of a JSON-like value with token and secret fields replaced by '<redacted>'."""
    if isinstance(value, dict):
        return {
            k: "<redacted>" if str(k).lower() in _SECRET_KEYS else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value
