"""kill -9 at chosen moments of an import, then a rerun: the mapping ends complete and exact."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kprov.state.mapping import MappingJournal
from tests.child_runs import kill_on, kprov_env
from tests.conftest import Sandbox, start_sandbox, write_roster

USERS = 600
SEED = 20261123


def run_import(roster: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kprov", "accounts", "import", str(roster), "--concurrency", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


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


@pytest.mark.slow
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
            kill_on(box, "batch", int(when), holder)
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
        box.store.__dict__.pop("batch", None)  # back to the class's method
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


def kill_on_registration_then_rerun(
    box: Sandbox, command: list[str], env: dict[str, str], kill_at: int
) -> subprocess.CompletedProcess[str]:
    """Run *command*, SIGKILL it right after registration N was applied, then rerun it."""
    holder: dict[str, Any] = {}
    kill_on(box, "create_registration", kill_at, holder)
    holder["process"] = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    holder["process"].wait(60)
    assert holder["process"].returncode == -signal.SIGKILL
    box.store.__dict__.pop("create_registration", None)
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    return rerun


def registration_pairs(box: Sandbox) -> list[tuple[str, str]]:
    with box.store.lock:
        return [
            (r["account_id"], r["learning_instance_id"]) for r in box.store.registrations.values()
        ]


def register_roster(path: Path, instances: int, learners: int) -> Path:
    rows = ["external_user_id,role,instance"]
    for c in range(instances):
        rows.append(f"t{c},instructor,k{c}")
        rows.extend(f"l{c}-{i},learner,k{c}" for i in range(learners))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", sorted(random.Random(SEED).sample(range(5, 120), 2)))
def test_kill_9_during_registration_then_rerun_registers_each_exactly_once(
    tmp_path: Path, isolated_env: Path, kill_at: int
) -> None:
    box = start_sandbox(latency_ms=5, strict_learner_permissions=True)
    try:
        roster = register_roster(tmp_path / "r.csv", instances=4, learners=30)
        env = kprov_env(box, isolated_env)
        command = [sys.executable, "-m", "kprov", "register", str(roster), "--graph-id", "g"]
        kill_on_registration_then_rerun(box, command, env, kill_at)
        pairs = registration_pairs(box)
        assert len(pairs) == len(set(pairs)) == 4 * 31
    finally:
        box.server.stop()


@pytest.mark.slow
def test_kill_9_during_sync_then_rerun_converges_exactly(
    tmp_path: Path, isolated_env: Path
) -> None:
    box = start_sandbox(latency_ms=5, strict_learner_permissions=True)
    try:
        lines = ["defaults: {graph_id: g}", "instances:"]
        for c in range(3):
            roster = tmp_path / f"c{c}.csv"
            roster.write_text("external_user_id\n" + "".join(f"y{c}-{i}\n" for i in range(40)))
            lines += [
                f"  - key: c{c}",
                f"    name: C{c}",
                "    people:",
                f"      - instructors: [yt{c}]",
                f"      - roster: {roster.name}",
            ]
        manifest = tmp_path / "semester.yaml"
        manifest.write_text("\n".join(lines) + "\n")
        env = kprov_env(box, isolated_env)
        command = [sys.executable, "-m", "kprov", "sync", str(manifest)]
        kill_at = random.Random(SEED + 1).randrange(10, 100)
        kill_on_registration_then_rerun(box, command, env, kill_at)
        quiet = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
        # the next night reads the journals through the snapshots the last one wrote
        state = isolated_env / "state"
        assert {p.name for p in state.glob("*.idx")} == {"mapping.csv.idx", "registrations.csv.idx"}
        debug = [sys.executable, "-m", "kprov", "--debug", *command[3:]]
        night = subprocess.run(debug, env=env, capture_output=True, text=True, timeout=120)
        assert night.returncode == 0 and night.stdout == ""
        for name in ("mapping.csv", "registrations.csv"):
            assert f"{name}.idx used" in night.stderr
        # a snapshot cut short (a full disk, a copy) is ignored, silently
        torn = state / "registrations.csv.idx"
        torn.write_bytes(torn.read_bytes()[:1000])
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
        pairs = registration_pairs(box)
        with box.store.lock:
            instances = len(box.store.instances)
        assert len(pairs) == len(set(pairs)) == 3 * 41
        assert instances == 3
    finally:
        box.server.stop()


@pytest.mark.parametrize("kill_at", [3, 14])  # in the first group of items, in a later one
def test_kill_9_while_items_are_written_ahead_leaves_every_sent_item_in_the_ledger(
    tmp_path: Path, isolated_env: Path, kill_at: int
) -> None:
    """The ledger's items are written ahead of the sender (256 before the first request, the
    rest in groups while the run goes on): whatever reached the server is in a committed
    transaction, and the run reads as unfinished."""
    from kprov.state import ledger_queries as queries
    from kprov.state.ledger import Ledger

    box = start_sandbox(latency_ms=2)
    try:
        ids = [f"w{i:05d}" for i in range(1_500)]  # 30 batches, three groups of items
        roster = write_roster(tmp_path / "r.csv", ids)
        holder: dict[str, Any] = {}
        kill_on(box, "batch", kill_at, holder)
        process = run_import(roster, kprov_env(box, isolated_env))
        holder["process"] = process
        process.wait(60)
        assert process.returncode == -signal.SIGKILL
        with box.store.lock:
            on_server = {
                a["external_user_id"]
                for a in box.store.accounts.values()
                if a["id"] != box.store.admin_id
            }
        assert len(on_server) >= kill_at * 50
        ledger = Ledger.open(isolated_env / "state", create=False)
        assert ledger is not None
        [run] = queries.recent_runs(ledger)
        assert run["ended_at"] is None  # unfinished
        recorded = {i["person"] for i in queries.run_items(ledger, run["run_id"])}
        assert on_server <= recorded
        ledger.close()
    finally:
        box.server.stop()
