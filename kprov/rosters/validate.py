"""External-id rules, checked before anything is sent.

The reference forbids personally identifiable information in external ids, so ids that look
like an email address, a phone number or a person's name are refused; ``--hash-ids`` derives
an anonymized id from the SIS id instead.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable

from kprov.rosters.model import Origin, Person, Problem

MAX_ID_LENGTH = 255
HASH_FIX = "use an anonymized SIS id, or pass --hash-ids to derive one"

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE_PATTERNS = (
    re.compile(r"^\+\d[\d\s().-]{6,18}\d$"),  # international, '+' prefixed
    re.compile(r"^\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}$"),  # (555) 123-4567, 555-123-4567
)


def _looks_like_phone(value: str) -> bool:
    if not any(p.match(value) for p in _PHONE_PATTERNS):
        return False
    return 7 <= sum(c.isdigit() for c in value) <= 15


def _looks_like_name(value: str) -> bool:
    if " " not in value and "," not in value and "\t" not in value:
        return False  # fast path: the common id has no separators at all
    words = [w for w in re.split(r"[\s,]+", value) if w]

    if not 2 <= len(words) <= 4 or not re.search(r"\s", value):
        return False
    return all(w.replace("-", "").replace("'", "").replace(".", "").isalpha() for w in words)


def _surely_fine(value: str) -> bool:
    """A quick yes for the common id (no spaces, '@', ',' or phone shape); else check fully."""
    return (
        0 < len(value) <= MAX_ID_LENGTH
        and value.isprintable()
        and " " not in value
        and "@" not in value
        and "," not in value
        and value[0] not in "+("
        and not _PHONE_PATTERNS[1].match(value)
    )


def id_problems(value: str, *, check_pii: bool) -> list[str]:
    """What is wrong with *value* as an external (or SIS) id; empty when it is fine."""
    if value == "" or value.isspace():
        return ["the id is empty; every row needs an id"]
    found: list[str] = []
    if value != value.strip():
        found.append(f"id {value!r} has leading or trailing spaces; remove them")
    if len(value) > MAX_ID_LENGTH:
        found.append(f"id is {len(value)} characters long; the API allows {MAX_ID_LENGTH}")
    if not value.isprintable():  # fast path: printable ids have no control characters
        bad = [c for c in value if unicodedata.category(c) in ("Cc", "Cf")]
        if bad:
            found.append(f"id contains control character U+{ord(bad[0]):04X}; remove it")
    if check_pii:
        stripped = value.strip()
        if "@" in stripped and _EMAIL.search(stripped):
            found.append(f"id {stripped!r} looks like an email address (personal data); {HASH_FIX}")
        elif _looks_like_phone(stripped):
            found.append(f"id {stripped!r} looks like a phone number (personal data); {HASH_FIX}")
        elif _looks_like_name(stripped):
            found.append(f"id {stripped!r} looks like a person's name (personal data); {HASH_FIX}")
    return found


def hash_external_id(sis_id: str, key: bytes) -> str:
    """Anonymized external id: HMAC-SHA256 of the SIS id under the profile's key, in hex."""
    return hmac.new(key, sis_id.encode("utf-8"), hashlib.sha256).hexdigest()


def validate_people(
    people: Iterable[Person], *, hash_key: bytes | None = None
) -> tuple[list[Person], list[Problem]]:
    """Check every id, derive hashed ids when asked, and refuse duplicates (naming both lines).

    A person may appear once per learning instance; the same id twice for the same instance
    (or twice in a roster without instances) is an error.
    """
    problems: list[Problem] = []
    accepted: list[Person] = []
    first_seen: dict[tuple[str, str | None], Origin] = {}
    for person in people:
        origin = person.origin
        messages = (
            [] if _surely_fine(person.external_id)
            else id_problems(person.external_id, check_pii=hash_key is None)
        )  # fmt: skip
        if messages:
            problems.extend(Problem(origin.file, origin.line, m) for m in messages)
            continue
        if hash_key is not None:
            person = Person(
                external_id=hash_external_id(person.external_id, hash_key),
                role=person.role,
                origin=origin,
                instance_key=person.instance_key,
                sis_id=person.external_id,
                account_only=person.account_only,
            )
        key = (person.external_id, person.instance_key)
        earlier = first_seen.get(key)
        if earlier is not None:
            shown = person.sis_id or person.external_id
            where = f" in instance {person.instance_key!r}" if person.instance_key else ""
            problems.append(
                Problem(
                    origin.file,
                    origin.line,
                    f"id {shown!r} appears twice{where}: first at {earlier}; keep one row",
                )
            )
            continue
        first_seen[key] = origin
        accepted.append(person)
    return accepted, problems
