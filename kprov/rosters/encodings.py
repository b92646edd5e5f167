"""Which encoding a roster is in: the one asked for, else its BOM's, else UTF-16 by its NULs,
else UTF-8; and when UTF-8 fails, the likely one to name in the remedy (Windows-1252 for most
of the districts' Excel exports, the others by what the text looks like).
"""

from __future__ import annotations

import codecs
import unicodedata

# Likely encodings of an export that is not UTF-8, most common first (ties go to the first).
_LIKELY = (
    "cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1257", "cp932", "gb18030",
    "big5", "euc_kr", "mac_roman", "cp850",
)  # fmt: skip


def check_encoding(name: str) -> str:
    """The codec's canonical name; LookupError naming the fix for an unknown one."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):  # zlib, rot13, hex, ...
        kind = "known" if info is None else "text"
        raise LookupError(
            f"--encoding {name!r} is not a {kind} encoding; give a Python codec name such as "
            "utf-8, cp1252, latin-1 or utf-16"
        )
    return info.name


def detect_encoding(head: bytes, chosen: str | None) -> str:
    """The codec to read a file starting with *head*: the chosen one (a UTF-8 BOM is still
    dropped), else the BOM's, else UTF-16 if every other byte is NUL, else UTF-8."""
    if chosen is not None:
        if codecs.lookup(chosen).name == "utf-8" and head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        return chosen
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(head) >= 8:
        even, odd = head[0::2], head[1::2]
        if 0 not in even and odd.count(0) * 5 >= len(odd) * 4:
            return "utf-16-le"
        if 0 not in odd and even.count(0) * 5 >= len(even) * 4:
            return "utf-16-be"
    return "utf-8"


def encoding_label(codec: str) -> str:
    name = codecs.lookup(codec).name
    return "UTF-8" if name in ("utf-8", "utf-8-sig") else name


def _symbols_in_names(text: str) -> int:
    """How many non-ASCII characters of *text* are not letters (marks count as letters)."""
    return sum(1 for ch in text if ord(ch) > 127 and not ch.isalpha() and not _is_mark(ch))


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch).startswith("M")


def guess_encoding(sample: bytes, exclude: str, prefer: tuple[str, ...] = ()) -> str | None:
    """The likely encoding of *sample* (bytes that were not valid in *exclude*), or None.

    charset_normalizer scores the candidates; its scores differ between releases (3.4 finds
    nothing wrong with cp1252's "£ukasz Za¿ó³æ"), so a reading whose non-ASCII characters are
    letters wins over one that puts symbols inside names. On a tie, and among encodings that
    read the sample exactly as the pick does (cp1250 and cp1252 agree on "José"), the most
    common one is named.
    """
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - installed with requests
        return None
    excluded = codecs.lookup(exclude).name
    ordered = prefer + tuple(c for c in _LIKELY if c not in prefer)
    candidates = [c for c in ordered if codecs.lookup(c).name != excluded]
    rank = {codecs.lookup(c).name: i for i, c in enumerate(candidates)}
    matches = list(from_bytes(sample, cp_isolation=candidates))
    if not matches:
        return None
    best = min(
        matches,
        key=lambda m: (
            _symbols_in_names(str(m)),
            m.chaos,
            -m.coherence,
            rank.get(codecs.lookup(m.encoding).name, 99),
        ),
    )
    reading = str(best)
    for candidate in candidates:
        try:
            if sample.decode(candidate) == reading:
                return candidate
        except UnicodeDecodeError:
            continue
    return codecs.lookup(best.encoding).name
