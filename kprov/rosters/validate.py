"""The rules for ids, keys and names, checked before anything is sent.

An id becomes a permanent account, so anything that is not plainly an id is refused: the
reference forbids personal data (an email, a phone number, a name: `--hash-ids` derives an
anonymized id instead); spreadsheet damage (`9.87654E+11`, `#N/A`, `NULL`, `-`) is not an id;
and an id must have one spelling only (Unicode NFC, no invisible characters, no exotic
spaces), or one person could become two accounts.

Every id and key also ends up in CSV files an administrator opens in a spreadsheet (the
mapping export, reports): one that starts like a formula (`=`, `+`, `@`, `-` unless it is a
plain negative number, their full-width forms) would run there, so it is refused as "a
spreadsheet formula, not an id" (OWASP's CSV injection). Keys and names (instance keys, graph
ids, class titles) are refused when they hold control characters (ESC, C1), bidi overrides
or other invisible format characters: shown on a terminal they could rewrite or disguise it.
Names are free text, so a leading `=` is theirs to keep; the CSV writers neutralise it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable

from kprov.api_facts import MAX_ID_LENGTH
from kprov.rosters.model import Origin, Person, Problem
from kprov.rosters.text import delimiter_fix

HASH_FIX = "use an anonymized SIS id, or pass --hash-ids to derive one"

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE_PATTERNS = (
    re.compile(r"^\+\d[\d\s().-]{6,18}\d$"),  # international, '+' prefixed
    re.compile(r"^\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}$"),  # (555) 123-4567, 555-123-4567
)
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]\d{1,3}$")  # Excel's 9.87654E+11
PLACEHOLDERS = frozenset(
    {
        "#n/a", "#na", "#value!", "#ref!", "#name?", "#div/0!", "#num!", "#null!", "#spill!",
        "#calc!", "#getting_data", "null", "nil", "none", "n/a", "na", "nan", "undefined",
        "unknown", "tbd", "(blank)", "-", "--", "?", "??",
    }
)  # fmt: skip
# The common id, accepted without further checks: letters, digits and . _ : / - only, and
# not a placeholder, a dashed phone number or a number in scientific notation.
FAST_ID = re.compile(  # possessive \d++: a numeric id costs no backtracking
    r"(?!(?i:null|nil|none|n/?a|nan|undefined|unknown|tbd)\Z)"
    r"(?!\d{3}[.-]?\d{3}[.-]\d{4}\Z)"
    r"(?!\d++(?:\.\d++)?[eE]-\d{1,3}\Z)"
    rf"[A-Za-z0-9][A-Za-z0-9_.:/-]{{0,{MAX_ID_LENGTH - 1}}}\Z"
)


def contains_email(text: str) -> bool:
    """Whether *text* holds an email address (personal data the API must never see)."""
    return "@" in text and _EMAIL.search(text) is not None


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


def _character_problem(value: str) -> str | None:
    """A character that would give one id two spellings: controls, invisible ones, and
    spaces other than the ASCII space."""
    for char in value:
        if char.isprintable() or char == " ":
            continue
        name = unicodedata.name(char, "")
        code = f"U+{ord(char):04X}{' ' + name if name else ''}"
        category = unicodedata.category(char)
        if category == "Cc":
            return f"id contains control character {code}; remove it"
        if category in ("Zs", "Zl", "Zp"):
            return f"id contains a non-ASCII space ({code}); remove it or use a plain space"
        return f"id contains an invisible character {code}; remove it"
    return None


# Leading characters that make a spreadsheet cell a formula: OWASP's `= + - @` and TAB / CR,
# and the full-width forms some spreadsheets read the same way. A leading '-' is allowed for
# a plain negative number (`-123`), never before anything else (`-2+3` is a formula).
FORMULA_LEADERS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
_NEGATIVE_NUMBER = re.compile(r"-\d+(?:\.\d+)?\Z")
# Zero-width (non-)joiners are spelling in Persian and Indic scripts, and in emoji.
_JOINERS = frozenset("\u200c\u200d")
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})


def formula_problem(value: str, what: str = "id") -> str | None:
    """Why *value* would be a formula in a spreadsheet cell; None when it would not."""
    if not value or value[0] not in FORMULA_LEADERS:
        return None
    if value[0] == "-" and _NEGATIVE_NUMBER.match(value):
        return None
    return (
        f"{what} {value!r} starts with {value[0]!r}: a spreadsheet formula, not an {what} (a "
        "spreadsheet opening kprov's CSV files would run it); fix it at its source"
    )


def control_problem(value: str, what: str) -> str | None:
    """The first control, bidi or invisible format character of a key or a name, described;
    None when there is none. (Exotic spaces and private-use characters are allowed here.)"""
    if value.isascii() and value.isprintable():
        return None
    for char in value:
        if char.isprintable() or char == " " or char in _JOINERS:
            continue
        category = unicodedata.category(char)
        if category not in _UNSAFE_CATEGORIES:
            continue
        name = unicodedata.name(char, "")
        code = f"U+{ord(char):04X}{' ' + name if name else ''}"
        kind = "control character" if category == "Cc" else "invisible character"
        return (
            f"{what} contains {kind} {code}: escape sequences, bidi overrides and invisible "
            "characters can disguise what a terminal or a report shows; remove it at its source"
        )
    return None


def key_problems(value: str, what: str = "instance key") -> list[str]:
    """What is wrong with *value* as an instance key, a graph id or an instance reference."""
    if FAST_ID.match(value):
        return []
    first = control_problem(value, what) or formula_problem(value, what)
    if first is None and value != value.strip():
        first = f"{what} {value!r} has leading or trailing spaces; remove them"
    return [first] if first else []  # (lengths are the API's limits: see kprov.api_facts)


def name_problems(value: str, what: str = "name") -> list[str]:
    """What is wrong with *value* as a display name (free text: only controls are refused)."""
    found = control_problem(value, what)
    return [found] if found else []


def id_problems(value: str, *, check_pii: bool) -> list[str]:
    """What is wrong with *value* as an external (or SIS) id; empty when it is fine."""
    if FAST_ID.match(value):
        return []
    if value == "" or value.isspace():
        return ["the id is empty; every row needs an id"]
    found: list[str] = []
    bad_character = None if value.isascii() and value.isprintable() else _character_problem(value)
    if bad_character:
        found.append(bad_character)
    elif value != value.strip():
        found.append(f"id {value!r} has leading or trailing spaces; remove them")
    if len(value) > MAX_ID_LENGTH:
        found.append(f"id is {len(value)} characters long; the API allows {MAX_ID_LENGTH}")
    stripped = value.strip()
    if stripped.lower() in PLACEHOLDERS or (stripped and not stripped.strip("-?#")):
        found.append(
            f"id {stripped!r} is a spreadsheet error or placeholder, not an id; put the real "
            "id in this cell, or delete the row"
        )
        return found
    if _SCIENTIFIC.match(stripped):
        found.append(
            f"id {stripped!r} is a number Excel wrote in scientific notation (its digits are "
            "lost); format the id column as Text in the spreadsheet and export it again"
        )
        return found
    delimiter = next((c for c in ";|\t" if c in value), None)
    if delimiter and not formula_problem(stripped):  # `=cmd|' /C calc'!A0` is no lost column
        found.append(
            f"id {value!r} holds {delimiter!r}, a CSV delimiter: the file's delimiter was "
            f"probably not recognised; {delimiter_fix(delimiter)}"
        )
    if not value.isascii() and not unicodedata.is_normalized("NFC", value):
        found.append(
            f"id {value!r} is not in Unicode NFC form (decomposed accents), so it could become "
            f"a second account; write it as {unicodedata.normalize('NFC', value)!r}"
        )
    before_pii = len(found)
    if check_pii:
        if "@" in stripped and _EMAIL.search(stripped):
            found.append(f"id {stripped!r} looks like an email address (personal data); {HASH_FIX}")
        elif _looks_like_phone(stripped):
            found.append(f"id {stripped!r} looks like a phone number (personal data); {HASH_FIX}")
        elif _looks_like_name(stripped):
            found.append(f"id {stripped!r} looks like a person's name (personal data); {HASH_FIX}")
    pii = len(found) > before_pii  # its remedy (--hash-ids) is the one to read
    formula = None if bad_character or pii else formula_problem(stripped)
    if formula:
        found.append(formula)
    return found


def hash_external_id(sis_id: str, key: bytes) -> str:
    """Anonymized external id: HMAC-SHA256 of the SIS id under the profile's key, in hex."""
    return hmac.new(key, sis_id.encode("utf-8"), hashlib.sha256).hexdigest()


