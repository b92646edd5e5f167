"""Ids, role words and dates: what is a real id, a real role and a real date."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from kprov.errors import InputError
from kprov.rosters import RosterOptions, load_roster
from kprov.rosters.dates import DateError, check_order, parse_date
from kprov.rosters.model import INSTRUCTOR, LEARNER
from kprov.rosters.roles import ACCEPTED, RoleError, role_of
from kprov.rosters.validate import FAST_ID, id_problems


@pytest.mark.parametrize(
    "damaged",
    ["9.87654E+11", "1E+12", "1,23E+05", "9.8E-05", "#N/A", "#VALUE!", "#REF!", "#NAME?",
     "#DIV/0!", "NULL", "null", "N/A", "n/a", "none", "None", "-", "--", "?", "nan", "###"],
)  # fmt: skip
def test_spreadsheet_damage_and_placeholders_are_not_ids(damaged: str) -> None:
    [problem] = id_problems(damaged, check_pii=True)
    assert "spreadsheet error or placeholder" in problem or "scientific notation" in problem


@pytest.mark.parametrize(
    ("value", "phrase"),
    [
        ("re\u0301mi-01", "not in Unicode NFC form"),  # e + combining acute
        ("stu\u00a01", "non-ASCII space (U+00A0 NO-BREAK SPACE)"),
        ("stu\u30001", "non-ASCII space (U+3000 IDEOGRAPHIC SPACE)"),
        ("stu-\u200b1", "invisible character U+200B ZERO WIDTH SPACE"),
        ("\ufeffstu-1", "invisible character U+FEFF"),
        ("stu-\u00ad1", "invisible character U+00AD SOFT HYPHEN"),
        ("stu-\x071", "control character U+0007"),
        ("stu-1 ", "leading or trailing spaces"),
    ],
)
def test_ids_with_two_spellings_are_refused(value: str, phrase: str) -> None:
    assert any(phrase in p for p in id_problems(value, check_pii=True))


def test_the_nfc_message_gives_the_composed_spelling() -> None:
    [problem] = id_problems("re\u0301mi-01", check_pii=True)
    assert problem.endswith("write it as 'rémi-01'")


@pytest.mark.parametrize(
    "fine",
    ["20231234", "stu-000123", "A1B2C3", "2023-0001", "gref-9", "rémi-01", "0012E5", "s.o_1:2/3",
     "none-1", "nancy", "E+1"],
)  # fmt: skip
def test_real_ids_pass(fine: str) -> None:
    assert id_problems(fine, check_pii=True) == [], fine


def test_the_fast_path_agrees_with_the_full_check() -> None:
    for value in ("stu-1", "555-123-4567", "null", "9.8E-05", "1.5e-3", "NaN", "a/b", "x" * 256):
        if FAST_ID.match(value):
            assert id_problems(value, check_pii=True) == [], value


def test_a_damaged_id_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("external_user_id,role\nstu-1,learner\n9.87654E+11,learner\n#N/A,learner\n")
    with pytest.raises(InputError) as caught:
        load_roster([path])
    found = caught.value.problems
    assert found[0].startswith(f"{path}:3:1: id '9.87654E+11' is a number Excel wrote in scien")
    assert found[1].startswith(f"{path}:4:1: id '#N/A' is a spreadsheet error or placeholder")


def test_nfc_and_nfd_spellings_cannot_become_two_accounts(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("external_user_id\nr\u00e9mi-01\nre\u0301mi-01\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_roster([path])
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}:3:1: id ") and "NFC" in problem


@pytest.mark.parametrize(
    ("word", "role"),
    [("student", LEARNER), ("Student", LEARNER), ("LEARNER", LEARNER), (" pupil ", LEARNER),
     ("teacher", INSTRUCTOR), ("Instructor", INSTRUCTOR), ("PROFESSOR", INSTRUCTOR),
     ("faculty", INSTRUCTOR)],
)  # fmt: skip
def test_role_words_map_case_insensitively(word: str, role: str) -> None:
    assert role_of(word) == role


@pytest.mark.parametrize(
    "word",
    ["aide", "guardian", "parent", "relative", "proctor", "administrator", "counselor",
     "districtAdministrator", "siteAdministrator", "systemAdministrator", "principal",
     "teacherAssistant", "lecturer", "other", "ext:coach"],
)  # fmt: skip
def test_known_roles_kprov_does_not_provision_are_none(word: str) -> None:
    assert role_of(word) is None


def test_other_words_are_errors_naming_the_accepted_words() -> None:
    with pytest.raises(RoleError) as caught:
        role_of("wizard")
    assert str(caught.value) == f"role 'wizard' is not one of: {ACCEPTED}"
    assert role_of("", empty=LEARNER) == LEARNER
    with pytest.raises(RoleError, match="the role is empty"):
        role_of("  ")


def test_plain_rosters_skip_and_report_roles_kprov_does_not_provision(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("external_user_id,role\nstu-1,Student\npar-1,Guardian\nt-1,Teacher\n")
    roster = load_roster([path], RosterOptions())
    assert [(p.external_id, p.role) for p in roster.people] == [
        ("stu-1", LEARNER),
        ("t-1", INSTRUCTOR),
    ]
    [skipped] = roster.skipped_rows
    assert (str(skipped.origin), skipped.external_id) == (f"{path}:3", "par-1")
    assert "Guardian is not provisioned" in skipped.reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2026-09-01", date(2026, 9, 1)), ("20260901", date(2026, 9, 1)),
     ("2023-05-01T18:25:43.511Z", date(2023, 5, 1)), ("2026-09-01 08:00", date(2026, 9, 1))],
)  # fmt: skip
def test_iso_dates_and_datetimes_parse(text: str, expected: date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    ("text", "phrase"),
    [("2026-13-01", "is not a real date"), ("2026-02-30", "is not a real date"),
     ("1st of May", "is not an ISO 8601 date"), ("7/1/2017", "is not an ISO 8601 date"),
     ("2026/09/01", "is not an ISO 8601 date")],
)  # fmt: skip
def test_dates_that_are_not_real_are_refused(text: str, phrase: str) -> None:
    with pytest.raises(DateError, match=phrase):
        parse_date(text)


def test_sds_month_day_year_dates_and_order() -> None:
    assert parse_date("7/1/2017", us_slashes=True) == date(2017, 7, 1)
    with pytest.raises(DateError, match="read as month/day/year"):
        parse_date("30/6/2018", us_slashes=True)
    assert check_order(date(2018, 6, 30), date(2017, 7, 1)) == (
        "the end date 2017-07-01 is before the start date 2018-06-30"
    )
    assert check_order(date(2017, 7, 1), None) is None
