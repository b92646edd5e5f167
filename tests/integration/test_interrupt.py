"""Ctrl-C stops at once: a real SIGINT to a real, paced `kprov accounts import`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kprov.state.mapping import MappingJournal
from tests.conftest import start_sandbox, write_roster
from tests.end_state import server_accounts

PEOPLE = 1200  # 24 batches: far more than the six the quota lets go at once
STOP_TIMEOUT = 8  # seconds from SIGINT to exit; the quota holds a seventh batch for ~a minute


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.slow
def test_sigint_stops_sending_records_what_was_answered_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    box = start_sandbox(latency_ms=150)  # answers take a while: some are in flight at the signal
    try:
        for key, value in box.env().items():
            monkeypatch.setenv(key, value)
        roster = write_roster(tmp_path / "r.csv", [f"u{i:05d}" for i in range(PEOPLE)])
        # 6 batches a minute: the first six go at once, then the run waits on the quota
        env = {**os.environ, "KPROV_RATE_LIMITS": "POST /batch=6"}
        process = subprocess.Popen(
            [sys.executable, "-m", "kprov", "accounts", "import", str(roster), "-c", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: box.requests().get("POST /batch", 0) >= 2)
            process.send_signal(signal.SIGINT)
            at_signal = box.requests()["POST /batch"]
            # the bound: the quota holds the next batch for most of a minute, so a run that
            # waited it out instead of stopping fails here (and sends more, counted below)
            _out, err = process.communicate(timeout=STOP_TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 130, err
        assert box.requests()["POST /batch"] <= at_signal + 2  # at most what was in flight
        assert "stopping" in err and "Traceback" not in err
        assert "error: interrupted: nothing more was sent" in err  # not "before sending": it did
        mapping = MappingJournal(state_dir / "mapping.csv").load().account_of
        assert mapping == server_accounts(box)  # every answer received was recorded
        assert 0 < len(mapping) < PEOPLE
        rerun = subprocess.run(
            [sys.executable, "-m", "kprov", "accounts", "import", str(roster)],
            env={**os.environ, "KPROV_RATE_LIMITS": "off"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rerun.returncode == 0, rerun.stderr
        assert MappingJournal(state_dir / "mapping.csv").load().account_of == server_accounts(box)
        assert len(server_accounts(box)) == PEOPLE
    finally:
        box.server.stop()
