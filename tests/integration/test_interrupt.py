"""Ctrl-C stops at once: a real SIGINT to a real, paced `kprov accounts import`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kprov.state.mapping import MappingJournal
from tests.conftest import Sandbox, write_roster
from tests.integration.test_cli_accounts import server_accounts


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_sigint_stops_sending_records_what_was_answered_and_exits_130(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    roster = write_roster(tmp_path / "r.csv", [f"u{i:05d}" for i in range(3000)])
    env = {**os.environ, "KPROV_RATE_LIMITS": "POST /batch=120"}  # paced: 2 batches a second
    process = subprocess.Popen(
        [sys.executable, "-m", "kprov", "accounts", "import", str(roster), "-c", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: sandbox_env.requests().get("POST /batch", 0) >= 3)
        process.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        at_signal = sandbox_env.requests()["POST /batch"]
        _out, err = process.communicate(timeout=10)
        stopped_in = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert stopped_in < 3.0, stopped_in
    assert sandbox_env.requests()["POST /batch"] <= at_signal + 2  # at most what was in flight
    assert "stopping" in err and "Traceback" not in err
    mapping = MappingJournal(state_dir / "mapping.csv").load().account_of
    assert mapping == server_accounts(sandbox_env)  # every answer received was recorded
    rerun = subprocess.run(
        [sys.executable, "-m", "kprov", "accounts", "import", str(roster)],
        env={**os.environ, "KPROV_RATE_LIMITS": "off"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert len(MappingJournal(state_dir / "mapping.csv").load().account_of) == 3000
