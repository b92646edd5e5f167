"""Local state through the real commands: unresolved registrations resolved or forgotten, a
mistyped --mapping refused untouched, a real file-size limit met mid-import (exit 9)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kprov.state.mapping import MappingJournal
from kprov.state.registry import REGISTRATION_HEADER
from tests.conftest import Sandbox, start_sandbox, write_roster
from tests.helpers import run_cli

ROSTER = "external_user_id,role,instance\nt-1,instructor,alg1\ns-1,learner,alg1\ns-2,learner,alg1\n"


def registrations(state_dir: Path) -> dict[str, dict[str, str]]:
    """external id -> latest registration row."""
    with (state_dir / "registrations.csv").open(newline="") as handle:
        return {row["external_user_id"]: row for row in csv.DictReader(handle)}


def lose_the_id_of(state_dir: Path, external_id: str) -> str:
    """Make the registry say what it says after a lost answer and an 'already registered'."""
    row = registrations(state_dir)[external_id]
    with (state_dir / "registrations.csv").open("a", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerow(
            [row[k] if k != "registration_id" else "" for k in REGISTRATION_HEADER]
        )
    return row["registration_id"]


@pytest.fixture
def registered(sandbox_env: Sandbox, tmp_path: Path, state_dir: Path) -> Path:
    roster = tmp_path / "r.csv"
    roster.write_text(ROSTER)
    result = run_cli("register", str(roster), "--graph-id", "gref-algebra")
    assert result.exit_code == 0, result.output
    return roster


def test_an_unresolved_registration_is_listed_then_resolved_with_a_checked_id(
    registered: Path, sandbox_env: Sandbox, state_dir: Path
) -> None:
    real_id = lose_the_id_of(state_dir, "s-1")
    other_id = registrations(state_dir)["s-2"]["registration_id"]
    listed = run_cli("registrations", "unresolved", "--json")
    [row] = json.loads(listed.stdout)["unresolved"]
    assert (row["instance"], row["external_user_id"], row["reported"]) == ("alg1", "s-1", False)

    refused = run_cli("registrations", "resolve", "--instance", "alg1", "s-1", "not-a-uuid")
    assert refused.exit_code == 2 and "is not a registration id" in refused.stderr
    wrong = run_cli("registrations", "resolve", "--instance", "alg1", "s-1", other_id)
    assert wrong.exit_code == 2 and "nothing was recorded" in wrong.stderr
    assert registrations(state_dir)["s-1"]["registration_id"] == ""

    done = run_cli("registrations", "resolve", "--instance", "alg1", "s-1", real_id.upper())
    assert done.exit_code == 0, done.output
    assert registrations(state_dir)["s-1"]["registration_id"] == real_id
    listed_again = run_cli("registrations", "unresolved", "--json")
    assert json.loads(listed_again.stdout)["unresolved"] == []
    again = run_cli("registrations", "resolve", "--instance", "alg1", "s-1", real_id)
    assert again.exit_code == 2 and "already has its registration id" in again.stderr


def test_forgetting_drops_it_locally_and_leaves_the_server_alone(
    registered: Path, sandbox_env: Sandbox, state_dir: Path
) -> None:
    lose_the_id_of(state_dir, "s-2")
    enrolled = sandbox_env.enrolments()
    unconfirmed = run_cli("registrations", "forget", "--instance", "alg1", "s-2")
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.stderr
    done = run_cli("registrations", "forget", "--instance", "alg1", "s-2", "--yes")
    assert done.exit_code == 0, done.output
    assert registrations(state_dir)["s-2"]["status"] == "forgotten"
    listed = run_cli("registrations", "list", "--instance", "alg1", "--json")
    names = {r["external_user_id"] for r in json.loads(listed.stdout)["registrations"]}
    assert names == {"t-1", "s-1"}
    assert sandbox_env.enrolments() == enrolled  # nothing was sent
    missing = run_cli("registrations", "forget", "--instance", "alg1", "s-2", "--yes")
    assert missing.exit_code == 2 and "has no registration" in missing.stderr


def test_a_mistyped_mapping_option_leaves_the_sis_export_untouched(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    export = tmp_path / "exports" / "export.csv"
    export.parent.mkdir()
    export.write_bytes(b"Student ID,Last Name,First Name\r\n100234,Okafor,Chidi\r\n100235,Lee,Min")
    digest = hashlib.sha256(export.read_bytes()).hexdigest()
    roster = write_roster(tmp_path / "r.csv", ["s1"])
    result = run_cli("accounts", "import", str(roster), "--mapping", str(export))
    assert result.exit_code == 3, result.output
    assert "is not a kprov mapping file" in result.stderr
    assert hashlib.sha256(export.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in export.parent.iterdir()) == ["export.csv"]
    assert sandbox_env.requests() == {}


def test_a_mapping_in_a_mistyped_folder_is_refused_not_started_afresh_there(
    sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--mapping /var/lib/kporv/prod/mapping.csv` must not create that folder and a new,
    empty mapping in it (every account would be looked up or created again)."""
    roster = write_roster(tmp_path / "r.csv", ["s1"])
    typo = tmp_path / "kporv" / "mapping.csv"
    result = run_cli("accounts", "import", str(roster), "--mapping", str(typo))
    assert result.exit_code == 2, result.output
    assert f"the mapping's folder {typo.parent} does not exist" in result.stderr
    monkeypatch.setenv("KPROV_MAPPING", str(typo))
    assert run_cli("accounts", "import", str(roster), "--dry-run").exit_code == 2
    assert not typo.parent.exists() and sandbox_env.requests() == {}
    typo.parent.mkdir(mode=0o700)
    assert run_cli("accounts", "import", str(roster)).exit_code == 0
    assert MappingJournal(typo).load().account_of.keys() == {"s1"}


