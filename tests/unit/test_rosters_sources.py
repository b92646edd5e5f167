"""Several sources in one manifest: each format under its key, class columns named per entry,
ids namespaced per source (`id_prefix:`), and the advice when two sources' ids collide."""

from __future__ import annotations

import shutil
from pathlib import Path

from kprov.rosters import RosterOptions, load_roster
from kprov.rosters.manifest import read_manifest
from kprov.rosters.model import INSTRUCTOR, LEARNER
from tests.manifests import manifest, members, problems_of

DATA = Path(__file__).resolve().parent.parent / "data" / "rosters"
CLEVER, ASM, CANVAS = DATA / "clever-district", DATA / "asm-upload", DATA / "canvas-sis"


def test_each_export_under_its_key_or_under_bundles(tmp_path: Path) -> None:
    read = read_manifest(
        manifest(
            tmp_path,
            f"clever:\n  - path: {CLEVER}\nasm:\n  - path: {ASM}\n"
            f"bundles:\n  - path: {CANVAS}\n    ta_as_instructor: true\n",
        )
    )
    assert ("20417", "E411208", INSTRUCTOR) in members(read)  # the Canvas TA, as asked
    assert len(read.instances) == 6 + 3 + 3
    clever = read.instances["590"]  # no term dates: the defaults'
    assert (clever.start_date, clever.end_date) == ("2026-09-01", "2027-06-30")
    assert read.instances["583"].start_date == "2026-08-24"  # its own term
    # Clever and ASM state whole classes; Canvas only changes, its deleted row a removal
    assert read.authoritative == set(read.instances) - {"E411208", "R001104", "A110035"}
    assert [(p.external_id, p.instance_key) for p in read.removals] == [("01103", "A110035")]


def test_an_export_under_the_wrong_key_names_the_right_one(tmp_path: Path) -> None:
    found = problems_of(manifest(tmp_path, f"canvas:\n  - path: {CLEVER}\n"))
    assert found == [
        f"{CLEVER}: this is a Clever bundle, listed under `canvas:`; list it under `clever:` or "
        "`bundles:`"
    ]


def test_new_keys_are_checked_where_they_are_written(tmp_path: Path) -> None:
    path = manifest(
        tmp_path,
        f"clever:\n  - path: {CLEVER}\n    id_prefix: 'north school'\n"
        f"    ta_as_instructor: sometimes\n    id_column: Student_id\n"
        "instances:\n  - key: a\n    name: A\n    people:\n      - learners: [s-1]\n"
        "        instance_column: Section_id\n        role_column: ''\n",
    )
    found = problems_of(path)
    assert found[0].startswith(f"{path}:4:16: clever: id_prefix 'north school' must be 1 to 32")
    assert found[1] == f"{path}:5:23: clever: ta_as_instructor must be true or false"
    assert found[2].startswith(f"{path}:6:5: unknown field 'id_column' in a clever entry")
    assert found[3].startswith(f"{path}:12:26: instance 'a': every line of this roster joins")
    assert found[4] == f"{path}:13:22: instance 'a': role_column is empty; name a column"
    assert len(found) == 5


def test_a_roster_entry_names_its_class_role_and_id_columns(tmp_path: Path) -> None:
    roster = tmp_path / "enrolments.csv"
    roster.write_text(
        "Student_id,Section_id,Kind\n101,S1,Student\n102,S1,Student\n9,S1,Teacher\n103,S2,\n"
    )
    read = read_manifest(
        manifest(
            tmp_path,
            "instances:\n  - key: S2\n    name: Second\n"
            f"rosters:\n  - path: {roster}\n    id_column: Student_id\n"
            "    instance_column: Section_id\n    role_column: Kind\n    graph_id: gref-x\n",
        )
    )
    assert members(read) == {
        ("101", "S1", LEARNER),
        ("102", "S1", LEARNER),
        ("9", "S1", INSTRUCTOR),
        ("103", "S2", LEARNER),
    }
    assert read.authoritative == {"S1", "S2"}  # the file states both classes whole
    assert (read.instances["S1"].name, read.instances["S1"].graph_id) == ("S1", "gref-x")
    assert read.instances["S2"].name == "Second"  # listed: the manifest's own


