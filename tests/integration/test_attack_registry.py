"""The registry against a class stated by two names over real HTTP: the local record of
every registration, and its id, is the server's after the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kprov.sandbox.hostile import Hostility
from kprov.state.registry import Registry
from tests.conftest import start_sandbox
from tests.helpers import run_cli


def manifest(folder: Path, classes: list[tuple[str, list[str], list[str]]]) -> Path:
    lines = ["defaults:", "  graph_id: g", "instances:"]
    for n, (key, teachers, learners) in enumerate(classes):
        roster = folder / f"c{n}.csv"
        roster.write_text("external_user_id\n" + "".join(f"{x}\n" for x in learners))
        lines += [
            f"  - key: '{key}'", "    name: Class A", "    people:",
            f"      - instructors: [{', '.join(teachers)}]", f"      - roster: {roster.name}",
            "        role: learner",
        ]  # fmt: skip
    path = folder / "semester.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_role_changes_stated_by_a_class_key_and_its_id_keep_every_registration_id(
    tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Night 2 names the class by its key and again by its API id, six learners now teach:
    each role change was planned twice; the second pair's removal ("not found") recorded the
    key removed after the first pair's new registration, whose resend ("already registered
    as instructor") was then recorded without its id. Every id must survive."""
    box = start_sandbox(hostile=Hostility("dialect-409", seed=3), seed=0)
    for key, value in box.env().items():
        monkeypatch.setenv(key, value)
    try:
        learners = [f"s{n}" for n in range(12)]
        first = run_cli("sync", str(manifest(tmp_path, [("alg", ["t1"], learners)])), "--yes")
        assert first.exit_code == 0, first.output
        iid = json.loads(run_cli("instances", "get", "alg", "--json").stdout)["id"]
        both = [(ref, ["t1", *learners[:6]], learners[6:]) for ref in ("alg", iid)]
        second = run_cli(
            "sync", str(manifest(tmp_path, both)), "--prune", "--yes", "--max-removals", "100%",
            "--concurrency", "8",
        )  # fmt: skip
        with box.store.lock:
            people = {a["id"]: a["external_user_id"] for a in box.store.accounts.values()}
            server = {
                (people[r["account_id"]], r["type"], r["id"])
                for r in box.store.registrations.values()
            }
        active = Registry.open(state_dir).registration_index.active.values()
        assert {(r.external_user_id, r.type, r.registration_id) for r in active} == server
        assert sum(kind == "instructor" for _e, kind, _i in server) == 7
        assert second.exit_code == 1  # the lines naming the class a second time: cannot
        assert "the same registration as the line in 'alg'" in second.output
    finally:
        box.server.stop()
