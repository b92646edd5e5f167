"""What a careless hand or a new user does to kprov's files, run as users run kprov (the real
CLI, the sandbox over HTTP), and the end state of the server and of the local files."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kprov.state.mapping import MappingJournal
from tests.conftest import Sandbox, write_roster
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[2]


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

    exported = run_cli("mapping", "export")  # a backup job must not save "nobody"
    assert exported.exit_code == 3 and "is missing" in exported.stderr and not exported.stdout
    refused = run_cli("register", "--instance", "k", str(tmp_path / "tonight.csv"))
    assert refused.exit_code == 3, refused.output
    assert f"the mapping {mapping} is missing, but the registry in {state_dir}" in refused.stderr
    assert "kprov mapping rebuild" in refused.stderr
    assert sandbox_env.requests() == requests and not mapping.exists()

    rebuilt = run_cli("--json", "mapping", "rebuild")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["recovered"] == 7
    assert MappingJournal(mapping).load().account_of == before  # s-5 too, exactly
    history = json.loads(run_cli("--json", "history", "--person", "s-5").stdout)
    assert "recovered" in [event["outcome"] for event in history["events"]]  # the repair's run
    again = run_cli("register", "--instance", "k", str(tmp_path / "tonight.csv"))
    assert again.exit_code == 0, again.output
    assert sandbox_env.requests() == requests  # nothing looked up, nothing created


def test_rebuild_mapping_on_the_nightly_command_itself(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    roster = write_roster(tmp_path / "r.csv", ["s-1", "s-2"])
    first = run_cli("register", "-i", "k", str(roster), "--instructor", "t-1", "--graph-id", "g")
    assert first.exit_code == 0, first.output
    (state_dir / "mapping.csv").unlink()
    requests = sandbox_env.requests()
    result = run_cli("register", "--instance", "k", str(roster), "--rebuild-mapping")
    assert result.exit_code == 0, result.output
    assert "3 account(s) recovered exactly" in result.stderr
    assert sandbox_env.requests() == requests
    runs = json.loads(run_cli("--json", "history").stdout)["runs"]
    assert {r["command"] for r in runs[:2]} == {"register", "mapping rebuild"}


@pytest.mark.slow  # three processes
def test_state_commands_run_where_fcntl_and_pread_do_not_exist(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    """As on Windows (tests/without_posix.py): the lock names its holder, a second taker exits
    5 after its timeout, a run waiting with --lock-timeout gets the lock once its holder is
    killed (kill -9: the OS frees it), and then reads and extends the journals."""
    roster = write_roster(tmp_path / "r.csv", ["s-1"])
    first = run_cli("register", "-i", "k", str(roster), "--instructor", "t-1", "--graph-id", "g")
    assert first.exit_code == 0, first.output
    roster = write_roster(tmp_path / "r.csv", ["s-1", "s-2"])
    windows = [sys.executable, "-m", "tests.without_posix"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = functools.partial(subprocess.run, cwd=ROOT, env=env, capture_output=True, text=True)
    start = functools.partial(
        subprocess.Popen, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    holder = start([*windows, "hold", str(state_dir)])
    taker = None
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        taker = start([*windows, "try", str(state_dir)])
        assert taker.stdout is not None
        refused = taker.stdout.readline()  # at once, after its 0.2 s
        assert refused.startswith(f"5: the state in {state_dir} is locked by kprov pid ")
        assert f"pid {holder.pid} on " in refused and "running `kprov sync`" in refused
        assert "after waiting 0.2 s" in refused
        holder.kill()  # kill -9 while the taker waits: the OS frees the lock
        assert taker.stdout.readline() == "held\n"
    finally:
        for process in (holder, taker):
            if process is not None:
                process.kill()
                process.wait()
    done = run([*windows, "register", "--instance", "k", str(roster)], timeout=60)
    assert done.returncode == 0, done.stderr
    assert {e for e, _i, _t in sandbox_env.enrolments()} == {"t-1", "s-1", "s-2"}
    assert set(MappingJournal(state_dir / "mapping.csv").load().account_of) == {"t-1", "s-1", "s-2"}
