"""Real exports, end to end: the server ends up with exactly what each file describes.

Assertions are about the sandbox's end state and exit codes, not about output wording.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from kprov.sandbox.store import ADMIN_EXTERNAL_ID
from tests.conftest import Sandbox
from tests.end_state import BULK_EXPECTED
from tests.helpers import run_cli

DATA = Path(__file__).resolve().parent.parent / "data"
ROSTERS, SDS = DATA / "rosters", DATA / "real" / "sds"


def accounts_on_server(box: Sandbox) -> set[str]:
    """External ids of the accounts kprov created (the sandbox's own partner admin aside)."""
    with box.store.lock:
        return {a["external_user_id"] for a in box.store.accounts.values()} - {ADMIN_EXTERNAL_ID}


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("district_cr_only.csv", ("--id-column", "Student ID"),
         {"100234", "100235", "100236", "200001"}),
        ("excel_semicolon_cp1252.csv", ("--encoding", "cp1252"),
         {"eleve-0001", "eleve-0002", "eleve-0003", "prof-0001"}),
        ("sis_export_tab.txt", (), {"s-5001", "s-5002", "f-0001", "f-0002"}),
        ("excel_unicode_text.txt", (), {"u-1001", "u-1002", "u-1003"}),
        ("pipe_mixed_endings.csv", ("--delimiter", "|"), {"p-1", "p-2", "p-3"}),
    ],
)  # fmt: skip
def test_excel_and_sis_dialects_create_exactly_their_accounts(
    sandbox_env: Sandbox, name: str, options: tuple[str, ...], expected: set[str]
) -> None:
    result = run_cli("accounts", "import", str(ROSTERS / name), *options)
    assert result.exit_code == 0, result.output
    assert accounts_on_server(sandbox_env) == expected


def test_standard_input_is_a_roster(sandbox_env: Sandbox) -> None:
    text = (ROSTERS / "sis_export_tab.txt").read_text()
    result = run_cli("accounts", "import", "-", input=text)
    assert result.exit_code == 0, result.output
    assert accounts_on_server(sandbox_env) == {"s-5001", "s-5002", "f-0001", "f-0002"}


def test_register_reads_a_semicolon_excel_file_with_its_instance_column(
    sandbox_env: Sandbox,
) -> None:
    result = run_cli(
        "register",
        str(ROSTERS / "excel_semicolon_cp1252.csv"),
        "--encoding",
        "cp1252",
        "--graph-id",
        "gref-maths",
    )
    assert result.exit_code == 0, result.output
    assert sandbox_env.enrolments() == {
        ("eleve-0001", "maths-6b", "learner"),
        ("eleve-0002", "maths-6b", "learner"),
        ("eleve-0003", "maths-6b", "learner"),
        ("prof-0001", "maths-6b", "instructor"),
    }


def sds_v1_expected() -> set[tuple[str, str, str]]:
    def rows(name: str) -> list[dict[str, str]]:
        with (SDS / "v1-100-users" / name).open(newline="", encoding="utf-8-sig") as handle:
            return list(csv.DictReader(handle))

    title = {r["SIS ID"]: r["Section Name"] for r in rows("Section.csv")}
    return {
        (r["SIS ID"], title[r["Section SIS ID"]], role)
        for name, role in (
            ("StudentEnrollment.csv", "learner"),
            ("TeacherRoster.csv", "instructor"),
        )
        for r in rows(name)
    }


def write_manifest(folder: Path, body: str) -> Path:
    path = folder / "semester.yaml"
    path.write_text("defaults: {graph_id: gref-test}\n" + body)
    return path


@pytest.mark.slow
def test_register_reads_an_sds_folder_and_creates_its_sections(sandbox_env: Sandbox) -> None:
    result = run_cli("register", str(SDS / "v1-100-users"), "--graph-id", "gref-test")
    assert result.exit_code == 0, result.output
    assert sandbox_env.enrolments() == sds_v1_expected()


@pytest.mark.slow
def test_sync_of_microsofts_sds_samples(sandbox_env: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path, f"sds:\n  - path: {SDS / 'v1-100-users'}\n  - path: {SDS / 'v2.1'}\n"
    )
    result = run_cli("sync", str(manifest))
    assert result.exit_code == 0, result.output
    v21 = {
        ("114008", "Computer Science 101", "learner"),
        ("114006", "Computer Science 101", "instructor"),  # "professor"
        ("114001", "Biology 10", "learner"),
        ("114003", "Biology 10", "learner"),
        ("114004", "Biology 10", "learner"),
        ("114007", "Biology 10", "instructor"),
    }
    assert sandbox_env.enrolments() == sds_v1_expected() | v21
    assert not {"114002", "114005"} & accounts_on_server(sandbox_env)  # family: no accounts
    with sandbox_env.store.lock:
        dates = {
            i["name"]: (i.get("start_date"), i.get("end_date"))
            for i in sandbox_env.store.instances.values()
        }
    assert dates["Math - Algebra 1"] == ("2017-07-01", "2018-06-30")
    assert dates["Biology 10"] == ("2021-08-24", "2022-06-11")


