"""Reading one collection in full, or not at all.

Paging is ``limit``/``offset`` (OneRoster REST bindings), and it is where naive clients lose
districts. The rules here, each answering a failure seen in the wild:

- The next offset is the count of records *received*, never ``offset + limit``: servers cap a
  page below the limit asked (Moodle's enrol_oneroster adds the limit, and stops when a page
  holds fewer than asked; the Untis docs recommend the same stop).
- A short page is not the end; only an empty page is. ``X-Total-Count`` is a check, never a
  stop on its own: a server whose total counts the page (Confluence's ``totalSize``,
  pipeshub-ai PR #1219) would otherwise end the pull after one page. When the total has been
  reached, one more page is asked to confirm; a 400/404/416 for that page past the end is
  read as the end (some servers refuse an offset past the total).
- The total may grow (records added behind the pages already read); it must never shrink (a
  record removed from the pages already read moves an unread one onto them, unseen), and at
  the end the records read must be exactly the total.
- ``sort=sourcedId`` asks for a stable order (an unordered server may repeat or skip records
  between pages: scim-for-keycloak #157; a server that refuses ``sort`` with a 400 is read in
  its own order); a sourcedId seen on an earlier page means records moved during the pull,
  and the pull is refused.
- ``Link`` headers are not followed: a server's rel="next" can be wrong (GG4L's published
  example steps from offset 0 to offset 101, skipping a record).
- A 200 whose JSON lacks the collection's name is an error, never "nobody".
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from kprov import strict_json
from kprov.rosters.api_source import ApiSource
from kprov.sis.errors import SisWireError, data_error
from kprov.sis.wire import SisClient
from kprov.strict_json import DuplicateName

# What a pull reads, in this order: terms and classes before the enrollments naming them.
COLLECTIONS = ("orgs", "academicSessions", "classes", "users", "enrollments")
# Read in full even by a delta: small, and a class new tonight needs its (unchanged) terms
# for its dates, and `schools:` the orgs to check its names against.
ALWAYS_FULL = frozenset({"orgs", "academicSessions"})
MAX_PAGES = 100_000
PAST_THE_END = frozenset({400, 404, 416})


@dataclass(frozen=True)
class PageRef:
    number: int
    url: str
    first: int  # index of its first record in the collection


@dataclass
class Collection:
    """Every record of one collection, in the order served, and the pages they came from."""

    name: str
    records: list[dict[str, Any]] = field(default_factory=list)
    pages: list[PageRef] = field(default_factory=list)
    first_date: str | None = None  # the Date header of its first answer (the SIS's clock)
    count: int = 0  # records read (kept once the records themselves are let go)

    def release(self) -> None:
        """Let the records go once converted: only their count and pages are still needed."""
        self.count = len(self.records)
        self.records = []

    def where(self, index: int) -> str:
        """How messages name record *index*: its page and its place on it."""
        at = bisect.bisect_right([p.first for p in self.pages], index) - 1
        page = self.pages[max(at, 0)]
        return f"record {index - page.first + 1} of page {page.number} (GET {page.url})"


def page_url(
    source: ApiSource, name: str, offset: int, since: str | None, *, sort: bool = True
) -> str:
    params: dict[str, str | int] = {"limit": source.page_size, "offset": offset}
    if sort:
        params.update(sort="sourcedId", orderBy="asc")
    if since is not None:
        params["filter"] = f"dateLastModified>'{since}'"
    return f"{source.collection_url(name)}?{urlencode(params, quote_via=quote)}"


def _total(raw: str | None, what: str, client: SisClient) -> int | None:
    if raw is None:
        return None
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        shown = client.scrubber.clip(text, 60)  # server text: scrubbed before quoting
        raise SisWireError(f"{what}: X-Total-Count {shown!r} is not a count of records")
    return int(text)


def read_collection(
    client: SisClient, source: ApiSource, name: str, *, since: str | None = None
) -> Collection:
    """Every record of collection *name* (changed since *since*, when given), or an error."""
    collection = Collection(name)
    records = collection.records
    seen: dict[str, int] = {}  # sourcedId -> page number
    offset, number = 0, 0
    highest: int | None = None
    while True:
        number += 1
        if number > MAX_PAGES:
            raise SisWireError(f"{source.collection_url(name)}: more than {MAX_PAGES} pages")
        url = page_url(source, name, offset, since, sort=client.sorted_pages)
        what = f"GET {url} (page {number} of {name})"
        reached = highest is not None and offset >= highest
        first_sorted = number == 1 and client.sorted_pages
        accept = PAST_THE_END if reached else frozenset({400}) if first_sorted else frozenset()
        answer = client.get(url, what=what, accept=accept)
        if answer.status == 400 and first_sorted:
            client.sorted_pages = False  # a SIS that refuses `sort`: read in its own order
            number -= 1
            continue
        if answer.status != 200:
            break  # refused past the total, which was reached: the end
        if number == 1:
            collection.first_date = answer.headers.get("Date")
        total = _total(answer.headers.get("X-Total-Count"), what, client)
        if total is not None:
            if highest is not None and total < highest:
                raise SisWireError(
                    f"{what}: X-Total-Count fell from {highest} to {total} during the pull: "
                    "records were removed meanwhile, and offset paging then skips one unseen"
                )
            highest = total
        items = _items(answer.body, name, what, client)
        if not items:
            if highest is not None and len(records) != highest:
                raise SisWireError(
                    f"{what}: the collection ended after {len(records)} records, but "
                    f"X-Total-Count says {highest}"
                )
            return collection
        if highest is not None and offset >= highest:
            raise SisWireError(
                f"{what}: {len(items)} more record(s) after the {highest} that X-Total-Count "
                "announced; kprov trusts neither the count nor the records"
            )
        collection.pages.append(PageRef(number, url, len(records)))
        for place, item in enumerate(items, 1):
            sourced_id = item.get("sourcedId")
            if not isinstance(sourced_id, str) or not sourced_id.strip():
                raise data_error(
                    source.url, [f"record {place} of page {number} (GET {url}) has no sourcedId"]
                )
            earlier = seen.get(sourced_id)
            shown = repr(client.scrubber.clip(sourced_id, 120))  # SIS text: scrubbed first
            if earlier == number:
                raise data_error(
                    source.url, [f"sourcedId {shown} appears twice on page {number} (GET {url})"]
                )
            if earlier is not None:
                raise SisWireError(
                    f"{what}: {name} record {shown} was already on page {earlier}: "
                    "records moved between pages during the pull (added or removed meanwhile, "
                    "or the server's order is not stable)"
                )
            seen[sourced_id] = number
            records.append(item)
        offset += len(items)
    if highest is not None and len(records) != highest:
        raise SisWireError(
            f"GET {url}: refused past the end after {len(records)} records, but X-Total-Count "
            f"says {highest}"
        )
    return collection


def _items(raw: bytes, name: str, what: str, client: SisClient) -> list[dict[str, Any]]:
    """The page's records: a list of JSON objects under the collection's name, or an error."""
    try:
        body = strict_json.loads(raw)
    except DuplicateName as twice:  # the name is server text: scrubbed whole, then cut
        raise SisWireError(
            f"{what}: the answer is not usable JSON (the name "
            f"{client.scrubber.clip(twice.name, 40)!r} appears twice in one object)"
        ) from None
    except ValueError as exc:  # positions and codecs only: no server text
        raise SisWireError(f"{what}: the answer is not usable JSON ({exc})") from None
    if not isinstance(body, dict) or name not in body:
        found = ", ".join(sorted(map(str, body))[:5]) if isinstance(body, dict) else "no object"
        raise SisWireError(
            f"{what}: a 200 answer without {name!r} (found: {client.scrubber.clip(found, 80)}); "
            "an answer without its collection is never read as an empty one"
        )
    items = body[name]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SisWireError(f"{what}: {name!r} is not a list of records")
    return items
