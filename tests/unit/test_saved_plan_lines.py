"""A saved plan carries every line it leaves alone, compactly, under its own digest, so the
report of `kprov apply` lists every line; 0.2.0 plans (counts only) are refused."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from kprov.errors import ExitCode, InputError, StalePlanError
from kprov.provision.plan import Action, Item, Plan
from kprov.provision.report import report_rows
from kprov.provision.saved_plan import load_plan, save_plan
from kprov.rosters.model import INSTRUCTOR, LEARNER, Origin, Person, Skipped


def person(n: int, role: str = LEARNER, instance: str | None = "alg", sis: str = "") -> Person:
    return Person(f"s-{n}", role, Origin("r.csv", n + 1), instance, sis or None)


def a_plan(kept_registered: tuple[Person, ...]) -> Plan:
    return Plan(
        command="register",
        items=(Item(Action.REGISTER, "s-new", LEARNER, "alg", origin=Origin("r.csv", 99)),),
        kept={
            "already_mapped": (person(50, instance=None), person(51, instance=None)),
            "already_registered": kept_registered,
        },
        skipped=(Skipped(Origin("r.csv", 98), "s-gone", "role aide is not provisioned"),),
        profile="p",
        base_url="https://api.example.org/v0",
        fingerprint="sha256:0",
        default_instance="bio",
    )


def test_the_report_of_a_loaded_plan_lists_every_line_the_plan_did(tmp_path: Path) -> None:
    kept = (
        person(1, INSTRUCTOR), person(2), person(3), person(5), person(4, INSTRUCTOR),
        person(6, instance="geo", sis="sis-6"), person(7),
    )  # fmt: skip
    plan = a_plan(kept)
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    loaded = load_plan(path)
    assert Counter(map(repr, report_rows(loaded))) == Counter(map(repr, report_rows(plan)))
    assert loaded.counts() == plan.counts()
    lines = loaded.kept["already_registered"]
    assert len(lines) == 7 and lines[-1] == lines[6] and lines[0].role == INSTRUCTOR
    assert {p.instance_key for p in loaded.kept["already_mapped"]} == {"bio"}  # as the report had


def test_a_hundred_thousand_kept_lines_cost_about_ten_bytes_each(tmp_path: Path) -> None:
    kept = tuple(
        Person(f"s-{n:06d}", LEARNER, Origin("r.csv", n + 2), "alg") for n in range(20_000)
    )
    path = tmp_path / "plan.json"
    save_plan(a_plan(kept), path)
    assert path.stat().st_size < 20_000 * 11 + 4_000  # ids and their separators, little else
    assert len(load_plan(path).kept["already_registered"]) == 20_000


def _edited(path: Path, edit: str) -> None:
    document = json.loads(path.read_text())
    if edit == "kept id":
        group = document["kept_lines"][-1]
        group["ids"] = group["ids"].replace("s-2", "s-9")
    elif edit == "skipped":
        document["skipped"] = []
    path.write_text(json.dumps(document))


@pytest.mark.parametrize("edit", ["kept id", "skipped"])
def test_an_edited_kept_line_or_skipped_row_is_refused(tmp_path: Path, edit: str) -> None:
    path = tmp_path / "plan.json"
    save_plan(a_plan((person(1), person(2))), path)
    _edited(path, edit)
    with pytest.raises(InputError, match="kept lines do not match their digest"):
        load_plan(path)


def test_a_name_given_twice_in_a_plan_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(a_plan((person(1),)), path)
    text = path.read_text().replace('"prune": false,', '"prune": false,\n "prune": true,')
    path.write_text(text)
    with pytest.raises(InputError, match="the name 'prune' appears twice in one object"):
        load_plan(path)


def test_a_plan_saved_by_0_2_0_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    save_plan(a_plan((person(1),)), path)
    document = json.loads(path.read_text())
    for key in ("kept_lines", "skipped", "lines_digest"):
        del document[key]
    document["kprov_plan"] = 1
    path.write_text(json.dumps(document))
    with pytest.raises(StalePlanError) as caught:
        load_plan(path)
    assert caught.value.exit_code == ExitCode.STALE_PLAN
    assert "saved by kprov 0.2.0 (plan format 1)" in caught.value.message
    assert "Make the plan again" in str(caught.value.hint)


def test_a_hand_made_plan_cannot_carry_a_formula_or_an_escape_past_the_input_rules(
    tmp_path: Path,
) -> None:
    from kprov.provision.saved_plan import _items_digest

    path = tmp_path / "plan.json"
    save_plan(a_plan((person(1),)), path)
    for field, value in (("external_id", "=cmd|' /C calc'!A0"), ("instance", "k\x1b]0;x\x07")):
        document = json.loads(path.read_text())
        document["items"][0][field] = value
        document["items_digest"] = _items_digest(document["items"])  # digests are not signatures
        edited = tmp_path / "edited.json"
        edited.write_text(json.dumps(document))
        with pytest.raises(InputError, match="is not a well-formed kprov plan"):
            load_plan(edited)
