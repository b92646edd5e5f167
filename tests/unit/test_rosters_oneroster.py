"""OneRoster 1.1 and 1.2 bundles: manifest.csv, bulk and delta, statuses, roles, dates, zips."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from kprov.errors import InputError
from kprov.rosters import Roster, load_roster
from kprov.rosters.model import INSTRUCTOR, LEARNER

DATA = Path(__file__).resolve().parent.parent / "data" / "rosters"
MANIFEST = "propertyName,value\noneroster.version,1.1\n"


def problems_of(path: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_roster([path])
    return caught.value.problems


def enrolled(roster: Roster) -> set[tuple[str, str | None, str]]:
    return {(p.external_id, p.instance_key, p.role) for p in roster.people if not p.account_only}


def accounts(roster: Roster) -> dict[str, str]:
    return {p.external_id: p.role for p in roster.people if p.account_only}


def test_oneroster_1_2_roles_statuses_and_enrollment_roles() -> None:
    roster = load_roster([DATA / "oneroster-1.2"])
    assert enrolled(roster) == {
        ("usr-t-01", "cls-bio-1", INSTRUCTOR),
        ("usr-s-01", "cls-bio-1", LEARNER),
        ("usr-s-02", "cls-bio-1", LEARNER),
        ("usr-t-02", "cls-alg-3", INSTRUCTOR),
        ("usr-s-02", "cls-alg-3", LEARNER),
        ("usr-s-03", "cls-alg-3", LEARNER),
        ("usr-s-01", "cls-alg-3", INSTRUCTOR),  # a student by roles.csv, teaching here
    }
    # roles from roles.csv; the guardian and the disabled student get no account
    assert accounts(roster) == {
        "usr-t-01": INSTRUCTOR,
        "usr-t-02": INSTRUCTOR,
        "usr-s-01": LEARNER,
        "usr-s-02": LEARNER,
        "usr-s-03": LEARNER,
    }
    reasons = {
        (s.origin.file.rsplit("!", 1)[1], s.external_id, s.reason) for s in roster.skipped_rows
    }
    assert reasons >= {
        ("users.csv", "usr-s-04", "user enabledUser=false"),
        ("enrollments.csv", "usr-s-04", "user enabledUser=false"),
        ("classes.csv", "cls-old-9", "class tobedeleted: no instance"),
        ("enrollments.csv", "usr-s-03", "class cls-old-9 tobedeleted"),
        ("enrollments.csv", "usr-g-01", "role administrator is not provisioned"),
    }
    assert set(roster.classes) == {"cls-bio-1", "cls-alg-3"}  # never the tobedeleted one
    bio = roster.classes["cls-bio-1"]
    assert (bio.title, bio.start_date, bio.end_date) == (
        "Biology - Period 1",
        "2026-08-24",
        "2027-06-11",
    )
    assert roster.complete and roster.authoritative_classes == {"cls-bio-1", "cls-alg-3"}


def test_nothing_but_ids_is_read_from_users_and_user_profiles(tmp_path: Path) -> None:
    bundle = shutil.copytree(DATA / "oneroster-1.2", tmp_path / "b")
    users = bundle / "users.csv"
    users.write_text(users.read_text().replace("usr-s-03,active", "usr-s-03,archived"))
    [problem] = problems_of(bundle)  # and no cascade from the enrollments of that user
    assert problem.startswith(f"{bundle}!users.csv:6:2: status 'archived' is not active")
    for secret in ("Pa55word", "Winter2026!", "S3cret-jkim", "lgarcia", "Garcia"):
        assert secret not in problem


def test_a_delta_lists_changes_its_tobedeleted_rows_are_removals() -> None:
    roster = load_roster([DATA / "oneroster-1.1-delta"])
    assert enrolled(roster) == {("u-s5", "k-sci-1", LEARNER), ("u-s1", "k-sci-2", LEARNER)}
    assert [(p.external_id, p.instance_key, p.role, p.origin.line) for p in roster.removals] == [
        ("u-s2", "k-sci-1", LEARNER, 4),
        ("u-s4", "k-sci-2", LEARNER, 5),
    ]
    assert not roster.complete
    assert roster.authoritative_classes == set()  # a delta never states a whole class
    assert roster.classes == {}  # classes.csv is absent: the classes are known from before


def test_a_bulk_bundle_states_whole_classes() -> None:
    roster = load_roster([DATA / "oneroster-1.1-bulk"])
    assert roster.complete and roster.authoritative_classes == {"k-sci-1", "k-sci-2"}
    assert accounts(roster)["u-t1"] == INSTRUCTOR and "u-p1" not in accounts(roster)
    assert roster.classes["k-sci-2"].start_date == "2026-09-01"


def test_the_same_bundle_zipped_in_a_folder_reads_the_same(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for member in sorted((DATA / "oneroster-1.2").iterdir()):
            bundle.write(member, f"RO_20260820/{member.name}")
        bundle.writestr("__MACOSX/RO_20260820/._users.csv", b"\x00\x05\x16\x07junk")
    roster = load_roster([archive])
    assert enrolled(roster) == enrolled(load_roster([DATA / "oneroster-1.2"]))
    assert roster.people[0].origin.file == f"{archive}!RO_20260820/users.csv"


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


USERS = "sourcedId,status,enabledUser,role\nu1,,true,student\nu2,,true,teacher\n"
CLASSES = "sourcedId,status,title\nc1,,Algebra\n"


def test_a_delta_may_enroll_in_classes_and_users_it_does_not_list(tmp_path: Path) -> None:
    bundle = write(
        tmp_path / "d",
        {
            "manifest.csv": MANIFEST + "file.users,absent\nfile.classes,delta\n"
            "file.enrollments,delta\n",
            "classes.csv": "sourcedId,status,title\nc2,active,Geometry\nc3,tobedeleted,Old\n",
            "enrollments.csv": "classSourcedId,userSourcedId,role,status\n"
            "c1,u9,student,active\nc3,u9,student,active\nc1,u8,Teacher,tobedeleted\n",
        },
    )
    roster = load_roster([bundle])
    assert enrolled(roster) == {("u9", "c1", LEARNER)}
    assert [(p.external_id, p.role) for p in roster.removals] == [("u8", INSTRUCTOR)]
    assert set(roster.classes) == {"c2"} and not roster.complete
    assert any(s.reason == "class c3 tobedeleted" for s in roster.skipped_rows)


def test_bulk_means_every_reference_must_resolve(tmp_path: Path) -> None:
    bundle = write(
        tmp_path / "b",
        {
            "users.csv": USERS,
            "classes.csv": CLASSES,
            "enrollments.csv": "classSourcedId,userSourcedId,role\nc1,u1,student\nc9,u1,student\n"
            "c1,u7,student\nc1,u2,tobedeleted\n",
        },
    )
    found = problems_of(bundle)
    assert found == [
        f"{bundle}!enrollments.csv:3:1: classSourcedId 'c9' is not in classes.csv; export the "
        "bundle again",
        f"{bundle}!enrollments.csv:4:2: userSourcedId 'u7' is not an active user in users.csv; "
        "export the bundle again",
        f"{bundle}!enrollments.csv:5:3: role 'tobedeleted' is not one of: student, learner, "
        "pupil (learner); teacher, instructor, professor, faculty (instructor)",
    ]


def test_a_bulk_row_marked_tobedeleted_is_skipped_not_removed(tmp_path: Path) -> None:
    bundle = write(
        tmp_path / "b",
        {
            "users.csv": USERS,
            "classes.csv": CLASSES,
            "enrollments.csv": "classSourcedId,userSourcedId,role,status\n"
            "c1,u1,student,tobedeleted\nc1,u2,teacher,\n",
        },
    )
    roster = load_roster([bundle])
    assert enrolled(roster) == {("u2", "c1", INSTRUCTOR)} and roster.removals == []
    assert any(s.reason == "enrollment tobedeleted" for s in roster.skipped_rows)


@pytest.mark.parametrize(
    ("manifest", "phrase"),
    [
        (
            MANIFEST + "file.users,bulk\nfile.enrollments,bulk\n",
            "declares file.enrollments as bulk",
        ),
        (MANIFEST + "file.users,bulk\n", "does not say whether classes.csv is bulk or delta"),
        (MANIFEST + "file.users,sometimes\n", "file.users is 'sometimes': expected bulk, delta"),
    ],
)
def test_manifest_csv_must_be_consistent_with_the_bundle(
    tmp_path: Path, manifest: str, phrase: str
) -> None:
    bundle = write(
        tmp_path / "b", {"manifest.csv": manifest, "users.csv": USERS, "classes.csv": CLASSES}
    )
    assert any(phrase in p for p in problems_of(bundle))


def test_users_without_any_role_information_are_refused(tmp_path: Path) -> None:
    bundle = write(tmp_path / "b", {"users.csv": "sourcedId,username\nu1,x\n"})
    [problem] = problems_of(bundle)
    assert problem.startswith(f"{bundle}!users.csv:1: users.csv has no role column")


def test_dates_come_from_the_terms_and_must_be_real_and_in_order(tmp_path: Path) -> None:
    sessions = "sourcedId,startDate,endDate\nt1,2026-09-01,2026-12-18\nt2,2027-01-05,2027-06-11\n"
    bundle = write(
        tmp_path / "b",
        {
            "users.csv": USERS,
            "academicSessions.csv": sessions + "t3,2027-06-11,2027-01-05\nt4,2026-13-01,\n",
            "classes.csv": 'sourcedId,title,termSourcedIds\nc1,Year,"t1,t2"\n'
            "c2,Bad,t3\nc3,Worse,t4\n",
        },
    )
    found = problems_of(bundle)
    assert found == [
        f"{bundle}!academicSessions.csv:4:3: the end date 2027-01-05 is before the start date "
        "2027-06-11",
        f"{bundle}!academicSessions.csv:5:2: '2026-13-01' is not a real date; write it as "
        "YYYY-MM-DD, e.g. 2026-09-01",
    ]
    classes = 'sourcedId,title,termSourcedIds\nc1,Year,"t1,t2"\n'
    good = write(
        tmp_path / "g",
        {"users.csv": USERS, "academicSessions.csv": sessions, "classes.csv": classes},
    )
    info = load_roster([good]).classes["c1"]
    assert (info.start_date, info.end_date) == ("2026-09-01", "2027-06-11")


def test_duplicate_users_and_classes_name_both_lines(tmp_path: Path) -> None:
    bundle = write(
        tmp_path / "b",
        {"users.csv": USERS + "u1,,true,student\n", "classes.csv": CLASSES + "c1,,Again\n"},
    )
    found = problems_of(bundle)
    assert f"{bundle}!classes.csv:3:1: class 'c1' appears twice; keep one row" in found
    assert (
        f"{bundle}!users.csv:4:1: user 'u1' appears twice: first at {bundle}!users.csv:2; keep "
        "one row"
    ) in found


def test_a_folder_that_is_no_bundle_says_what_it_expected(tmp_path: Path) -> None:
    folder = write(tmp_path / "f", {"notes.txt": "hello"})
    [problem] = problems_of(folder)
    assert problem.startswith(f"{folder}: not a roster bundle (found: notes.txt)")


def test_a_user_without_a_role_is_said_to_get_no_account_only_if_no_enrollment_gives_one(
    tmp_path: Path,
) -> None:
    """A 1.2 bundle whose roles.csv misses users (or a REST source serving none): an enrolled
    user gets their account from the enrollment, so their users.csv row is no skip; only the
    one nobody enrolled is "no role ...: no account" (found by the 0.3.0 acceptance run)."""
    bundle = tmp_path / "or12"
    shutil.copytree(DATA / "oneroster-1.2", bundle)
    roles = (bundle / "roles.csv").read_text().splitlines(keepends=True)
    # usr-t-01 (enrolled) and usr-s-03 (enrolled nowhere, below) lose their role rows
    roles_left = [line for line in roles if "usr-s-03" not in line and "usr-t-01" not in line]
    (bundle / "roles.csv").write_text("".join(roles_left))
    enrollments = (bundle / "enrollments.csv").read_text().splitlines(keepends=True)
    kept = [line for line in enrollments if "usr-s-03" not in line]  # usr-s-03: nowhere
    (bundle / "enrollments.csv").write_text("".join(kept))
    roster = load_roster([bundle])
    assert ("usr-t-01", "cls-bio-1", INSTRUCTOR) in enrolled(roster)
    skipped = {s.external_id: s.reason for s in roster.skipped_rows}
    assert "usr-t-01" not in skipped
    assert skipped["usr-s-03"] == "no role in roles.csv, and no enrollment: no account"
