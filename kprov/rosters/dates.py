"""Dates as real dates: `2026-13-01` is refused, and an end before its start is an error."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from kprov.rosters.model import Origin, Problem

_ISO_SHAPE = re.compile(r"^\d{4}-?\d{2}-?\d{2}(?:[T ].*)?$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})$")
# Canvas's own samples write "2013-1-03 00:00:00" and "2013-05-03 00:00:00-06:00"
_LOOSE_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]\S.*)?$")
ISO_HINT = "write it as YYYY-MM-DD, e.g. 2026-09-01"


class DateError(ValueError):
    pass


def parse_date(text: str, *, us_slashes: bool = False, loose: bool = False) -> date:
    """An ISO 8601 date or date-time (its date part); with *us_slashes*, also M/D/YYYY and
    M/D/YY (a two-digit year is 20YY); with *loose*, also an unpadded Y-M-D and a space
    before the time.

    SDS v1 exports write term dates as M/D/YYYY (Microsoft's own sample does), Clever's
    sandbox district M/D/YY, Canvas's samples "2013-1-03 00:00:00"; OneRoster and manifests
    use ISO 8601. Anything that is not a real calendar date raises DateError.
    """
    value = text.strip()
    loose_match = _LOOSE_ISO.match(value) if loose and not _ISO_SHAPE.match(value) else None
    if loose_match:
        year, month, day = (int(g) for g in loose_match.groups())
        try:
            return date(year, month, day)
        except ValueError:
            raise DateError(f"{value!r} is not a real date; {ISO_HINT}") from None
    if _ISO_SHAPE.match(value):
        try:
            if len(value) in (8, 10):
                return date.fromisoformat(value)  # 2026-09-01 or 20260901
            return datetime.fromisoformat(value).date()
        except ValueError:
            raise DateError(f"{value!r} is not a real date; {ISO_HINT}") from None
    match = _US_DATE.match(value) if us_slashes else None
    if match:
        month, day, year = (int(g) for g in match.groups())
        year += 2000 if year < 100 else 0  # a school term, not a birth date: 8/1/15 is 2015
        try:
            return date(year, month, day)
        except ValueError:
            raise DateError(
                f"{value!r} is not a real date (read as month/day/year); {ISO_HINT}"
            ) from None
    raise DateError(f"{value!r} is not an ISO 8601 date; {ISO_HINT}")


def check_order(start: date | None, end: date | None) -> str | None:
    """The problem with an end before its start, or None."""
    if start is not None and end is not None and end < start:
        return f"the end date {end.isoformat()} is before the start date {start.isoformat()}"
    return None


@dataclass
class Term:
    """A term (OneRoster academic session) as written; parsed once, when a class uses it."""

    origin: Origin
    start: str
    end: str
    columns: tuple[int, int]  # where start and end are written
    span: tuple[date | None, date | None] | None = None

    def dates(self, problems: list[Problem]) -> tuple[date | None, date | None]:
        """Its real dates; a bad one is reported once, where it is written, and left out."""
        if self.span is None:
            parsed: list[date | None] = []
            for text, column in zip((self.start, self.end), self.columns, strict=True):
                try:
                    parsed.append(parse_date(text) if text.strip() else None)
                except DateError as exc:
                    problems.append(Problem(self.origin.file, self.origin.line, str(exc), column))
                    parsed.append(None)
            order = check_order(parsed[0], parsed[1])
            if order:
                problems.append(Problem(self.origin.file, self.origin.line, order, self.columns[1]))
                parsed = [None, None]
            self.span = (parsed[0], parsed[1])
        return self.span


def term_span(
    terms: dict[str, Term], ids: str, problems: list[Problem]
) -> tuple[date | None, date | None]:
    """The earliest start and the latest end of the terms listed in *ids* ("t1,t2")."""
    spans = [terms[t].dates(problems) for t in (i.strip() for i in ids.split(",")) if t in terms]
    starts = [s for s, _e in spans if s is not None]
    ends = [e for _s, e in spans if e is not None]
    return (min(starts) if starts else None), (max(ends) if ends else None)