def validate_people(
    people: Iterable[Person], *, hash_key: bytes | None = None
) -> tuple[list[Person], list[Problem]]:
    """Check every id, derive hashed ids when asked, and refuse duplicates (naming both lines).

    A person may appear once per learning instance; the same id twice for the same instance
    (or twice in a roster without instances) is an error. (The readers do this streaming,
    through ``Collector``; this is the same rule for people made elsewhere.)
    """
    problems: list[Problem] = []
    accepted: list[Person] = []
    first_seen: dict[tuple[str, str | None], Origin] = {}
    for person in people:
        origin = person.origin
        messages = id_problems(person.external_id, check_pii=hash_key is None)
        if messages:
            problems.extend(Problem(origin.file, origin.line, m) for m in messages)
            continue
        if hash_key is not None:
            person = person._replace(
                external_id=hash_external_id(person.external_id, hash_key),
                sis_id=person.external_id,
            )
        key = (person.external_id, person.instance_key)
        earlier = first_seen.get(key)
        if earlier is not None:
            problems.append(duplicate_problem(person, earlier))
            continue
        first_seen[key] = origin
        accepted.append(person)
    return accepted, problems


def source_of(label: str) -> str:
    """The input a row's file label belongs to: ``district.zip!users.csv`` -> ``district.zip``."""
    return label.rpartition("!")[0] or label


PREFIX_FIX = (
    "if they are two people, make each source's ids distinct: `id_prefix: <school>-` on each "
    "manifest entry, or hash each school's ids with a key of its own (a state directory per "
    "school: docs/rosters.md, 'Ids from several sources')"
)


def duplicate_problem(person: Person, earlier: Origin) -> Problem:
    """The same id twice: one row too many, or (across files) perhaps two people."""
    shown = person.sis_id or person.external_id
    where = f" in instance {person.instance_key!r}" if person.instance_key else ""
    here = person.origin.file
    if person.instance_key or here == earlier.file:
        advice = "keep one row"
    elif source_of(here) != source_of(earlier.file):
        advice = f"if they are one person, list them in one source only; {PREFIX_FIX}"
    else:
        advice = (
            "one id for two rows of the same export (a student and a staff member?): if they "
            "are one person, keep one row; if two, the export's ids overlap: give them distinct "
            "ids in the SIS and export again"
        )
    return Problem(
        person.origin.file,
        person.origin.line,
        f"id {shown!r} appears twice{where}: first at {earlier}; {advice}",
    )
