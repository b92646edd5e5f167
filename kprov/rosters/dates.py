"""Dates as real dates: `2026-13-01` is refused, and an end before its start is an error."""

from __future__ import annotations

import re
from datetime import date, datetime

_ISO_SHAPE = re.compile(r"^\d{4}-?\d{2}-?\d{2}(?:[T ].*)?$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
ISO_HINT = "write it as YYYY-MM-DD, e.g. 2026-09-01"


class DateError(ValueError):
    pass


def parse_date(text: str, *, us_slashes: bool = False) -> date:
    """An ISO 8601 date or date-time (its date part); with *us_slashes*, also M/D/YYYY.

    SDS v1 exports write term dates as M/D/YYYY (Microsoft's own sample does); OneRoster and
    manifests use ISO 8601. Anything that is not a real calendar date raises DateError.
    """
    value = text.strip()
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
