"""`kprov accounts` and `kprov mapping` end to end: real CLI, real HTTP, then the real state."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from kprov.sandbox.faults import FaultRates
from kprov.state.lock import StateLock
from kprov.state.mapping import MappingJournal
from tests.conftest import Sandbox, start_sandbox, write_roster
from tests.end_state import server_accounts
from tests.helpers import Result, run_cli


def counts(result: Result) -> dict[str, int]:
    """The outcome counts of a --json run (the envelope's `counts`)."""
    return dict(json.loads(result.stdout)["counts"])


def mapping_of(state_dir: Path) -> dict[str, str]:
    return dict(MappingJournal(state_dir / "mapping.csv").load().account_of)


def test_import_creates_every_account_and_maps_it_to_the_servers_id(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    roster = write_roster(tmp_path / "r.csv", [f"stu-{i:04d}" for i in range(120)])
    result = run_cli("accounts", "import", str(roster), "--json")
    assert result.exit_code == 0, result.output
    summary = counts(result)
    assert (summary["created"], summary.get("failed", 0)) == (120, 0)
    assert sandbox_env.requests()["POST /batch"] == 3
    assert mapping_of(state_dir) == server_accounts(sandbox_env)
    assert sandbox_env.store.max_batch_seen == 50


def test_rerun_sends_no_request_when_all_are_mapped(sandbox_env: Sandbox, tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "r.csv", [f"stu-{i}" for i in range(60)])
    assert run_cli("accounts", "import", str(roster)).exit_code == 0
    before = sandbox_env.requests()
    result = run_cli("accounts", "import", str(roster), "--json")
    assert result.exit_code == 0
    assert counts(result) == {"already_mapped": 60}
    assert sandbox_env.requests() == before  # not even a token request


def test_rerun_with_new_lines_sends_only_the_new_ones(sandbox_env: Sandbox, tmp_path: Path) -> None:
    assert (
        run_cli("accounts", "import", str(write_roster(tmp_path / "a.csv", ["s1", "s2"]))).exit_code
        == 0
    )
    result = run_cli(
        "accounts", "import", str(write_roster(tmp_path / "b.csv", ["s1", "s2", "s3"])), "--json"
    )
    assert counts(result) == {"created": 1, "already_mapped": 2}
    assert sandbox_env.requests()["POST /batch"] == 2


def test_dry_run_sends_nothing_and_needs_no_secret(
    sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    monkeypatch.delenv("KPROV_API_SECRET")
    roster = write_roster(tmp_path / "r.csv", ["s1", "s2"])
    result = run_cli("accounts", "import", str(roster), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert counts(result) == {"would_create": 2}
    assert sandbox_env.requests() == {}
    assert mapping_of(state_dir) == {}


def test_bad_roster_exits_2_and_sends_nothing(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    roster = tmp_path / "bad.csv"
    roster.write_text("external_user_id\nstu-1\njane@school.org\nstu-1\n", encoding="utf-8")
    result = run_cli("accounts", "import", str(roster))
    assert result.exit_code == 2
    assert f"{roster}:3:1: id 'jane@school.org' looks like an email address" in result.stderr
    assert f"{roster}:4: id 'stu-1' appears twice: first at {roster}:2" in result.stderr
    assert "nothing was sent" in result.stderr
    assert sandbox_env.requests() == {}
    assert not (state_dir / "mapping.csv").exists()


def test_existing_accounts_missing_from_the_mapping_are_recovered(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    admin = sandbox_env.store.principal(
        sandbox_env.store.issue_token(
            "test-key:sandbox-secret", {"grant_type": "client_credentials"}
        )["access_token"]
    )
    for ext in ("s2", "s4"):  # created elsewhere, e.g. by a run that died before writing
        sandbox_env.store.create_account(admin, {"external_user_id": ext})
    roster = write_roster(tmp_path / "r.csv", ["s1", "s2", "s3", "s4"])
    result = run_cli(
        "accounts", "import", str(roster), "--json", "--report", str(tmp_path / "rep.csv")
    )
    assert counts(result) == {"created": 2, "recovered": 2}
    assert mapping_of(state_dir) == server_accounts(sandbox_env)
    rows = list(csv.DictReader((tmp_path / "rep.csv").open()))
    assert [(r["line"], r["external_user_id"], r["outcome"]) for r in rows] == [
        ("2", "s1", "created"),
        ("3", "s2", "recovered"),
        ("4", "s3", "created"),
        ("5", "s4", "recovered"),
    ]


def test_import_under_seeded_faults_ends_complete_and_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    box = start_sandbox(faults=FaultRates(unavailable=0.05, error_after=0.03, drop=0.02), seed=42)
    try:
        for key, value in box.env().items():
            monkeypatch.setenv(key, value)
        roster = write_roster(tmp_path / "r.csv", [f"u{i:05d}" for i in range(2000)])
        first = run_cli("accounts", "import", str(roster), "--concurrency", "8", "--json")
        summary = counts(first)
        if first.exit_code != 0:  # allowed: at most one rerun
            assert first.exit_code in (1, 4), first.output
            rerun = run_cli("accounts", "import", str(roster), "--json")
            assert rerun.exit_code == 0, rerun.output
        assert summary["created"] + summary["recovered"] >= 1900
        assert mapping_of(state_dir) == server_accounts(box)
        assert len(server_accounts(box)) == 2000
        assert box.store.max_batch_seen <= 50
        batches = box.requests()["POST /batch"]
        final = run_cli("accounts", "import", str(roster), "--json")
        assert counts(final) == {"already_mapped": 2000}
        assert box.requests()["POST /batch"] == batches
    finally:
        box.server.stop()


def test_torn_mapping_line_is_repaired_and_the_account_recovered(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    roster = write_roster(tmp_path / "r.csv", ["s1", "s2", "s3"])
    assert run_cli("accounts", "import", str(roster)).exit_code == 0
    mapping = state_dir / "mapping.csv"
    text = mapping.read_text()
    mapping.write_text(text[: text.rstrip("\n").rfind("\n") + 12])  # cut the last row short
    result = run_cli("accounts", "import", str(roster), "--json")
    assert result.exit_code == 0, result.output
    assert "cut short by a crash" in result.stderr
    assert counts(result) == {"already_mapped": 2, "recovered": 1}
    assert mapping_of(state_dir) == server_accounts(sandbox_env)


def test_a_second_run_exits_5_while_the_state_is_locked(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    roster = write_roster(tmp_path / "r.csv", ["s1"])
    with StateLock(state_dir, command="kprov sync"):
        # filelock locks per process and thread; a fresh thread stands in for another process
        import threading

        outcome: dict[str, Result] = {}
        thread = threading.Thread(
            target=lambda: outcome.update(result=run_cli("accounts", "import", str(roster)))
        )
        thread.start()
        thread.join(30)
    result = outcome["result"]
    assert result.exit_code == 5
    assert "locked by kprov pid" in result.stderr
    assert sandbox_env.requests() == {}


def test_api_unreachable_exits_4_with_resume_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    monkeypatch.setenv("KPROV_BASE_URL", f"http://127.0.0.1:{closed_port}/v0")
    monkeypatch.setenv("KPROV_API_KEY", "k")
    monkeypatch.setenv("KPROV_API_SECRET", "s")
    monkeypatch.setenv("KPROV_RETRY_MAX_ATTEMPTS", "2")
    result = run_cli("accounts", "import", str(write_roster(tmp_path / "r.csv", ["s1"])))
    assert result.exit_code == 4
    assert "no answer" in result.stderr and "rerun" in result.stderr
    assert "Traceback" not in result.output


def test_hash_ids_sends_only_anonymized_ids_and_records_the_sis_id(
    sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    monkeypatch.setenv("KPROV_ID_KEY", "district-key-0123456789")
    roster = write_roster(tmp_path / "r.csv", ["jane.doe@school.org"])
    result = run_cli("accounts", "import", str(roster), "--hash-ids")
    assert result.exit_code == 0, result.output
    [(ext, _)] = server_accounts(sandbox_env).items()
    assert "@" not in ext and len(ext) == 64
    index = MappingJournal(state_dir / "mapping.csv").load()
    assert index.sis_of == {ext: "jane.doe@school.org"}
    shown = run_cli("mapping", "show", "jane.doe@school.org")
    assert ext in shown.stdout


def test_accounts_create_get_and_disable(sandbox_env: Sandbox, state_dir: Path) -> None:
    created = run_cli("accounts", "create", "stu-77", "--json")
    assert created.exit_code == 0, created.output
    [item] = json.loads(created.stdout)["items"]
    assert item["outcome"] == "created"
    account_id = item["account_id"]
    assert counts(run_cli("accounts", "create", "stu-77", "--json")) == {"already_mapped": 1}
    got = json.loads(run_cli("accounts", "get", "--external", "stu-77", "--json").stdout)
    assert (got["ok"], got["id"], got["external_user_id"]) == (True, account_id, "stu-77")
    assert run_cli("accounts", "create", "jane@x.org").exit_code == 2
    assert run_cli("accounts", "disable", "--external", "stu-77").exit_code == 2  # no --yes
    assert run_cli("accounts", "disable", "--external", "stu-77", "--yes").exit_code == 0
    assert sandbox_env.store.accounts[account_id]["active"] is False
    index = MappingJournal(state_dir / "mapping.csv").load()
    assert index.account_of["stu-77"] == account_id and "stu-77" in index.disabled


def test_mapping_export_and_verify_find_a_wrong_line(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    roster = write_roster(tmp_path / "r.csv", ["s1", "s2", "s3"])
    assert run_cli("accounts", "import", str(roster)).exit_code == 0
    exported = json.loads(run_cli("mapping", "export", "--format", "json").stdout)
    assert sorted(e["external_user_id"] for e in exported) == ["s1", "s2", "s3"]
    assert run_cli("mapping", "verify").exit_code == 0
    with (state_dir / "mapping.csv").open("a") as handle:
        handle.write("s2,00000000-0000-4000-8000-000000000000,t,,created\n")
    result = run_cli("mapping", "verify", "--json")
    assert result.exit_code == 1
    [mismatch] = json.loads(result.stdout)["mismatches"]
    assert mismatch["external_user_id"] == "s2"


def test_mapping_verify_stops_with_exit_4_when_the_api_goes_away(
    sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roster = write_roster(tmp_path / "r.csv", [f"s{i}" for i in range(30)])
    assert run_cli("accounts", "import", str(roster)).exit_code == 0
    sandbox_env.server.stop()
    monkeypatch.setenv("KPROV_RETRY_MAX_ATTEMPTS", "1")
    result = run_cli("mapping", "verify", "--json")
    assert result.exit_code == 4, result.output  # not 1: nothing was found wrong
    assert json.loads(result.stdout)["error"]["code"] == 4
