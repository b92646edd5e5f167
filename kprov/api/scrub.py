"""Secrets never leave: every server-supplied string is scrubbed before anyone sees it.

A server or a proxy may echo what it was sent (the Authorization header, the Basic value, a
form body with a refresh token) in an error message, an HTML page or a header. The client
registers each secret it holds -- the API secret, the Basic value, every token as it arrives --
and passes all server text through ``Scrubber.scrub`` before putting it in an exception, a log
line or a result. Scrub first, truncate after: a cut token is still a leak.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 3  # shorter strings would mangle every message, and are no secret anyway
_SECRET_KEYS = frozenset(
    {"access_token", "refresh_token", "client_secret", "api_secret", "password", "secret"}
)


def _variants(secret: str) -> set[str]:
    """The forms a secret takes on the wire: as is, form/URL-encoded, JSON-escaped."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


class Scrubber:
    """Replaces registered secrets (and their encodings) by ``<redacted>``; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            new = _variants(secret) - self._secrets
            if new:
                self._secrets |= new
                self._pattern = None

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
        pattern = self._compiled()
        return pattern.sub(REDACTED, text) if pattern is not None else text

    def clip(self, text: str, limit: int = 300) -> str:
        """Scrubbed, then on one line, then cut to *limit* characters (with an ellipsis)."""
        clean = " ".join(self.scrub(text).split())
        return clean if len(clean) <= limit else clean[: limit - 1] + "…"

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and self._secrets:
                # Longest first, so a secret inside a longer encoded form is not half-replaced.
                ordered = sorted(self._secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(s) for s in ordered))
            return self._pattern


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
