"""kill -9 at chosen moments of an import, then a rerun: the mapping ends complete and exact."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kprov.state.mapping import MappingJournal
from tests.conftest import Sandbox, start_sandbox, write_roster

USERS = 600
SEED = 20261123


def kprov_env(box: Sandbox, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPROV_")}
    env.update(box.env())
    env["KPROV_CONFIG"] = str(home / "config.yaml")
    env["KPROV_STATE_DIR"] = str(home / "state")
    env["KPROV_RETRY_BASE_DELAY"] = "0.01"
    env["KPROV_RATE_LIMITS"] = "off"
    return env


def run_import(roster: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kprov", "accounts", "import", str(roster), "--concurrency", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_on_batch(box: Sandbox, batch_number: int, holder: dict[str, Any]) -> None:
    """SIGKILL the client after the server applied batch N but before it answers."""
    original = box.store.batch
    count = {"n": 0}
    lock = threading.Lock()

    def batch(who: Any, body: Any) -> Any:
        answer = original(who, body)
        with lock:
            count["n"] += 1
            if count["n"] == batch_number and holder.get("process"):
                os.kill(holder["process"].pid, signal.SIGKILL)
        return answer

    box.store.batch = batch  # type: ignore[method-assign]


def assert_exact(box: Sandbox, home: Path, roster_ids: list[str]) -> None:
    mapping = MappingJournal(home / "state" / "mapping.csv").load().account_of
    with box.store.lock:
        server = {
            a["external_user_id"]: a["id"]
            for a in box.store.accounts.values()
            if a["id"] != box.store.admin_id
        }
    assert set(mapping) == set(roster_ids)
    assert mapping == server


def crash_points() -> list[tuple[str, float]]:
    rng = random.Random(SEED)
    batches = USERS // 50
    return [("batch", float(n)) for n in sorted(rng.sample(range(1, batches + 1), 3))] + [
        ("timer", round(rng.uniform(0.0, 0.05), 3))
    ]


@pytest.mark.parametrize(("mode", "when"), crash_points())
def test_kill_9_then_rerun_leaves_a_complete_and_exact_mapping(
    tmp_path: Path, isolated_env: Path, mode: str, when: float
) -> None:
    box = start_sandbox(latency_ms=10)
    try:
        home = isolated_env
        ids = [f"c{i:05d}" for i in range(USERS)]
        roster = write_roster(tmp_path / "r.csv", ids)
        env = kprov_env(box, home)
        holder: dict[str, Any] = {}
        if mode == "batch":
            kill_on_batch(box, int(when), holder)
        process = run_import(roster, env)
        holder["process"] = process
        if mode == "timer":  # a moment after the first batch reached the server
            deadline = time.monotonic() + 30
            while not box.requests().get("POST /batch") and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(when)
            process.kill()
        process.wait(60)
        assert process.returncode == -signal.SIGKILL, "the kill must land mid-import"
        killed_with = len(MappingJournal(home / "state" / "mapping.csv").load())
        assert killed_with < USERS
        box.store.batch = type(box.store).batch.__get__(box.store)  # type: ignore[method-assign]
        rerun = subprocess.run(
            [sys.executable, "-m", "kprov", "accounts", "import", str(roster)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert rerun.returncode == 0, rerun.stderr
        assert_exact(box, home, ids)
    finally:
        box.server.stop()
