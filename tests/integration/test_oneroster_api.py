"""`kprov sync` and `kprov oneroster pull` with OneRoster REST sources, as cron runs them: the
real CLI, the OneRoster sandbox and the Knewton sandbox on loopback, then the end state.

The bundles served are the packaged sample and the real-shaped exports of
tests/data/rosters (OneRoster 1.1 bulk and delta, 1.2 with roles.csv); the expectations are
those the CSV bundle tests (test_real_rosters.py) hold for the same files.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kprov.rosters.api_source import V11, V12
from kprov.sandbox.oneroster_hostile import OneRosterHostility
from kprov.sis.cursor import CURSOR_FILE
from tests.conftest import Sandbox
from tests.end_state import BULK_EXPECTED
from tests.helpers import run_cli
from tests.oneroster_box import (
    ROSTERS,
    SAMPLE,
    SECRET,
    SECRET_ENV,
    manifest_entry,
    oneroster_box,
    secret_forms,
)

SAMPLE_EXPECTED = {
    ("or-t-01", "Geometry Period 4", "instructor"),
    ("or-s-01", "Geometry Period 4", "learner"),
    ("or-s-02", "Geometry Period 4", "learner"),
    ("or-s-03", "Geometry Period 4", "learner"),
}
ROSTER_12_EXPECTED = {
    ("usr-t-01", "Biology - Period 1", "instructor"),
    ("usr-s-01", "Biology - Period 1", "learner"),
    ("usr-s-02", "Biology - Period 1", "learner"),
    ("usr-t-02", "Algebra II - Period 3", "instructor"),
    ("usr-s-01", "Algebra II - Period 3", "instructor"),  # the enrollment's role
    ("usr-s-02", "Algebra II - Period 3", "learner"),
    ("usr-s-03", "Algebra II - Period 3", "learner"),
}


@pytest.fixture(autouse=True)
def sis_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


def manifest(folder: Path, text: str, name: str = "semester.yaml") -> Path:
    path = folder / name
    path.write_text("defaults:\n  graph_id: gref-test\n" + text)
    return path


def plan_items(path: Path) -> list[tuple[Any, ...]]:
    """The plan's items and counts, without where each line came from."""
    result = run_cli("sync", str(path), "--plan", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    rows = [tuple(sorted((k, v) for k, v in row.items() if k not in ("file", "line")))
            for row in document["items"]]  # fmt: skip
    return [document["counts"], *sorted(rows)]


@pytest.mark.parametrize(
    ("bundle", "version", "expected"),
    [(SAMPLE, V11, SAMPLE_EXPECTED), (ROSTERS / "oneroster-1.2", V12, ROSTER_12_EXPECTED)],
)
def test_a_pulled_source_ends_the_sandbox_as_the_bundle_says_then_sends_nothing(
    sandbox_env: Sandbox, tmp_path: Path, bundle: Path, version: str, expected: set[Any]
) -> None:
    """1.1 signs each request with OAuth 1.0a; 1.2 mints one OAuth 2 token for the night."""
    with oneroster_box(bundle, hostile="short", seed=5) as box:
        semester = manifest(tmp_path, manifest_entry(box, version))
        first = run_cli("sync", str(semester))
        assert first.exit_code == 0, first.output
        assert sandbox_env.enrolments() == expected
        writes = sandbox_env.write_requests()
        second = run_cli("sync", str(semester), "--prune")
        assert second.exit_code == 0 and second.stdout == "" and second.stderr == ""
        assert sandbox_env.write_requests() == writes
        if version == V12:
            assert box.requests["POST /oauth/token"] == 2  # one mint per night


@pytest.mark.parametrize(
    ("bundle", "version"),
    [(SAMPLE, V11), (ROSTERS / "oneroster-1.1-bulk", V11), (ROSTERS / "oneroster-1.2", V12)],
)
def test_a_pulled_source_plans_exactly_as_the_same_data_exported_as_csv(
    sandbox_env: Sandbox, tmp_path: Path, bundle: Path, version: str
) -> None:
    exported = manifest(tmp_path, f"oneroster:\n  - path: {bundle}\n", "exported.yaml")
    expected = plan_items(exported)
    with oneroster_box(bundle) as box:
        pulled = manifest(tmp_path, manifest_entry(box, version), "pulled.yaml")
        assert plan_items(pulled) == expected
        if bundle.name != "oneroster-1.1-bulk":
            return
        out = tmp_path / "tonight"  # the bundle with passwords: pulled, written, replayed
        written = run_cli("oneroster", "pull", str(pulled), "--out", str(out))
        assert written.exit_code == 0, written.output
    replayed = manifest(tmp_path, f"oneroster:\n  - path: {out}\n", "replayed.yaml")
    assert plan_items(replayed) == expected
    assert stat.S_IMODE(os.stat(out / "users.csv").st_mode) == 0o600
    assert "Fall2026!" not in (out / "users.csv").read_text()  # passwords are never written


@pytest.mark.parametrize("mode", ["fail@enrollments", "no-envelope@users"])
def test_a_failing_page_or_an_answer_without_its_collection_sends_nothing(
    sandbox_env: Sandbox, tmp_path: Path, mode: str
) -> None:
    with oneroster_box(ROSTERS / "oneroster-1.2", hostile=mode) as box:
        semester = manifest(tmp_path, manifest_entry(box, V12))
        result = run_cli("sync", str(semester), "--prune")
    assert result.exit_code == 4
    assert f"of {mode.split('@')[1]})" in result.stderr and "Nothing was sent" in result.stderr
    assert sandbox_env.requests() == {}  # the Knewton sandbox heard nothing, not even a token


def test_the_sis_secret_and_tokens_are_never_printed_or_written(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    report, log = tmp_path / "report.json", tmp_path / "kprov.log"
    outputs = []
    with oneroster_box(ROSTERS / "oneroster-1.2", hostile="echo,fail@users") as box:
        semester = manifest(tmp_path, manifest_entry(box, V12))
        for extra in (["--debug"], ["--json"], ["--report", str(report), "--log-file", str(log)]):
            result = run_cli("sync", str(semester), *extra)
            assert result.exit_code == 4
            outputs += [result.stdout, result.stderr]
        assert not report.exists()  # nothing was planned
        assert "<redacted>" in outputs[1]  # the echo was there, and scrubbed
        box.hostile = OneRosterHostility("secret-in-data")
        refused = run_cli("sync", str(semester), "--log-file", str(log))
        assert refused.exit_code == 2 and "holds the SIS client secret" in refused.stderr
        outputs += [refused.stdout, refused.stderr, log.read_text()]
    assert not any(form in text for text in outputs for form in secret_forms())


def saved_cursors(state_dir: Path) -> dict[str, str]:
    """The delta cursors the run ledger keeps (kprov 0.3 kept them in a JSON file)."""
    db = sqlite3.connect(state_dir / "ledger.sqlite3")
    try:
        return dict(db.execute("SELECT source, cursor FROM cursors").fetchall())
    finally:
        db.close()


def set_cursors(state_dir: Path, moment: str) -> None:
    db = sqlite3.connect(state_dir / "ledger.sqlite3")
    db.execute("UPDATE cursors SET cursor = ?", (moment,))
    db.commit()
    db.close()


def test_delta_nights_read_only_changes_and_move_the_cursor_only_after_success(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    with oneroster_box(ROSTERS / "oneroster-1.1-bulk") as box:
        semester = manifest(tmp_path, manifest_entry(box, V11, delta="true"))
        assert run_cli("sync", str(semester), "--plan").exit_code == 0
        assert saved_cursors(state_dir) == {}  # a plan moves no cursor
        first = run_cli("sync", str(semester))  # no cursor yet: everything, as a bulk
        assert first.exit_code == 0, first.output
        assert sandbox_env.enrolments() == BULK_EXPECTED
        assert not (state_dir / CURSOR_FILE).exists()  # the ledger keeps them now
        [key] = saved_cursors(state_dir)
        earlier = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        set_cursors(state_dir, earlier)  # as if pulled 2 h ago
        box.data.apply_bundle(ROSTERS / "oneroster-1.1-delta")  # the SIS changes meanwhile
        box.hostile = OneRosterHostility("fail@enrollments")
        assert run_cli("sync", str(semester), "--prune", "--max-removals", "2").exit_code == 4
        assert saved_cursors(state_dir) == {key: earlier}  # a failed night moves nothing
        box.hostile = OneRosterHostility()
        second = run_cli("-v", "--json", "sync", str(semester))  # no --prune: removals held
        assert second.exit_code == 0, second.output
        assert f"pulled changes since {earlier} from {box.url(V11)}: 1 orgs" in second.stderr
        assert "0 classes, 2 users, 4 enrollments" in second.stderr  # the delta's, no others
        assert json.loads(second.stdout)["counts"]["held"] == 2
        assert saved_cursors(state_dir)[key] != earlier  # the cursor moves on...
        later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        set_cursors(state_dir, later)  # ...past the delta: its rows are never read again
        third = run_cli("sync", str(semester), "--prune", "--max-removals", "2")
        assert third.exit_code == 0, third.output  # yet its tobedeleted rows were remembered
        writes = sandbox_env.write_requests()
        set_cursors(state_dir, later)
        quiet = run_cli("sync", str(semester), "--prune")  # nothing changed: a quiet night
        assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")
        assert sandbox_env.write_requests() == writes
    # exactly what the CSV delta test expects of the same files (test_real_rosters.py)
    assert sandbox_env.enrolments() == (
        BULK_EXPECTED
        - {("u-s2", "Science 7 - Period 1", "learner"), ("u-s4", "Science 7 - Period 2", "learner")}
    ) | {("u-s5", "Science 7 - Period 1", "learner"), ("u-s1", "Science 7 - Period 2", "learner")}


def test_oneroster_pull_names_the_source_to_choose_and_pulls_nothing_meanwhile(
    tmp_path: Path,
) -> None:
    two = manifest(tmp_path, "oneroster_api:\n" + "".join(
        f"  - url: http://127.0.0.1:9/{p}/ims/oneroster/v1p1\n    client_id: k\n"
        for p in ("a", "b")
    ))  # fmt: skip
    several = run_cli("oneroster", "pull", str(two), "--out", str(tmp_path / "out"))
    assert several.exit_code == 2 and "choose one with --source" in several.stderr
    assert "2: http://127.0.0.1:9/b/ims/oneroster/v1p1" in several.stderr
    unknown = run_cli("oneroster", "pull", str(two), "--source", "3", "--out", str(tmp_path))
    assert unknown.exit_code == 2 and "neither a source's url nor 1-2" in unknown.stderr
    none = manifest(tmp_path, "instances: []\n", "plain.yaml")
    assert run_cli("oneroster", "pull", str(none), "--out", str(tmp_path / "o")).exit_code == 2
    assert not (tmp_path / "out").exists()
