"""Text from outside (a server, a proxy, an SIS export) made safe to show: one function each.

``printable`` is applied to every server- or SIS-supplied string before a terminal, a log, a
report or a CSV cell sees it; ``csv_cell`` adds the spreadsheet rule for CSV files. This
module imports nothing of kprov's, so every layer (api/, provision/, cli/, state/) can use it.

What is escaped, visibly (``\\x1b``, ``\\u202e``), never dropped (a reader must see that
something was there):
- C0 and C1 control characters, DEL: ESC starts the terminal's CSI and OSC sequences
  (``ESC [2J`` clears the screen, ``ESC ]0;...BEL`` retitles the window, OSC 52 writes the
  clipboard); escaping ESC (and the C1 CSI, U+009B) leaves every such sequence inert.
- Bidirectional overrides, embeddings, isolates and marks (U+202A-U+202E, U+2066-U+2069,
  U+200E, U+200F, U+061C): "Trojan Source" text that displays in another order than it reads.
- Other invisible format characters (Unicode category Cf: zero-width space, word joiner, BOM,
  tag characters...), line and paragraph separators, and lone surrogates (which would also
  make writing to a UTF-8 stream fail). ZERO WIDTH (NON-)JOINER are kept: Persian, Indic and
  emoji text needs them, and they reorder nothing.
Backslashes are not doubled: the escapes are for a person reading, not a parser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

# Cf (minus U+200C/U+200D), Zl, Zp and Cs, from Unicode 15; a unit test compares it with the
# running Python's unicodedata, so a newer Unicode cannot slip a new format character by.
_FORMAT_CHARS = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u200e\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
_CONTROLS = [chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))]


@lru_cache(maxsize=8)
def _unsafe(keep: str) -> re.Pattern[str]:
    controls = "".join(re.escape(c) for c in _CONTROLS if c not in keep)
    return re.compile(f"[{controls}{_FORMAT_CHARS}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str, *, keep: str = "") -> str:
    """*text* with every control, bidi and invisible format character escaped visibly.

    *keep* names control characters to let through: ``"\\n"`` or ``"\\t\\n"`` for a sink
    that prints kprov's own multi-line or tab-separated text. Fast when nothing needs it.
    """
    if text.isprintable():  # C speed; false for every character escaped here (and more)
        return text
    pattern = _unsafe(keep)
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)


def printable_data(value: Any) -> Any:
    """A copy of a JSON-like value with ``printable`` applied to every string in it (keys too)."""
    if isinstance(value, str):
        return value if value.isprintable() else printable(value)
    if isinstance(value, Mapping):
        return {  # the common value (printable text, a number) is kept without a call
            (k if k.__class__ is str and k.isprintable() else printable_data(k)): (
                v
                if (v.__class__ is str and v.isprintable())
                or (v.__class__ is not str and v.__class__ is not dict and v.__class__ is not list)
                else printable_data(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [printable_data(v) for v in value]
    return value


# A spreadsheet reads a cell starting with one of these as a formula (OWASP's list, with the
# full-width forms Excel also accepts, and NUL, which ASVS adds). Leading spaces do not hide
# one from every spreadsheet, so they are looked through.
_FORMULA_START = frozenset("=+-@\t\r\n\0\uff1d\uff0b\uff0d\uff20")
# ...except a plain number: "-1" or "+33" is a value, not a formula, and ids such as "-1" are
# allowed ids. Anything more ("-1+1", "-2+3+cmd|...") is neutralised.
_LOOK_CLOSER = _FORMULA_START | {" "}
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d+)?|[.,]\d+)\Z")


def csv_cell(value: object) -> str:
    """A CSV cell that no spreadsheet evaluates: ``printable``, then a leading ``'`` when the
    text starts (after any spaces) with a formula character and is not a plain number."""
    if value.__class__ is not str:
        value = "" if value is None else str(value)
    text: str = value
    if text.isprintable():
        if not text or text[0] not in _LOOK_CLOSER:
            return text  # the common case, in one C-speed test and one set look-up
    else:
        text = printable(text)
    head = text.lstrip(" ")
    if head and head[0] in _FORMULA_START and not _PLAIN_NUMBER.match(head):
        return "'" + text
    return text


def csv_row(values: Any) -> list[str]:
    """``csv_cell`` of each value of a row."""
    return [csv_cell(v) for v in values]


def journal_cell(text: str) -> str:
    """*text* for a CSV file kprov also reads back (the instance journal's names): a leading
    ``'`` when it would start a formula -- or already starts with ``'``, so that reading it
    back (``from_journal_cell``) is exact."""
    head = text.lstrip(" ")
    if text[:1] == "'" or (head[:1] in _FORMULA_START and not _PLAIN_NUMBER.match(head)):
        return "'" + text
    return text


def from_journal_cell(cell: str) -> str:
    """What ``journal_cell`` was given."""
    return cell[1:] if cell[:1] == "'" else cell
