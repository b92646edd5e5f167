"""CSV as districts export it: delimiters, line endings, BOMs, encodings, Excel's leftovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from kprov.errors import InputError
from kprov.rosters import RosterOptions, load_roster
from kprov.rosters.csv_table import parse_delimiter, sniff_delimiter
from kprov.rosters.encodings import detect_encoding, guess_encoding

DATA = Path(__file__).resolve().parent.parent / "data" / "rosters"


def people(path: Path, **options: object) -> list[tuple[str, str, str | None, int]]:
    roster = load_roster([path], RosterOptions(**options))  # type: ignore[arg-type]
    return [(p.external_id, p.role, p.instance_key, p.origin.line) for p in roster.people]


def problems_of(path: Path, **options: object) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_roster([path], RosterOptions(**options))  # type: ignore[arg-type]
    return caught.value.problems


def test_cr_only_district_export_with_sis_column_names() -> None:
    assert people(DATA / "district_cr_only.csv", id_column="Student ID") == [
        ("100234", "learner", None, 2),
        ("100235", "learner", None, 3),
        ("100236", "learner", None, 4),
        ("200001", "instructor", None, 5),
    ]


def test_excel_semicolon_with_sep_line_in_windows_1252() -> None:
    # line 1 is `sep=;`, the header has empty trailing cells, and the file ends in ;;; rows
    assert people(DATA / "excel_semicolon_cp1252.csv", encoding="cp1252") == [
        ("eleve-0001", "learner", "maths-6b", 3),
        ("eleve-0002", "learner", "maths-6b", 4),
        ("eleve-0003", "learner", "maths-6b", 5),
        ("prof-0001", "instructor", "maths-6b", 6),
    ]


def test_windows_1252_without_encoding_names_every_line_the_byte_and_the_option() -> None:
    path = DATA / "excel_semicolon_cp1252.csv"
    found = problems_of(path)
    assert found[0].startswith(f"{path}:2:24: byte 0xE9 is not valid UTF-8; the file looks ")
    assert all("pass --encoding cp1252" in p for p in found)
    assert [int(p.split(":")[1]) for p in found] == [2, 3, 4, 5, 6]  # no noise after them


def test_tab_separated_txt_with_every_role_word_and_blank_rows() -> None:
    assert people(DATA / "sis_export_tab.txt") == [
        ("s-5001", "learner", "phys-1", 2),
        ("s-5002", "learner", "phys-1", 3),
        ("f-0001", "instructor", "phys-1", 4),
        ("f-0002", "instructor", "phys-2", 5),
    ]


def test_excel_unicode_text_is_utf16_le_with_tabs() -> None:
    assert [p[:2] for p in people(DATA / "excel_unicode_text.txt")] == [
        ("u-1001", "learner"),
        ("u-1002", "learner"),
        ("u-1003", "instructor"),
    ]


def test_utf16_big_endian_with_bom() -> None:
    assert people(DATA / "utf16_be.csv") == [
        ("be-1", "learner", None, 2),
        ("be-2", "instructor", None, 3),
    ]


def test_pipes_mixed_line_endings_and_quoted_line_breaks_keep_line_numbers() -> None:
    assert people(DATA / "pipe_mixed_endings.csv") == [
        ("p-1", "learner", None, 2),
        ("p-2", "learner", None, 3),  # its note spans lines 3 and 4
        ("p-3", "instructor", None, 5),
    ]


def test_utf16_without_bom_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes("external_user_id,role\r\nx-1,learner\r\n".encode("utf-16-le"))
    assert people(path) == [("x-1", "learner", None, 2)]


def test_options_override_the_detection(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"external_user_id;role,x\nstu-1;learner,1\n")
    assert people(path, delimiter="semicolon") == [("stu-1", "learner", None, 2)]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("external_user_id,nom\nstu-1,Zoë\n".encode("latin-1"))
    assert people(latin, encoding="latin-1") == [("stu-1", "learner", None, 2)]


def test_header_sniffing_prefers_the_delimiter_that_splits_the_header() -> None:
    assert sniff_delimiter("external_user_id;role;instance\n") == ";"
    assert sniff_delimiter("external_user_id\trole\n") == "\t"
    assert sniff_delimiter("a|b|c\n") == "|"
    assert sniff_delimiter('"last, first";id;role\n') == ";"  # commas inside quotes do not count
    assert sniff_delimiter("external_user_id\n") == ","
    assert parse_delimiter("tab") == "\t" and parse_delimiter("\\t") == "\t"
    with pytest.raises(ValueError, match="give one character"):
        parse_delimiter(";;")


def test_boms_and_bomless_utf16_choose_the_codec() -> None:
    assert detect_encoding(b"\xef\xbb\xbfid\n", None) == "utf-8-sig"
    assert detect_encoding(b"\xff\xfei\x00d\x00", None) == "utf-16"
    assert detect_encoding(b"\xfe\xff\x00i\x00d", None) == "utf-16"
    assert detect_encoding("id,role\n".encode("utf-16-be"), None) == "utf-16-be"
    assert detect_encoding(b"id,role\n", None) == "utf-8"
    assert detect_encoding(b"\xef\xbb\xbfid\n", "utf-8") == "utf-8-sig"  # the BOM still goes
    assert detect_encoding(b"id\n", "cp1252") == "cp1252"


def test_the_likely_encoding_is_named_from_the_bytes() -> None:
    assert guess_encoding("Zoë;Müller;élève\n".encode("cp1252"), "utf-8") == "cp1252"
    assert guess_encoding("Łukasz,Wójcik,Zażółć\n".encode("cp1250"), "utf-8") == "cp1250"
    assert guess_encoding("Дмитрий,Иванов\n".encode("cp1251"), "utf-8") == "cp1251"


def test_empty_header_cells_and_what_is_under_them_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("external_user_id,,role,\nstu-1,junk,learner,\nstu-2,,instructor\n,,,\n")
    assert people(path) == [("stu-1", "learner", None, 2), ("stu-2", "instructor", None, 3)]


def test_blank_rows_of_delimiters_or_spaces_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("\n,,\nexternal_user_id,role,instance\nstu-1,,\n , , \n,,\n\nstu-2,,\n")
    assert people(path) == [("stu-1", "learner", None, 4), ("stu-2", "learner", None, 8)]


def test_extra_empty_cells_at_the_end_of_a_row_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("external_user_id,role\nstu-1,learner,,\nstu-2,learner,x\n")
    assert problems_of(path) == [
        f"{path}:3: row has 3 fields but the header has 2; check for a missing or extra "
        "comma, or an unquoted comma in a value"
    ]


def test_a_sep_line_alone_is_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("sep=;\n")
    assert problems_of(path) == [f"{path}: the file is empty: no header row; export it again"]


def test_broken_quoting_names_the_line_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text('external_user_id,role\n"stu-1"x,learner\nstu-2,learner\nbad id,learner\n')
    found = problems_of(path)
    assert found[0].startswith(f"{path}:2: cannot parse CSV")
    assert found[1].startswith(f"{path}:4:1: id 'bad id' looks like a person's name")


def test_nul_bytes_and_overlong_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"external_user_id\nstu-\x001\n" + b"y" * (1 << 21) + b"\nstu-3\n")
    found = problems_of(path)
    assert found[0] == (
        f"{path}:2:5: line contains a NUL byte; the file is binary, or UTF-16 without a BOM: "
        "save it as UTF-8 CSV, or pass --encoding utf-16-le (in a manifest: "
        "`encoding: utf-16-le` on that roster's entry)"
    )
    assert found[1].startswith(f"{path}:3: line is longer than 1024 KiB")
    assert len(found) == 2


def test_an_undecodable_line_in_utf16_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(b"\xff\xfe" + "id\n".encode("utf-16-le") + b"\x00\xd8")  # lone surrogate
    found = problems_of(path, id_column="id")
    assert any("cannot decode the file as utf-16" in p for p in found)


def test_a_classic_mac_export_names_mac_roman(tmp_path: Path) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes("external_user_id,name\rstu-1,Renée Zoë\rstu-2,Jürgen\r".encode("mac_roman"))
    assert all("pass --encoding mac_roman" in p for p in problems_of(path))
    assert [p[0] for p in people(path, encoding="mac_roman")] == ["stu-1", "stu-2"]


def test_a_delimiter_inside_an_id_means_the_dialect_was_misread(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("external_user_id\nstu-1;learner\n")
    assert problems_of(path) == [
        f"{path}:2:1: id 'stu-1;learner' holds ';', a CSV delimiter: the file's delimiter was "
        "probably not recognised; pass --delimiter ';' (in a manifest: `delimiter: ';'` on "
        "that roster's entry)"
    ]
