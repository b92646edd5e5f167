"""The sync manifest: every bundle kind, and what it states whole (authoritative) or as changes."""

from __future__ import annotations

from pathlib import Path

from kprov.rosters.manifest import read_manifest
from kprov.rosters.model import INSTRUCTOR, LEARNER
from tests.manifests import manifest, members, problems_of

DATA = Path(__file__).resolve().parent.parent / "data"
ROSTERS, SDS = DATA / "rosters", DATA / "real" / "sds"


def test_every_bundle_kind_under_its_key(tmp_path: Path) -> None:
    read = read_manifest(
        manifest(
            tmp_path,
            f"sds:\n  - path: {SDS / 'v1-100-users'}\n  - path: {SDS / 'v2.1'}\n"
            f"oneroster:\n  - path: {ROSTERS / 'oneroster-1.2'}\n"
            f"bundles:\n  - path: {ROSTERS / 'oneroster-1.1-bulk'}\n    graph_id: gref-sci\n",
        )
    )
    assert len(read.instances) == 28 + 2 + 2 + 2
    assert read.instances["11001"].name == "Math - Algebra 1"
    assert read.instances["k-sci-1"].graph_id == "gref-sci"
    assert ("114006", "112001", INSTRUCTOR) in members(read)  # SDS v2.1 "professor"
    assert not any(p.account_only for p in read.people)  # accounts come with enrollments
    assert read.authoritative == set(read.instances)  # all bulk
    assert read.removals == []
    assert {s.external_id for s in read.skipped} >= {"114002", "usr-g-01", "cls-old-9"}


def test_a_delta_bundle_states_changes_only(tmp_path: Path) -> None:
    read = read_manifest(
        manifest(
            tmp_path,
            "instances:\n  - key: homeroom\n    name: Homeroom\n    people:\n"
            "      - learners: [u-s9]\n"
            f"oneroster:\n  - path: {ROSTERS / 'oneroster-1.1-delta'}\n",
        )
    )
    assert members(read) == {
        ("u-s9", "homeroom", LEARNER),
        ("u-s5", "k-sci-1", LEARNER),  # classes known from an earlier bulk, not listed here
        ("u-s1", "k-sci-2", LEARNER),
    }
    assert set(read.instances) == {"homeroom"}
    assert read.authoritative == {"homeroom"}  # never a class only touched by a delta
    assert [(p.external_id, p.instance_key) for p in read.removals] == [
        ("u-s2", "k-sci-1"),
        ("u-s4", "k-sci-2"),
    ]


def test_bulk_enrollments_state_whole_classes_even_when_classes_are_a_delta(
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "manifest.csv").write_text(
        "propertyName,value\nfile.users,delta\nfile.classes,delta\nfile.enrollments,bulk\n"
    )
    (bundle / "users.csv").write_text("sourcedId,status,role\n")
    (bundle / "classes.csv").write_text("sourcedId,status,title\nc-new,active,New\n")
    (bundle / "enrollments.csv").write_text(
        "classSourcedId,userSourcedId,role\nc-old,u1,student\nc-new,u2,teacher\n"
    )
    read = read_manifest(manifest(tmp_path, f"bundles:\n  - path: {bundle}\n"))
    assert read.authoritative == {"c-old", "c-new"}
    assert set(read.instances) == {"c-new"}


def test_dates_the_entry_first_then_the_class_terms_then_the_defaults(tmp_path: Path) -> None:
    read = read_manifest(
        manifest(
            tmp_path,
            f"sds:\n  - path: {SDS / 'v1-100-users'}\n    end_date: 2018-05-31\n"
            f"bundles:\n  - path: {ROSTERS / 'oneroster-1.1-bulk'}\n"
            f"  - path: {SDS / 'v2.1'}\n",
        )
    )
    sds = read.instances["11001"]
    assert (sds.start_date, sds.end_date) == ("2017-07-01", "2018-05-31")
    bulk = read.instances["k-sci-1"]
    assert (bulk.start_date, bulk.end_date) == ("2026-09-01", "2027-01-29")


