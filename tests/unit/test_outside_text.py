"""Outside text is made printable (and CSV-safe) by one function, visibly, and fast."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from kprov.outside_text import _FORMAT_CHARS, csv_cell, printable, printable_data

ATTACKS = {
    "OSC title": ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),
    "clear screen": ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),
    "OSC 52 clipboard, ST": ("\x1b]52;c;ZXZpbA==\x1b\\", "\\x1b]52;c;ZXZpbA==\\x1b\\"),
    "C1 CSI": ("\x9b31m", "\\x9b31m"),
    "right-to-left override": ("abc\u202edcba", "abc\\u202edcba"),
    "bidi isolate": ("\u2066x\u2069", "\\u2066x\\u2069"),
    "zero width space": ("a\u200bb", "a\\u200bb"),
    "line separator": ("a\u2028b", "a\\u2028b"),
    "tag character": ("a\U000e0041", "a\\U000e0041"),
    "lone surrogate": ("a\ud800", "a\\ud800"),
    "NUL, CR, LF, TAB": ("a\0b\rc\nd\te", "a\\x00b\\x0dc\\x0ad\\x09e"),
    "DEL": ("a\x7f", "a\\x7f"),
}


@pytest.mark.parametrize(("raw", "shown"), list(ATTACKS.values()), ids=list(ATTACKS))
def test_control_bidi_and_invisible_characters_are_escaped_visibly(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_ordinary_text_of_any_script_is_left_alone() -> None:
    for text in ("Algèbre I — P3", "Математика 7Б", "کلاس\u200cها", "👩\u200d🏫 class", "数学"):
        assert printable(text) == text


def test_a_sink_may_keep_its_own_line_breaks_and_tabs() -> None:
    assert printable("a\tb\nc\x1b", keep="\t\n") == "a\tb\nc\\x1b"


def test_nested_data_is_escaped_keys_and_values() -> None:
    data = {"na\x1bme": ["x\u202e", 3, None, {"k": "\x07"}]}
    assert printable_data(data) == {"na\\x1bme": ["x\\u202e", 3, None, {"k": "\\x07"}]}


def test_the_format_character_list_matches_this_python_unicode() -> None:
    """Every Cf/Zl/Zp/Cs character (except the joiners) is escaped, and nothing else is."""
    import re

    listed = re.compile(f"[{_FORMAT_CHARS}]")
    planes = [*range(0x10000), *range(0x10000, 0x20000), *range(0xE0000, 0xE0080)]
    for code in planes:
        char = chr(code)
        wanted = unicodedata.category(char) in ("Cf", "Zl", "Zp", "Cs") and code not in (
            0x200C,
            0x200D,
        )
        if wanted:
            assert listed.match(char), hex(code)
        elif listed.match(char):
            assert 0x13439 <= code <= 0x1343F, hex(code)  # Cf from Unicode 15 on
    assert sys.maxunicode == 0x10FFFF


FORMULAS = [
    '=HYPERLINK("http://x","y")',
    "+SUM(1+1)",
    "@SUM(1+1)",
    "-2+3+cmd|' /C calc'!A0",
    "=cmd|' /C calc'!A0",
    "\uff1d1+1",
    "\uff0bSUM(1)",
    "\uff0d1+1",
    "\uff20SUM(1)",
    "  =1+1",
    "-abc",
]


@pytest.mark.parametrize("cell", FORMULAS)
def test_formula_leading_cells_are_neutralised_the_owasp_way(cell: str) -> None:
    assert csv_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-1", "+33", "-0.5", "42", "stu-000123", "", "O'Brien"])
def test_plain_numbers_and_ordinary_values_are_kept(cell: str) -> None:
    assert csv_cell(cell) == cell


def test_control_characters_in_a_cell_are_escaped_before_the_formula_check() -> None:
    assert csv_cell("\t=1+1") == "\\x09=1+1"
    assert csv_cell("\r\n@x") == "\\x0d\\x0a@x"
    assert csv_cell(None) == "" and csv_cell(7) == "7"
