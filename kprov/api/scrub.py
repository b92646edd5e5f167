"""Secrets never leave: every server-supplied string is scrubbed before anyone sees it.

A server or a proxy may echo what it was sent (the Authorization header, the Basic value, a
form body with a refresh token) in an error message, an HTML page or a header. The client
registers each secret it holds -- the API secret, the Basic value, every token as it arrives --
and passes all server text through ``Scrubber.scrub`` before putting it in an exception, a log
line or a result. Scrub first, truncate after: a cut token is still a leak.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 3  # shorter strings would mangle every message, and are no secret anyway
PREFIX = 6  # secrets at least this long are found through an index of their first characters
_SECRET_KEYS = frozenset(
    {"access_token", "refresh_token", "client_secret", "api_secret", "password", "secret"}
)


def _variants(secret: str) -> set[str]:
    """The forms a secret takes on the wire: as is, form/URL-encoded, JSON-escaped, and
    HTML-escaped (a proxy's error page quoting it; ``--debug`` logs such a page as sent)."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms |= {
        html.escape(secret, quote=False),
        html.escape(secret),
        html.escape(secret).replace("&#x27;", "&#39;"),
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),  # PHP's json_encode escapes "/"
    }
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Scrubber:
    """Replaces registered secrets (and their encodings) by ``<redacted>``; thread-safe.

    A run may hold thousands of tokens (one per recovered user): secrets are indexed by their
    first characters, so scrubbing costs one dictionary look-up per character of the text,
    however many secrets there are (a regex alternation of 4,000 tokens took ~8 ms a line).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_prefix: dict[str, set[str]] = {}
        self._short: set[str] = set()  # under PREFIX characters: a small regex
        self._short_pattern: re.Pattern[str] | None = None

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            return
        with self._lock:
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
        if not text:
            return text
        with self._lock:
            text = self._scrub_long(text)
            if self._short and self._short_pattern is None:
                ordered = sorted(self._short, key=len, reverse=True)
                self._short_pattern = re.compile("|".join(re.escape(s) for s in ordered))
            short = self._short_pattern
        return short.sub(REDACTED, text) if short is not None else text

    def _scrub_long(self, text: str) -> str:
        index = self._by_prefix
        if not index:
            return text
        parts: list[str] = []
        start = position = 0
        end = len(text) - PREFIX
        while position <= end:
            bucket = index.get(text[position : position + PREFIX])
            found = bucket and max(
                (s for s in bucket if text.startswith(s, position)), key=len, default=""
            )
            if found:  # the longest secret here, so an encoded form is not half-replaced
                parts += [text[start:position], REDACTED]
                position = start = position + len(found)
            else:
                position += 1
        return "".join([*parts, text[start:]])

    def clip(self, text: str, limit: int = 300) -> str:
        """Scrubbed, then on one line, then cut to *limit* characters (with an ellipsis)."""
        clean = " ".join(self.scrub(text).split())
        return clean if len(clean) <= limit else clean[: limit - 1] + "…"


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