def test_plain_rosters_in_every_dialect_join_their_instance(tmp_path: Path) -> None:
    read = read_manifest(
        manifest(
            tmp_path,
            "instances:\n  - key: fr\n    name: Maths 6B\n    people:\n"
            f"      - roster: {ROSTERS / 'excel_semicolon_cp1252.csv'}\n        encoding: cp1252\n"
            f"      - roster: {ROSTERS / 'excel_unicode_text.txt'}\n        role: Pupil\n"
            f"      - roster: {ROSTERS / 'pipe_mixed_endings.csv'}\n        delimiter: '|'\n",
        )
    )
    assert ("prof-0001", "fr", INSTRUCTOR) in members(read)
    assert ("u-1003", "fr", LEARNER) in members(read)  # `role: Pupil` forces every line
    assert ("p-3", "fr", INSTRUCTOR) in members(read)
    assert read.authoritative == {"fr"}


def test_manifest_problems_and_roster_problems_are_reported_together(tmp_path: Path) -> None:
    path = manifest(
        tmp_path,
        "instances:\n  - key: a\n    name: A\n    end_date: 2026-08-01\n    people:\n"
        "      - role: aide\n        learners: [s-1]\n"
        f"      - roster: {ROSTERS / 'excel_semicolon_cp1252.csv'}\n"
        f"      - roster: {ROSTERS / 'oneroster-1.2'}\n"
        "  - key: b\n    name: B\n    start_date: 2026-13-01\n"
        f"oneroster:\n  - path: {SDS / 'v1-100-users'}\n",
    )
    found = problems_of(path)
    text = "\n".join(found)
    assert f"{path}:3:5: instance 'a': the end date 2026-08-01 is before the start date" in text
    assert "instance 'a': role 'aide' is not provisioned" in text
    assert "byte 0xE9 is not valid UTF-8" in text
    assert "is a bundle: list it under `bundles:`" in text
    assert "instance 'b': start_date '2026-13-01' is not a real date" in text
    assert "this is an SDS bundle, listed under `oneroster:`; list it under `sds:`" in text


def test_bad_reading_options_are_each_named_at_their_own_line(tmp_path: Path) -> None:
    path = tmp_path / "semester.yaml"
    path.write_text(
        "defaults:\n  graph_id: g\n  delimiter: ';;'\n  encoding: klingon\n  id_column: ''\n"
        "instances:\n  - key: a\n    name: A\n    people:\n      - learners: [s-1]\n"
        "        encoding: utf-99\n"
    )
    found = problems_of(path)
    assert f"{path}:3:14: defaults: delimiter ';;': give one character" in found[0]
    assert f"{path}:4:13: defaults: encoding 'klingon' is not a known encoding" in found[1]
    assert f"{path}:5:14: defaults: id_column is empty; name a column" in found[2]
    assert any(f"{path}:11:19:" in p and "'utf-99' is not a known encoding" in p for p in found)
    assert not any("--" in p for p in found)  # the manifest's words, not the flags'


def test_a_class_listed_twice_is_a_problem(tmp_path: Path) -> None:
    path = manifest(
        tmp_path,
        "instances:\n  - key: k-sci-1\n    name: Science\n"
        f"bundles:\n  - path: {ROSTERS / 'oneroster-1.1-bulk'}\n",
    )
    [problem] = problems_of(path)
    assert "class 'k-sci-1' of" in problem and "is also listed under instances" in problem


def test_duplicates_across_a_roster_and_an_inline_list_name_both_lines(tmp_path: Path) -> None:
    roster = tmp_path / "a.csv"
    roster.write_text("external_user_id\ns-1\n")
    path = manifest(
        tmp_path,
        "instances:\n  - key: a\n    name: A\n    people:\n      - learners: [s-1]\n"
        f"      - roster: {roster}\n",
    )
    assert problems_of(path) == [
        f"{roster}:2: id 's-1' appears twice in instance 'a': first at {path}:6; keep one row"
    ]


def test_hashed_ids_apply_to_removals_too(tmp_path: Path) -> None:
    path = manifest(tmp_path, f"oneroster:\n  - path: {ROSTERS / 'oneroster-1.1-delta'}\n")
    read = read_manifest(path, hash_key=b"k")
    assert {p.sis_id for p in read.removals} == {"u-s2", "u-s4"}
    assert all(len(p.external_id) == 64 for p in [*read.removals, *read.people])
