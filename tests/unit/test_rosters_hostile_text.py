"""Hostile text at input: spreadsheet formulas in ids and keys, control and bidi characters in
keys and names. Each is refused where it is written (file:line), before anything is sent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kprov.errors import ExitCode, InputError
from kprov.rosters import RosterOptions, load_roster
from kprov.rosters.manifest import read_manifest
from kprov.rosters.validate import id_problems, key_problems, name_problems

DATA = Path(__file__).resolve().parent.parent / "data"
FORMULA = "a spreadsheet formula, not an"

FORMULAS = ['=HYPERLINK("http://x")', "+SUM(1+1)", "@SUM(1+1)", "=cmd|' /C calc'!A0", "-2+3",
            "-abc", "=1", "\uff1d1", "\uff0b1", "\uff0d1", "\uff20x"]  # fmt: skip
NOT_FORMULAS = ["-123", "-1.5", "s-1", "a=b", "1+1", "stu@", "x-=y"]
CONTROLS = ["k\x1b[2J", "k\x1b]0;owned\x07", "k\u202eg", "k\u2066x\u2069", "k\u200b", "k\u009b1m",
            "k\n", "k\u2028", "k\ufeff", "k\u00ad"]  # fmt: skip


def problems(call: object) -> list[str]:
    with pytest.raises(InputError) as caught:
        call()  # type: ignore[operator]
    assert caught.value.exit_code == ExitCode.INPUT
    return caught.value.problems


@pytest.mark.parametrize("value", FORMULAS)
def test_ids_and_keys_that_start_like_a_formula_are_refused(value: str) -> None:
    [id_problem] = id_problems(value, check_pii=False)[-1:]
    assert f"{FORMULA} id" in id_problem and repr(value) in id_problem
    assert any(f"{FORMULA} instance key" in p for p in key_problems(value))


@pytest.mark.parametrize("value", NOT_FORMULAS)
def test_a_negative_number_and_inner_signs_are_not_formulas(value: str) -> None:
    assert not any(FORMULA in p for p in id_problems(value, check_pii=False))
    assert key_problems(value) == []


@pytest.mark.parametrize("value", CONTROLS)
def test_keys_and_names_with_controls_bidi_or_invisible_characters_are_refused(value: str) -> None:
    [key_problem] = key_problems(value)
    assert key_problem.startswith("instance key contains ")
    [name_problem] = name_problems(value, "the class title")
    assert name_problem.startswith("the class title contains ")
    assert "\x1b" not in name_problem and "\u202e" not in name_problem


def test_names_are_free_text_otherwise() -> None:
    for name in ("=Algebra (honours)", "Kunst\u00a0I", "نامه\u200cها", "👩\u200d🔬 Lab", "+ Maths"):
        assert name_problems(name) == []


def test_a_leading_tab_or_cr_is_one_problem_not_two() -> None:
    assert len(key_problems("\t=x")) == 1
    assert len(key_problems(" k ")) == 1 and "leading or trailing spaces" in key_problems(" k ")[0]


def test_a_csv_roster_refuses_formula_ids_and_instance_keys_at_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "external_user_id,instance\n"
        "s-1,alg\n"
        '"=HYPERLINK(""http://x"")",alg\n'
        "s-2,=cmd|' /C calc'!A0\n"
        "s-3,k\x1b[2J\n"
        "-123,alg\n"
    )
    found = problems(lambda: load_roster([path], RosterOptions()))
    assert [p.split(": ", 1)[0] for p in found] == [f"{path}:3:1", f"{path}:4", f"{path}:5"]
    assert f"{FORMULA} id" in found[0]
    assert f"{FORMULA} instance key" in found[1]
    assert "control character U+001B" in found[2]


def test_the_slow_path_and_yaml_rosters_refuse_them_too(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("users:\n  - {id: s-1, instance: '@SUM(1+1)'}\n  - {id: '+SUM(1+1)'}\n")
    found = problems(lambda: load_roster([path], RosterOptions()))
    assert len(found) == 2 and all(FORMULA in p for p in found)
    csv = tmp_path / "r.csv"
    csv.write_text("external_user_id,instance\ns-1,\u202ek\n")
    found = problems(lambda: load_roster([csv], RosterOptions(hash_key=b"k")))
    assert found == [f"{csv}:2: " + key_problems("\u202ek")[0]]


def _oneroster(tmp_path: Path, title: str, class_id: str = "k-sci-1") -> Path:
    bundle = tmp_path / "bundle"
    shutil.copytree(DATA / "rosters" / "oneroster-1.1-bulk", bundle)
    classes = bundle / "classes.csv"
    text = classes.read_text().replace("Science 7 - Period 1", title)
    classes.write_text(text.replace("k-sci-1,", f"{class_id},", 1))
    return bundle


def test_a_oneroster_class_title_with_escapes_or_bidi_overrides_is_refused(tmp_path: Path) -> None:
    bundle = _oneroster(tmp_path, "Science\x1b]0;pwned\x07 \u202eP1")
    found = problems(lambda: load_roster([bundle], RosterOptions()))
    [problem] = found
    assert problem.startswith(f"{bundle}!classes.csv:2:4: the class title contains ")
    assert "U+001B" in problem


def test_a_oneroster_class_sourced_id_like_a_formula_is_refused(tmp_path: Path) -> None:
    bundle = _oneroster(tmp_path, "Science", class_id="@SUM(1+1)")
    found = problems(lambda: load_roster([bundle], RosterOptions()))
    assert any(p.startswith(f"{bundle}!classes.csv:2:1: class sourcedId") for p in found)
    assert any(FORMULA in p for p in found)


def test_an_sds_section_name_with_a_bidi_isolate_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "sds"
    shutil.copytree(DATA / "real" / "sds" / "v1-100-users", bundle)
    section = bundle / "Section.csv"
    header, first, *rest = section.read_text(encoding="utf-8-sig").splitlines()
    cells = first.split(",")
    at = header.split(",").index("Section Name")
    cells[at] = "Math \u2067x\u2069"
    section.write_text("\n".join([header, ",".join(cells), *rest]) + "\n", encoding="utf-8")
    [problem] = problems(lambda: load_roster([bundle], RosterOptions()))
    assert f"Section.csv:2:{at + 1}: the Section Name contains invisible character U+2067" in (
        problem
    )


def test_a_manifest_refuses_hostile_keys_names_and_graph_ids_at_their_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "semester.yaml"
    path.write_text(
        "defaults: {graph_id: '=g'}\n"
        "instances:\n"
        "  - key: \"=cmd|' /C calc'!A0\"\n"
        "    name: A\n"
        "    people: [{learners: [s-1]}]\n"
        "  - key: b\n"
        '    name: "Algebra\\e[2J\\u202e"\n'
        "    graph_id: gref-ok\n"
        "    people: [{learners: ['-2+3']}]\n"
    )
    found = problems(lambda: read_manifest(path))
    assert found[0].startswith(f"{path}:1:22: defaults: graph_id '=g' starts with '='")
    assert found[1].startswith(f'{path}:3:10: an instance: instance key "=cmd|')
    assert found[2].startswith(f"{path}:7:11: instance 'b': name contains control character")
    assert found[3].startswith(f"{path}:9:") and f"{FORMULA} id" in found[3]
    assert len(found) == 4  # the refused key's people are not read (nor reported)
