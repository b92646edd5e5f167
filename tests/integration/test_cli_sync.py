"""`kprov sync` night after night, as cron runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from kprov.state.lock import StateLock
from tests.conftest import Sandbox
from tests.helpers import Result, run_cli
from tests.semesters import Semester, first_night


def test_first_night_then_an_identical_night_sends_nothing_and_prints_nothing(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = first_night(tmp_path, sandbox_env)
    writes = sandbox_env.write_requests()
    before = sandbox_env.requests()
    second = run_cli("sync", str(semester.write()), "--prune")
    assert second.exit_code == 0
    assert second.stdout == "" and second.stderr == ""
    assert sandbox_env.write_requests() == writes
    assert sandbox_env.requests() == before  # not even a token request


def test_adds_and_drops_converge_with_prune(sandbox_env: Sandbox, tmp_path: Path) -> None:
    semester = first_night(tmp_path, sandbox_env)
    semester.set_class("alg", ["t-1"], [f"a-{i}" for i in range(2, 20)] + ["a-new"])
    result = run_cli("sync", str(semester.write()), "--prune", "--max-removals", "5")
    assert result.exit_code == 0, result.output
    assert sandbox_env.enrolments() == semester.expected()


def test_drops_without_prune_are_only_reported_in_the_plan(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = first_night(tmp_path, sandbox_env)
    semester.set_class("alg", ["t-1"], [f"a-{i}" for i in range(1, 20)])
    plan = json.loads(run_cli("sync", str(semester.write()), "--plan", "--json").stdout)
    assert plan["counts"] == {"already_registered": 41, "held": 1}
    [held] = plan["items"]
    assert (held["external_user_id"], held["action"]) == ("a-0", "hold")
    assert "pass --prune" in held["reason"]
    assert run_cli("sync", str(semester.write())).exit_code == 0
    assert ("a-0", "Class alg", "learner") in sandbox_env.enrolments()


def test_an_instructor_change_replaces_the_instructor(sandbox_env: Sandbox, tmp_path: Path) -> None:
    semester = first_night(tmp_path, sandbox_env)
    semester.set_class("bio", ["t-3"], [f"b-{i}" for i in range(20)])
    result = run_cli("sync", str(semester.write()), "--prune", "--max-removals", "1")
    assert result.exit_code == 0, result.output
    assert sandbox_env.enrolments() == semester.expected()


def test_a_role_change_needs_prune_and_then_replaces_the_registration(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = first_night(tmp_path, sandbox_env)
    semester.set_class("alg", ["t-1", "a-0"], [f"a-{i}" for i in range(1, 20)])
    refused = run_cli("sync", str(semester.write()))
    assert refused.exit_code == 1 and "--prune" in refused.stderr
    done = run_cli("sync", str(semester.write()), "--prune", "--max-removals", "1")
    assert done.exit_code == 0, done.output
    assert sandbox_env.enrolments() == semester.expected()


def test_prune_over_the_limit_removes_nothing_but_applies_additions_and_exits_6(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = first_night(tmp_path, sandbox_env)
    # 6 leave (past 10 % of the 42 managed registrations), one joins
    semester.set_class("alg", ["t-1"], [f"a-{i}" for i in range(6, 20)] + ["a-brand-new"])
    result = run_cli("sync", str(semester.write()), "--prune")
    assert result.exit_code == 6
    assert "6 removals exceed the limit of 4 (10% of 42 managed" in result.stderr
    assert "kprov holds approve hold-" in result.stderr
    state = sandbox_env.enrolments()
    assert ("a-brand-new", "Class alg", "learner") in state
    assert ("a-5", "Class alg", "learner") in state


def test_a_broken_manifest_exits_2_with_lines_and_sends_nothing(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    manifest = tmp_path / "broken.yaml"
    manifest.write_text(
        "defaults:\n  graph_id: g\n  colour: blue\n"
        "instances:\n"
        "  - key: a\n    name: Mr Smith smith@school.org\n    start_date: 1st of May\n"
        "    people:\n      - roster: missing.csv\n"
        "  - key: a\n    name: Again\n"
        "  - name: no key\n"
    )
    result = run_cli("sync", str(manifest))
    assert result.exit_code == 2
    for expected in (
        f"{manifest}:3:3: unknown field 'colour'",
        f"{manifest}:6:11:",
        "email address",
        f"{manifest}:7:17:",
        "not an ISO 8601 date",
        f"{manifest}:10:",
        "appears twice",
        "does not exist",
        f"{manifest}:12:5: an instance has no key",
    ):
        assert expected in result.stderr, expected
    assert sandbox_env.requests() == {}


def test_an_overlapping_run_exits_5_and_writes_nothing(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], ["a-1"])
    manifest = semester.write()
    outcome: dict[str, Result] = {}
    with StateLock(state_dir, command="kprov sync"):
        thread = threading.Thread(target=lambda: outcome.update(r=run_cli("sync", str(manifest))))
        thread.start()
        thread.join(30)
    assert outcome["r"].exit_code == 5
    assert sandbox_env.write_requests() == 0


def test_report_has_one_row_per_manifest_line(sandbox_env: Sandbox, tmp_path: Path) -> None:
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], ["a-1", "a-2"])
    report = tmp_path / "night.json"
    assert run_cli("sync", str(semester.write()), "--report", str(report)).exit_code == 0
    rows = [r for r in json.loads(report.read_text()) if r["action"] == "register"]
    assert sorted((r["external_user_id"], r["role"], r["outcome"]) for r in rows) == [
        ("a-1", "learner", "registered"),
        ("a-2", "learner", "registered"),
        ("t-1", "instructor", "registered"),
    ]


def test_log_file_records_every_run(sandbox_env: Sandbox, tmp_path: Path) -> None:

    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], ["a-1"])
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "kprov.log"
    manifest = semester.write()
    assert run_cli("sync", str(manifest), "--log-file", str(log)).exit_code == 0
    assert run_cli("sync", str(manifest), "--log-file", str(log)).exit_code == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["exit_code"] for r in records] == [0, 0]
    assert records[0]["counts"]["registered"] == 2
    assert records[1]["counts"] == {"already_registered": 2}
    assert all(r["time"].endswith("Z") and r["run_id"].startswith("kprov-") for r in records)


def test_cron_environment_is_silent_when_all_is_well_and_loud_on_failure(
    sandbox_env: Sandbox, tmp_path: Path, isolated_env: Path
) -> None:
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], ["a-1", "a-2"])
    manifest = semester.write()
    env = {"HOME": str(isolated_env), "PATH": os.environ["PATH"]}
    env.update({k: v for k, v in os.environ.items() if k.startswith("KPROV_")})
    command = [sys.executable, "-m", "kprov", "sync", str(manifest)]
    for _night in range(2):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    (tmp_path / "alg.csv").write_text("external_user_id\njane@school.org\n")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert "alg.csv:2:1: id 'jane@school.org' looks like an email address" in done.stderr
    assert "Traceback" not in done.stderr