def test_a_stale_mapping_path_beside_registrations_is_refused_until_created_on_purpose(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    """`--mapping ./mapping-old.csv` (a file that is not there) for a state that already
    registered people would start an empty mapping and look every account up again."""
    roster = tmp_path / "r.csv"
    roster.write_text("external_user_id,role,instance\nt1,instructor,k1\ns1,learner,k1\n")
    assert run_cli("register", str(roster), "--graph-id", "g").exit_code == 0
    before = sandbox_env.requests()
    stale = tmp_path / "mapping-old.csv"
    for extra in ([], ["--plan"]):
        result = run_cli(
            "register", str(roster), "--graph-id", "g", "--mapping", str(stale), *extra
        )
        assert result.exit_code == 2, result.output
        assert f"the mapping {stale} does not exist, but the state directory" in result.stderr
        assert "pass --rebuild-mapping" in result.stderr
    assert not stale.exists() and sandbox_env.requests() == before
    stale.touch(mode=0o600)  # an empty mapping beside registrations: lost, not new
    emptied = run_cli("register", str(roster), "--graph-id", "g", "--mapping", str(stale))
    assert emptied.exit_code == 3 and "holds nobody" in emptied.stderr
    again = run_cli(
        "register", str(roster), "--graph-id", "g", "--mapping", str(stale), "--rebuild-mapping"
    )  # a new mapping there on purpose: rebuilt from the registry, nothing looked up
    assert again.exit_code == 0, again.output
    assert (
        MappingJournal(stale).load().account_of
        == MappingJournal(state_dir / "mapping.csv").load().account_of
    )
    assert sandbox_env.requests()["POST /registrations"] == before["POST /registrations"]


def test_exporting_a_mistyped_mapping_path_is_an_error_not_an_empty_mapping(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KPROV_BASE_URL", "https://api.example.test/v0")
    monkeypatch.setenv("KPROV_API_KEY", "k")
    fresh = run_cli("mapping", "export")  # the default mapping before any run: empty, fine
    assert (fresh.exit_code, fresh.stdout) == (
        0,
        "external_user_id,account_id,created_at,sis_id,status\n",
    )
    typo = tmp_path / "mapings.csv"
    flagged = run_cli("mapping", "export", "--mapping", str(typo))
    assert flagged.exit_code == 2 and flagged.stdout == ""
    assert f"--mapping {typo}: no such mapping file" in flagged.stderr
    monkeypatch.setenv("KPROV_MAPPING", str(typo))
    from_env = run_cli("mapping", "export", "--format", "json")
    assert from_env.exit_code == 2 and "KPROV_MAPPING" in from_env.stderr


def test_a_real_file_size_limit_stops_the_run_at_the_ledger_before_anything_is_sent(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    """The ledger is written before the first request (the run's start and its planned
    items), and it is larger than the mapping: a file size limit stops the run there, with
    nothing sent and nothing recorded (the mapping's own EFBIG mid-write is a unit test)."""
    ids = [f"stu-{i:04d}" for i in range(150)]
    roster = write_roster(tmp_path / "r.csv", ids)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    limit = 6000
    launcher = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
        "sys.argv = ['kprov', *sys.argv[1:]]; runpy.run_module('kprov', run_name='__main__')"
    )
    run = subprocess.run(
        [sys.executable, "-c", launcher, "accounts", "import", str(roster), "-c", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 9, run.stderr
    assert "run ledger" in run.stderr and str(state_dir / "ledger.sqlite3") in run.stderr
    assert "Traceback" not in run.stderr and "ledger could not record" not in run.stderr
    assert sandbox_env.write_requests() == 0
    mapping = state_dir / "mapping.csv"
    assert not mapping.exists() or len(MappingJournal(mapping).load()) == 0
    rerun = run_cli("accounts", "import", str(roster))
    assert rerun.exit_code == 0, rerun.output
    assert len(MappingJournal(mapping).load()) == len(ids)


def test_export_during_a_run_skips_the_line_being_written_and_repairs_nothing(
    sandbox_env: Sandbox, state_dir: Path
) -> None:
    state_dir.mkdir(mode=0o700)
    mapping = state_dir / "mapping.csv"
    body = (
        "external_user_id,account_id,created_at,sis_id,status\n"
        "s1,0b8e1f3c-1111-4222-8333-444455556666,2026-01-01T00:00:00Z,,created\n"
        "s2,0b8e1f3c-1111-42"  # an import is writing this line right now
    )
    mapping.write_text(body)
    result = run_cli("mapping", "export", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [r["external_user_id"] for r in json.loads(result.stdout)] == ["s1"]
    assert "incomplete" in result.stderr
    assert mapping.read_text() == body and list(state_dir.iterdir()) == [mapping]


def test_a_state_directory_is_refused_by_another_api_and_by_other_ids(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One state directory mirrors one API, made one way: a run against another API (or
    another key), or with ids made another way, would falsify the mapping; exit 3, nothing
    sent, nothing written."""
    roster = write_roster(tmp_path / "r.csv", ["s-1", "s-2"])
    assert run_cli("accounts", "import", str(roster)).exit_code == 0
    owner = json.loads((state_dir / "owner.json").read_text())
    assert owner["ids"] == "plain" and sandbox_env.base_url.rstrip("/") == owner["base_url"]
    assert os.environ["KPROV_API_KEY"] not in json.dumps(owner)  # only a fingerprint
    before = {p.name: p.read_bytes() for p in state_dir.iterdir() if p.is_file()}
    writes = sandbox_env.write_requests()

    monkeypatch.setenv("KPROV_ID_KEY", "district-key-0123456789")
    hashed = run_cli("accounts", "import", str(roster), "--hash-ids")
    assert hashed.exit_code == 3 and "plain ids" in hashed.stderr

    other = start_sandbox()
    try:
        monkeypatch.setenv("KPROV_BASE_URL", other.base_url)
        elsewhere = run_cli("accounts", "import", str(roster), "--json")
        assert elsewhere.exit_code == 3
        assert json.loads(elsewhere.stdout)["error"]["type"] == "ConfigError"
        assert other.write_requests() == 0
    finally:
        other.server.stop()
    assert sandbox_env.write_requests() == writes
    after = {p.name: p.read_bytes() for p in state_dir.iterdir() if p.is_file()}
    history = ("lock", "ledger.sqlite3")  # the ledger records the refused attempts
    assert {k: v for k, v in after.items() if k not in history} == {
        k: v for k, v in before.items() if k not in history
    }


def test_a_first_run_that_recorded_nothing_binds_its_state_to_no_api(
    sandbox_env: Sandbox,
    tmp_path: Path,
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    closed_port: int,
) -> None:
    """A first run with a mistyped URL (or a wrong key) records nothing: fixing the typo must
    not meet "the state belongs to another setup". Once the state holds records, it does."""
    roster = write_roster(tmp_path / "r.csv", ["s-1", "s-2"])
    monkeypatch.setenv("KPROV_BASE_URL", f"http://127.0.0.1:{closed_port}/v0")
    assert run_cli("accounts", "import", str(roster)).exit_code == 4
    monkeypatch.setenv("KPROV_API_KEY", "a-mistyped-key")
    monkeypatch.setenv("KPROV_BASE_URL", sandbox_env.base_url)
    assert run_cli("accounts", "import", str(roster)).exit_code == 3  # the key is refused
    assert (state_dir / "owner.json").exists() and not (state_dir / "mapping.csv").exists()
    monkeypatch.setenv("KPROV_API_KEY", sandbox_env.env()["KPROV_API_KEY"])
    fixed = run_cli("accounts", "import", str(roster))
    assert fixed.exit_code == 0, fixed.output
    owner = json.loads((state_dir / "owner.json").read_text())
    assert owner["base_url"] == sandbox_env.base_url.rstrip("/")
    monkeypatch.setenv("KPROV_BASE_URL", f"http://127.0.0.1:{closed_port}/v0")
    moved = run_cli("accounts", "import", str(roster), "--dry-run")
    assert moved.exit_code == 3 and "another setup" in moved.stderr


def test_a_sync_with_a_mistyped_base_path_binds_nothing_either(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adversary, round three: `sync` (unlike `accounts import`) writes an instance intent
    before its first request; the 404 of a mistyped base path closes it as abandoned. That
    pair records nothing, so fixing the path must not meet "belongs to another setup"."""
    manifest = tmp_path / "semester.yaml"
    manifest.write_text(
        "instances:\n  - key: c1\n    name: C\n    graph_id: gref-demo\n"
        "    people:\n      - learners: [s-1]\n      - instructors: [t-1]\n",
        encoding="utf-8",
    )
    root = sandbox_env.base_url.rsplit("/v0", 1)[0]
    monkeypatch.setenv("KPROV_BASE_URL", root + "/api/v0")
    mistyped = run_cli("sync", str(manifest))
    assert mistyped.exit_code == 3 and "/v0" in mistyped.stderr
    monkeypatch.setenv("KPROV_BASE_URL", sandbox_env.base_url)
    fixed = run_cli("sync", str(manifest))
    assert fixed.exit_code == 0, fixed.stderr
    assert sandbox_env.enrolments() == {("s-1", "C", "learner"), ("t-1", "C", "instructor")}


def test_a_state_made_before_owners_were_recorded_keeps_its_kind_of_ids(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KPROV_ID_KEY", "district-key-0123456789")
    roster = write_roster(tmp_path / "r.csv", ["4410", "4411"])
    assert run_cli("accounts", "import", str(roster), "--hash-ids").exit_code == 0
    (state_dir / "owner.json").unlink()  # as 0.1 left it
    plain = run_cli("accounts", "import", str(roster), "--dry-run")
    assert plain.exit_code == 3 and "hashed" in plain.stderr
    again = run_cli("accounts", "import", str(roster), "--hash-ids")
    assert again.exit_code == 0, again.output
    assert json.loads((state_dir / "owner.json").read_text())["ids"].startswith("hmac-sha256:")
    monkeypatch.setenv("KPROV_ID_KEY", "another-key-0123456789ab")
    rekeyed = run_cli("accounts", "import", str(roster), "--hash-ids", "--dry-run")
    assert rekeyed.exit_code == 3


def test_a_torn_mapping_line_is_healed_without_registering_anyone_again(
    registered: Path, sandbox_env: Sandbox, state_dir: Path
) -> None:
    mapping = state_dir / "mapping.csv"
    whole = mapping.read_text()
    last = whole.splitlines()[-1]
    mapping.write_text(whole[: -len(last) // 2])  # kill -9 in the middle of the last line
    lost = last.split(",")[0]
    requests_before = sandbox_env.requests()
    rerun = run_cli("register", str(registered), "--graph-id", "gref-algebra")
    assert rerun.exit_code == 0, rerun.output
    assert MappingJournal(mapping).load().account_of[lost] == last.split(",")[1]
    after = sandbox_env.requests()
    sent = {k: after.get(k, 0) - requests_before.get(k, 0) for k in after}
    assert not any(v for k, v in sent.items() if "registrations" in k and k.startswith("POST"))