def test_sync_of_a_oneroster_1_2_bundle(sandbox_env: Sandbox, tmp_path: Path) -> None:
    bundle = shutil.make_archive(str(tmp_path / "ro12"), "zip", ROSTERS / "oneroster-1.2")
    result = run_cli("sync", str(write_manifest(tmp_path, f"oneroster:\n  - path: {bundle}\n")))
    assert result.exit_code == 0, result.output
    assert sandbox_env.enrolments() == {
        ("usr-t-01", "Biology - Period 1", "instructor"),
        ("usr-s-01", "Biology - Period 1", "learner"),
        ("usr-s-02", "Biology - Period 1", "learner"),
        ("usr-t-02", "Algebra II - Period 3", "instructor"),
        ("usr-s-01", "Algebra II - Period 3", "instructor"),  # the enrollment's role
        ("usr-s-02", "Algebra II - Period 3", "learner"),
        ("usr-s-03", "Algebra II - Period 3", "learner"),
    }
    # never created: the disabled user, the guardian, the tobedeleted class
    assert not {"usr-s-04", "usr-g-01"} & accounts_on_server(sandbox_env)
    with sandbox_env.store.lock:
        names = {i["name"] for i in sandbox_env.store.instances.values()}
    assert "Cancelled Section" not in names


def bulk_then_delta(box: Sandbox, tmp_path: Path, *delta_options: str) -> set[tuple[str, str, str]]:
    bulk = write_manifest(tmp_path, f"oneroster:\n  - path: {ROSTERS / 'oneroster-1.1-bulk'}\n")
    first = run_cli("sync", str(bulk))
    assert first.exit_code == 0, first.output
    assert box.enrolments() == BULK_EXPECTED
    delta = write_manifest(tmp_path, f"oneroster:\n  - path: {ROSTERS / 'oneroster-1.1-delta'}\n")
    second = run_cli("sync", str(delta), *delta_options)
    assert second.exit_code == 0, second.output
    return box.enrolments()


def test_a_delta_after_a_bulk_adds_its_changes_and_implies_no_removal(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    after = bulk_then_delta(sandbox_env, tmp_path, "--prune", "--max-removals", "2")
    assert ("u-s5", "Science 7 - Period 1", "learner") in after
    assert ("u-s1", "Science 7 - Period 2", "learner") in after
    # nobody the delta does not mention is removed, even with --prune
    untouched = BULK_EXPECTED - {
        ("u-s2", "Science 7 - Period 1", "learner"),
        ("u-s4", "Science 7 - Period 2", "learner"),
    }
    assert untouched <= after


def test_a_delta_removes_exactly_its_tobedeleted_enrollments(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    after = bulk_then_delta(sandbox_env, tmp_path, "--prune", "--max-removals", "2")
    assert after == (
        BULK_EXPECTED
        - {("u-s2", "Science 7 - Period 1", "learner"), ("u-s4", "Science 7 - Period 2", "learner")}
    ) | {("u-s5", "Science 7 - Period 1", "learner"), ("u-s1", "Science 7 - Period 2", "learner")}


def test_a_delta_s_removals_go_through_the_brake_and_need_prune(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    bulk = write_manifest(tmp_path, f"oneroster:\n  - path: {ROSTERS / 'oneroster-1.1-bulk'}\n")
    assert run_cli("sync", str(bulk)).exit_code == 0
    delta = write_manifest(tmp_path, f"oneroster:\n  - path: {ROSTERS / 'oneroster-1.1-delta'}\n")
    braked = run_cli("sync", str(delta), "--prune")  # 2 removals > 10% of 6 managed
    assert braked.exit_code == 6
    assert sandbox_env.enrolments() >= BULK_EXPECTED  # additions applied, nobody removed
    held = run_cli("sync", str(delta), "--plan", "--json")  # without --prune: held, listed
    import json

    reasons = [i["reason"] for i in json.loads(held.stdout)["items"] if i["action"] == "hold"]
    assert len(reasons) == 2 and all("tobedeleted" in r and "--prune" in r for r in reasons)
