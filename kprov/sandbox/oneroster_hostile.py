"""The OneRoster sandbox as an adversary: what real SIS servers, proxies and bugs do to a pull.

Every mode is opt-in and seeded. ``MODE[=RATE][@COLLECTION]``: RATE is the share of the pages
(or requests) it touches (default 1: all), COLLECTION limits it to one collection. The page
modes touch pages after the first, so a pull has already started believing the server when
it turns: the shapes of failure the users of naive clients reported (pages that stop short,
a 200 read as "nobody", a total that lies, records that move between pages).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

MODES = {
    "short": "every page holds a random number of records (1 to the cap): a short page is "
    "not the last",
    "no-envelope": 'a 200 whose JSON lacks the collection (`{"data": [...]}`)',
    "shrink": "X-Total-Count one less than the truth",
    "wrong-total": "X-Total-Count counts the page, not the collection",
    "no-total": "no X-Total-Count header",
    "shift": "the page starts one record early (a record moved between pages)",
    "fail": "500 on every attempt",
    "429": "429 Too Many Requests with Retry-After (--retry-after)",
    "dup-json": "the collection's name appears twice in the JSON answer",
    "bad-links": 'Link rel="next" skips a record (clients must not follow it blindly)',
    "redirect": "307 to another host",
    "no-sort": "400 for any request with a sort parameter (a server without sorting)",
    "echo": "401/500 answers quote the Authorization header and the client secret",
    "secret-in-data": "the first user's givenName holds the client secret",
}
PAGE_MODES = frozenset({"no-envelope", "shrink", "shift", "fail", "dup-json"})


@dataclass(frozen=True)
class _Mode:
    rate: float
    collection: str | None


class OneRosterHostility:
    """Parsed ``--hostile`` modes and their seeded dice."""

    def __init__(self, spec: str = "", *, seed: int | None = None) -> None:
        self.modes: dict[str, _Mode] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        for part in filter(None, (p.strip() for p in spec.split(","))):
            head, _, collection = part.partition("@")
            name, _, rate_text = head.partition("=")
            if name not in MODES:
                raise ValueError(f"unknown mode {name!r}; known: {', '.join(sorted(MODES))}")
            try:
                rate = float(rate_text) if rate_text else 1.0
            except ValueError:
                raise ValueError(f"{part!r}: the rate must be a number from 0 to 1") from None
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{part!r}: the rate must be a number from 0 to 1")
            self.modes[name] = _Mode(rate, collection or None)

    def active(self, mode: str, collection: str | None = None, *, offset: int = 1) -> bool:
        """Whether *mode* strikes this request (page modes spare a collection's first page)."""
        found = self.modes.get(mode)
        if found is None:
            return False
        if found.collection is not None and found.collection != collection:
            return False
        if mode in PAGE_MODES and offset == 0:
            return False
        with self._lock:
            return self._rng.random() < found.rate

    def page_size(self, cap: int) -> int:
        with self._lock:
            return self._rng.randint(1, cap)
