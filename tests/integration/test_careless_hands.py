"""What a careless hand or a new user does to kprov's files, run as users run kprov (the real
CLI, the sandbox over HTTP), and the end state of the server and of the local files."""

from __future__ import annotations

import json
from pathlib import Path

from kprov.state.mapping import MappingJournal
from tests.conftest import Sandbox, write_roster
from tests.helpers import run_cli


def test_a_deleted_mapping_is_refused_then_rebuilt_exactly_without_a_request(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    roster = tmp_path / "r.csv"
    roster.write_text(
        "external_user_id,role,instance\nt-1,instructor,k\n"
        + "".join(f"s-{n},learner,k\n" for n in range(6))
    )
    assert run_cli("register", str(roster), "--graph-id", "g").exit_code == 0
    mapping = state_dir / "mapping.csv"
    before = MappingJournal(mapping).load().account_of
    leaver = run_cli("unregister", "--instance", "k", "s-5", "--yes")
    assert leaver.exit_code == 0, leaver.output
    mapping.unlink()  # a careless `rm`; s-5 is in no roster any more
    write_roster(tmp_path / "tonight.csv", ["s-0", "s-1"])
    requests = sandbox_env.requests()

    refused = run_cli("register", "--instance", "k", str(tmp_path / "tonight.csv"))
    assert refused.exit_code == 3, refused.output
    assert f"the mapping {mapping} is missing, but the registry in {state_dir}" in refused.stderr
    assert "kprov mapping rebuild" in refused.stderr
    assert sandbox_env.requests() == requests and not mapping.exists()

    rebuilt = run_cli("--json", "mapping", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["recovered"] == 7
    assert MappingJournal(mapping).load().account_of == before  # s-5 too, exactly
    again = run_cli("register", "--instance", "k", str(tmp_path / "tonight.csv"))
    assert again.exit_code == 0, again.output
    assert sandbox_env.requests() == requests  # nothing looked up, nothing created


def test_rebuild_mapping_on_the_nightly_command_itself(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    roster = write_roster(tmp_path / "r.csv", ["s-1", "s-2"])
    assert run_cli("register", "--instance", "k", str(roster), "--graph-id", "g").exit_code == 0
    (state_dir / "mapping.csv").unlink()
    requests = sandbox_env.requests()
    result = run_cli("register", "--instance", "k", str(roster), "--rebuild-mapping")
    assert result.exit_code == 0, result.output
    assert "2 account(s) recovered exactly" in result.stderr
    assert sandbox_env.requests() == requests
