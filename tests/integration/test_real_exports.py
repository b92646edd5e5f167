"""District exports end to end over loopback: Clever (CR line endings, numeric ids, several
teachers a section), Apple School Manager and Canvas, a class column named on the command
line, a teacherless class and an unresolved term. Assertions are about the sandbox's end
state and exit codes. The sandbox is strict: learners are registered only by an instructor.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import Sandbox, start_sandbox
from tests.helpers import run_cli

DATA = Path(__file__).resolve().parent.parent / "data" / "rosters"
CLEVER, ASM, CANVAS = DATA / "clever-district", DATA / "asm-upload", DATA / "canvas-sis"


@pytest.fixture
def strict(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> object:
    box = start_sandbox(strict_learner_permissions=True)
    for key, value in box.env().items():
        monkeypatch.setenv(key, value)
    yield box
    box.server.stop()


def rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / name).open(newline="", encoding="utf-8-sig") as handle:
        return [r for r in csv.DictReader(handle) if any(r.values())]


def clever_expected() -> set[tuple[str, str, str]]:
    """(id, instance name, role): each section's teachers and enrolled students."""
    sections = rows(CLEVER, "sections.csv")
    name = {s["Section_id"]: s["Name"] or s["Course_name"] for s in sections}
    found = {
        (r["Student_id"], name[r["Section_id"]], "learner") for r in rows(CLEVER, "enrollments.csv")
    }
    for s in sections:
        for column in ("Teacher_id", "Teacher_2_id", "Teacher_3_id", "Teacher_4_id"):
            if s[column]:
                found.add((s[column], name[s["Section_id"]], "instructor"))
    return found


def manifest(folder: Path, body: str) -> Path:
    path = folder / "semester.yaml"
    path.write_text(
        "defaults: {graph_id: gref-test, start_date: 2026-09-01, end_date: 2027-06-30}\n" + body
    )
    return path


def test_a_clever_district_syncs_whole_and_the_second_night_sends_nothing(
    strict: Sandbox, tmp_path: Path
) -> None:
    semester = manifest(tmp_path, f"clever:\n  - path: {CLEVER}\n")
    first = run_cli("sync", str(semester))
    assert first.exit_code == 0, first.output
    assert strict.enrolments() == clever_expected()
    with strict.store.lock:
        instances = {i["name"]: i for i in strict.store.instances.values()}
        accounts = {a["external_user_id"] for a in strict.store.accounts.values()}
    assert len(instances) == len(rows(CLEVER, "sections.csv"))
    dated = instances["Group Guidance - 103 - H. Nakamura (Section 3)"]  # M/D/YY in the file
    assert (dated["start_date"], dated["end_date"]) == ("2026-08-24", "2027-06-11")
    assert instances["Seventh Grade Advisory"]["start_date"] == "2026-09-01"  # the defaults'
    assert not any("example.org" in a or "Secret" in a for a in accounts)
    before = strict.requests()
    second = run_cli("sync", str(semester), "--prune")
    assert second.exit_code == 0, second.output
    assert strict.requests() == before  # not even a token


def test_enrolment_files_with_a_named_class_column(strict: Sandbox, tmp_path: Path) -> None:
    teachers = tmp_path / "teachers.csv"
    lines = [f"{s['Teacher_id']},{s['Section_id']},Teacher\n" for s in rows(CLEVER, "sections.csv")]
    teachers.write_text("Teacher_id,Section_id,Kind\n" + "".join(lines))
    first = run_cli(
        "register", str(teachers), "--id-column", "Teacher_id", "--instance-column",
        "Section_id", "--role-column", "Kind", "--graph-id", "gref-test",
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    learners = run_cli(
        "register", str(CLEVER / "enrollments.csv"), "--id-column", "Student_id",
        "--instance-column", "Section_id",
    )  # fmt: skip
    assert learners.exit_code == 0, learners.output
    enrolled = rows(CLEVER, "enrollments.csv")
    expected = {(r["Student_id"], r["Section_id"], "learner") for r in enrolled}
    assert expected <= strict.enrolments()  # instances named by their key (no --graph-id names)


def test_apple_school_manager_and_canvas_exports_in_one_manifest(
    strict: Sandbox, tmp_path: Path
) -> None:
    asm_zip = shutil.make_archive(str(tmp_path / "asm"), "zip", ASM)
    canvas_zip = shutil.make_archive(str(tmp_path / "canvas"), "zip", CANVAS)
    semester = manifest(tmp_path, f"asm:\n  - path: {asm_zip}\ncanvas:\n  - path: {canvas_zip}\n")
    report = tmp_path / "plan.csv"
    result = run_cli("sync", str(semester), "--plan", "--json", "--report", str(report))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"]["skipped_rows"] == 9  # Canvas's, each said so
    with report.open(newline="") as handle:
        reasons = {r["reason"] for r in csv.DictReader(handle) if r["outcome"] == "skipped"}
    assert {"role observer is not provisioned", "role designer is not provisioned"} <= reasons
    done = run_cli("sync", str(semester))
    assert done.exit_code == 0, done.output
    names = {name for _ext, name, _role in strict.enrolments()}
    assert names == {
        'Algebra "Honors", Period 2', "Biology, Honors 12", "Art 6",
        "English 115: Intro to English", "Biology 300: Rocking it, Bio Style",
        'Art 105: "Art as a Medium"',
    }  # fmt: skip
    assert ("13aa3", "English 115: Intro to English", "instructor") in strict.enrolments()
    assert ("20417", "English 115: Intro to English", "learner") not in strict.enrolments()


def test_a_teacherless_class_is_caught_at_plan_time(strict: Sandbox, tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(CLEVER, tmp_path / "clever"))
    sections = bundle / "sections.csv"
    sections.write_bytes(sections.read_bytes().replace(b"02M800,642,48,", b"02M800,642,,"))
    result = run_cli("sync", str(manifest(tmp_path, f"clever:\n  - path: {bundle}\n")))
    assert result.exit_code == 1
    assert "class '642' has learners but no instructor" in result.stderr
    names = {name for _ext, name, _role in strict.enrolments()}
    assert "Tenth Grade English - 201 - H. Nakamura (Section 1)" not in names
    assert len(names) == len(rows(CLEVER, "sections.csv")) - 1  # the rest proceeded


def test_a_term_that_does_not_resolve_is_refused(strict: Sandbox, tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(DATA / "oneroster-1.1-bulk", tmp_path / "b"))
    classes = bundle / "classes.csv"
    classes.write_text(classes.read_text().replace(",t-fall,", ",t-1999,", 1))
    result = run_cli("sync", str(manifest(tmp_path, f"oneroster:\n  - path: {bundle}\n")))
    assert result.exit_code == 2
    assert f"{bundle}!classes.csv:2:11: term 't-1999' is not in academicSessions.csv" in (
        result.stderr
    )
    assert strict.requests() == {}
