"""Roster readers and validation: the basics of CSV, YAML and OneRoster, and their problems."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from kprov.errors import InputError
from kprov.rosters import RosterOptions, load_roster
from kprov.rosters.validate import hash_external_id, id_problems


def problems_of(*paths: Path, **options: object) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_roster(list(paths), RosterOptions(**options))  # type: ignore[arg-type]
    assert caught.value.exit_code == 2
    return caught.value.problems


def test_csv_with_bom_crlf_roles_and_instances(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(
        b"\xef\xbb\xbfexternal_user_id,Role,instance,name\r\n"
        b"stu-1,learner,alg-1,x\r\nt-1,Instructor,alg-1,y\r\nstu-2,,,z\r\n"
    )
    people = load_roster([path]).people
    assert [(p.external_id, p.role, p.instance_key, p.origin.line) for p in people] == [
        ("stu-1", "learner", "alg-1", 2),
        ("t-1", "instructor", "alg-1", 3),
        ("stu-2", "learner", None, 4),
    ]


def test_id_column_option_reads_a_sis_export(tmp_path: Path) -> None:
    path = tmp_path / "sis.csv"
    path.write_text("StudentNumber,grade\n000123,9\n", encoding="utf-8")
    people = load_roster([path], RosterOptions(id_column="studentnumber")).people
    assert people[0].external_id == "000123"


def test_missing_id_column_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("id,role\nstu-1,learner\n", encoding="utf-8")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:1: no 'external_user_id' column (found: id, role)")
    assert "--id-column" in problem


def test_every_bad_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(
        "external_user_id,role\n"
        "stu-1,learner\n"  # 2 ok
        ",learner\n"  # 3 empty
        "stu-1,learner\n"  # 4 duplicate of 2
        "jane.doe@school.org,learner\n"  # 5 email
        "Jane Doe,learner\n"  # 6 name
        "+1 555 123 4567,learner\n"  # 7 phone
        " stu-9,learner\n"  # 8 leading space
        "stu-10,admin\n"  # 9 bad role
        "stu-11\n"  # 10 ragged
        "stu-\x0712,learner\n" + "x" * 256 + ",learner\n",  # 11 control character  # 12 too long
        encoding="utf-8",
    )
    problems = problems_of(path)
    by_line = {int(p.split(":")[1]): p for p in problems}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert "empty" in by_line[3]
    assert f"first at {path}:2" in by_line[4]
    assert "email address" in by_line[5] and "--hash-ids" in by_line[5]
    assert "person's name" in by_line[6]
    assert "phone number" in by_line[7]
    assert "leading or trailing spaces" in by_line[8]
    assert f"{path}:9:2: role 'admin'" in by_line[9]
    assert "row has 1 fields but the header has 2" in by_line[10]
    assert "U+0007" in by_line[11]
    assert "256 characters" in by_line[12]


def test_undecodable_bytes_name_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"external_user_id\nstu-1\nst\xe9-2\n")
    [problem] = problems_of(path)
    assert problem.startswith(f"{path}:3:3: byte 0xE9 is not valid UTF-8")
    assert "UTF-8" in problem


def test_repeated_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("external_user_id,role,Role\nstu-1,learner,learner\n", encoding="utf-8")
    assert any("appears twice in the header" in p for p in problems_of(path))


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    assert any("no header row" in p for p in problems_of(path))


def test_huge_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.write(b"external_user_id\n")
        handle.write(b"a" * (3 * 1024 * 1024) + b"\n")
        handle.write(b"stu-2\n")
    problems = problems_of(path)
    assert any(p.startswith(f"{path}:2: line is longer than") for p in problems)


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    (tmp_path / "r.xlsx").write_bytes(b"PK")
    problems = problems_of(tmp_path / "nope.csv", tmp_path / "r.xlsx")
    assert any("no such file" in p for p in problems)
    assert any("unknown roster type '.xlsx'" in p for p in problems)


def test_the_same_person_in_two_instances_is_not_a_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("external_user_id,instance\nstu-1,a\nstu-1,b\n", encoding="utf-8")
    assert len(load_roster([path]).people) == 2


def test_duplicates_across_files_name_both_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("external_user_id\nstu-1\n", encoding="utf-8")
    second.write_text("external_user_id\nstu-1\n", encoding="utf-8")
    [problem] = problems_of(first, second)
    assert problem.startswith(f"{second}:2:") and f"first at {first}:2" in problem


def test_hash_ids_derives_stable_anonymous_ids_and_keeps_the_sis_id(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("external_user_id\njane.doe@school.org\n", encoding="utf-8")
    [person] = load_roster([path], RosterOptions(hash_key=b"k")).people
    assert person.sis_id == "jane.doe@school.org"
    assert person.external_id == hash_external_id("jane.doe@school.org", b"k")
    assert len(person.external_id) == 64 and "@" not in person.external_id


def test_plain_student_numbers_are_not_mistaken_for_personal_data() -> None:
    for ok in ("20231234", "stu-000123", "A1B2C3", "2023-0001", "gref-9"):
        assert id_problems(ok, check_pii=True) == [], ok


# ----------------------------------------------------------------------------- YAML


def test_yaml_list_and_users_mapping_keep_ids_as_written(tmp_path: Path) -> None:
    listed = tmp_path / "a.yaml"
    listed.write_text("- 00123\n- external_user_id: t-1\n  role: instructor\n  instance: x\n")
    mapped = tmp_path / "b.yml"
    mapped.write_text("users:\n  - stu-9\n")
    people = load_roster([listed, mapped]).people
    assert [(p.external_id, p.role, p.instance_key, p.origin.line) for p in people] == [
        ("00123", "learner", None, 1),
        ("t-1", "instructor", "x", 2),
        ("stu-9", "learner", None, 2),
    ]


def test_yaml_alias_bomb_is_refused_before_expansion(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(ord("b"), ord("j")):
        prev = chr(n - 1)
        lines.append(f"{chr(n)}: &{chr(n)} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append("users: *i")
    path.write_text("\n".join(lines) + "\n")
    [problem] = problems_of(path)
    assert "aliases" in problem and problem.startswith(f"{path}:2:")


def test_yaml_syntax_error_and_python_tags_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("users:\n  - a\n  b: [\n")
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text("users:\n  - ok-1\n  - !!python/name:os.system\n")
    [syntax] = problems_of(broken)
    [tag] = problems_of(hostile)
    assert syntax.startswith(f"{broken}:3:") and "invalid YAML" in syntax
    assert tag.startswith(f"{hostile}:3:5: YAML tag 'tag:yaml.org,2002:python/name:os.system'")


def test_yaml_bad_role_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("- stu-1\n- {external_user_id: stu-2, role: boss}\n")
    assert problems_of(path) == [
        f"{path}:2:3: role 'boss' is not one of: student, learner, pupil (learner); teacher, "
        "instructor, professor, faculty (instructor)"
    ]


# ------------------------------------------------------------------------ OneRoster

USERS = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,givenName\n"
    "u1,active,,true,org1,student,x,X\n"
    "u2,active,,true,org1,teacher,y,Y\n"
    "u3,tobedeleted,,true,org1,student,z,Z\n"
    "u4,active,,true,org1,parent,p,P\n"
)
CLASSES = "sourcedId,status,title,courseSourcedId\nc1,active,Algebra I,co1\n"
ENROLLMENTS = (
    "sourcedId,status,classSourcedId,schoolSourcedId,userSourcedId,role\n"
    "e1,active,c1,org1,u1,student\n"
    "e2,active,c1,org1,u2,teacher\n"
)


def write_bundle(folder: Path) -> Path:
    folder.mkdir()
    (folder / "users.csv").write_text(USERS)
    (folder / "classes.csv").write_text(CLASSES)
    (folder / "enrollments.csv").write_text(ENROLLMENTS)
    return folder


def test_oneroster_directory_maps_roles_and_skips_tobedeleted(tmp_path: Path) -> None:
    roster = load_roster([write_bundle(tmp_path / "bundle")])
    assert [(p.external_id, p.role, p.instance_key) for p in roster.people] == [
        ("u1", "learner", None),
        ("u2", "instructor", None),
        ("u1", "learner", "c1"),
        ("u2", "instructor", "c1"),
    ]
    assert {k: c.title for k, c in roster.classes.items()} == {"c1": "Algebra I"}
    assert len(roster.skipped_rows) == 2


def test_oneroster_zip_is_read_in_place(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("users.csv", USERS)
        archive.writestr("enrollments.csv", ENROLLMENTS)
    roster = load_roster([bundle])
    assert {p.external_id for p in roster.people} == {"u1", "u2"}
    assert roster.people[0].origin.file == f"{bundle}!users.csv"


def test_oneroster_zip_with_path_traversal_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "evil.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("users.csv", USERS)
        archive.writestr("../../etc/cron.d/evil", "x")
    [problem] = problems_of(bundle)
    assert "paths outside itself" in problem


def test_oneroster_enrollment_of_unknown_user_is_reported(tmp_path: Path) -> None:
    folder = write_bundle(tmp_path / "b")
    (folder / "enrollments.csv").write_text(ENROLLMENTS + "e3,active,c1,org1,u9,student\n")
    [problem] = problems_of(folder)
    assert problem.startswith(f"{folder}!enrollments.csv:4:") and "'u9'" in problem