def test_a_named_class_column_that_is_not_there_is_refused(tmp_path: Path) -> None:
    roster = tmp_path / "enrolments.csv"
    roster.write_text("external_user_id,Section\ns-1,S1\n")
    path = manifest(tmp_path, f"rosters:\n  - path: {roster}\n    instance_column: Class\n")
    assert problems_of(path) == [
        f"{roster}:1: no 'Class' column (found: external_user_id, Section); check the name given "
        "to --instance-column (in a manifest: `instance_column:`)"
    ]


def test_register_reads_a_named_class_column_without_renaming_headers(tmp_path: Path) -> None:
    roster = load_roster(
        [CLEVER / "enrollments.csv"],
        RosterOptions(id_column="Student_id", instance_column="Section_id"),
    )
    lines = {(p.external_id, p.instance_key) for p in roster.people}
    assert ("107368591", "658") in lines and len(lines) == 14  # one id, many classes


def test_colliding_ids_across_sources_are_refused_with_the_right_advice(tmp_path: Path) -> None:
    north, south = (Path(shutil.copytree(CLEVER, tmp_path / n)) for n in ("north", "south"))
    path = manifest(tmp_path, f"clever:\n  - path: {north}\n  - path: {south}\n")
    found = problems_of(path)
    teacher = next(p for p in found if p.startswith(f"{south}!teachers.csv:2: id '47'"))
    assert f"first at {north}!teachers.csv:2" in teacher
    assert "`id_prefix: <school>-` on each manifest entry" in teacher
    assert "a key of its own" in teacher and "keep one row" not in teacher
    section = next(p for p in found if "class '583'" in p)
    assert "another source has it too" in section and "`id_prefix:`" in section


def test_an_id_prefix_per_source_makes_them_distinct(tmp_path: Path) -> None:
    north, south = (Path(shutil.copytree(CLEVER, tmp_path / n)) for n in ("north", "south"))
    read = read_manifest(
        manifest(
            tmp_path,
            f"clever:\n  - path: {north}\n    id_prefix: n-\n"
            f"  - path: {south}\n    id_prefix: s-\n",
        )
    )
    assert ("n-47", "n-583", INSTRUCTOR) in members(read)
    assert ("s-107368591", "s-658", LEARNER) in members(read)
    assert set(read.instances) == {f"{p}-{k}" for p in "ns" for k in CLEVER_SECTIONS}
    assert read.instances["s-658"].name == "English, Class 601 - 601 - E. Lindqvist (Section 1)"
    assert read.authoritative == set(read.instances)


CLEVER_SECTIONS = ("583", "642", "646", "667", "658", "590")


def test_a_bulk_oneroster_class_whose_term_is_missing_is_refused(tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(DATA / "oneroster-1.1-bulk", tmp_path / "b"))
    classes = bundle / "classes.csv"
    classes.write_text(classes.read_text().replace(",t-fall,", ",t-1999,", 1))
    found = problems_of(manifest(tmp_path, f"oneroster:\n  - path: {bundle}\n"))
    [problem] = found
    assert problem.startswith(f"{bundle}!classes.csv:2:")
    assert "term 't-1999' is not in academicSessions.csv" in problem


def test_a_prefix_namespaces_class_columns_of_csv_and_yaml_and_comes_before_hashing(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.csv").write_text("external_user_id,role,instance\n14001,teacher,S1\n")
    (tmp_path / "b.yaml").write_text("- {id: 14001, role: student, instance: S1}\n")
    path = manifest(
        tmp_path,
        "rosters:\n  - path: a.csv\n    id_prefix: north-\n    graph_id: g\n"
        "  - path: b.yaml\n    id_prefix: south-\n    graph_id: g\n",
    )
    assert members(read_manifest(path)) == {
        ("north-14001", "north-S1", INSTRUCTOR),
        ("south-14001", "south-S1", LEARNER),
    }
    hashed = read_manifest(path, hash_key=b"k")
    assert {p.sis_id for p in hashed.people} == {"north-14001", "south-14001"}
    assert len({p.external_id for p in hashed.people}) == 2
