"""The run ledger as a district sees it: several nights, `kprov history`, notifications,
metrics, a kill -9, a revoked secret on a quiet night, and a ledger that cannot be written."""

from __future__ import annotations

import csv
import getpass
import hashlib
import json
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kprov.errors import StorageError
from kprov.state.ledger import Ledger
from tests.child_runs import kill_on, kprov_env
from tests.conftest import Sandbox, start_sandbox
from tests.helpers import run_cli
from tests.prometheus_text import parse
from tests.semesters import Semester, first_night
from tests.webhook_receiver import receiver


def history(*args: str) -> Any:
    result = run_cli("history", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def age_ledger(state_dir: Path, hours: float) -> None:
    """Move every recorded run *hours* into the past (instead of waiting for them)."""
    db = sqlite3.connect(state_dir / "ledger.sqlite3")
    shift = hours * 3600
    db.execute("UPDATE runs SET started_at = started_at - ?, ended_at = ended_at - ?",
               (shift, shift))  # fmt: skip
    db.commit()
    db.close()


def test_several_nights_name_the_run_time_operator_host_and_origin_of_each_change(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path
) -> None:
    metrics = tmp_path / "kprov.prom"
    with receiver() as hook:
        semester = first_night(tmp_path, sandbox_env)
        manifest = str(semester.write())
        # night 2: a-0 leaves, a-1 moves from alg to bio, bio's teacher t-2 becomes t-3
        semester.set_class("alg", ["t-1"], [f"a-{i}" for i in range(2, 20)])
        semester.set_class("bio", ["t-3"], [f"b-{i}" for i in range(20)] + ["a-1"])
        semester.write()
        read_that_night = Path(manifest).read_bytes()
        log = tmp_path / "kprov.log"
        night = run_cli("sync", manifest, "--prune", "--yes", "--log-file", str(log),
                        "--report", str(tmp_path / "night.csv"), "--notify", hook.url,
                        "--metrics-file", str(metrics))  # fmt: skip
        assert night.exit_code == 0, night.output
        assert run_cli("sync", manifest, "--notify", hook.url).exit_code == 0  # quiet night
        assert hook.documents == []  # nothing failed, nothing held: nothing posted
        # night 4: t-1 listed as a learner of the class they teach: that line fails (exit 1)
        semester.set_class("alg", ["t-9"], ["t-1", *(f"a-{i}" for i in range(2, 20))])
        semester.write()
        failing = run_cli("sync", manifest, "--notify", hook.url, "--metrics-file", str(metrics))
        assert failing.exit_code == 1, failing.output
    runs = history()["runs"]
    assert [r["mode"] for r in runs] == ["apply"] * 4
    failed, quiet, moved, first = runs
    for run in runs:
        assert run["os_user"] == getpass.getuser() and run["host"] == socket.gethostname()
        assert not run["unfinished"] and run["profile"] == "default"
    assert (first["exit_code"], moved["exit_code"], failed["exit_code"]) == (0, 0, 1)
    assert quiet["requests"] == 0 and quiet["counts"]["already_registered"] == 41

    a1 = history("--person", "a-1")["events"]
    assert [(e["run_id"], e["event"], e["instance"]) for e in a1] == [
        (first["run_id"], "created", "alg"),
        (first["run_id"], "registered", "alg"),
        (moved["run_id"], "moved", "bio"),
        (moved["run_id"], "moved", "alg"),
    ]
    joined, left = a1[2], a1[3]
    assert joined["origin"] == f"{tmp_path / 'bio.csv'}:22"
    assert joined["time"] == moved["started_at"]
    assert left["reason"] == joined["reason"] == "moved alg → bio"
    assert left["outcome"] == "removed" and joined["instance_name"] == "Class bio"
    assert joined["os_user"] == getpass.getuser() and joined["host"] == socket.gethostname()
    [gone] = [e for e in history("--person", "a-0")["events"] if e["run_id"] == moved["run_id"]]
    assert (gone["event"], gone["reason"]) == ("removed", "no longer in the manifest")
    assert gone["origin"].startswith(f"{manifest}:")  # the class's line, which lists them no more
    teacher = [e["event"] for e in history("--person", "t-2")["events"]]
    assert teacher == ["created", "registered", "instructor changed"]

    shown = history(moved["run_id"][:10])
    digests = {i["path"]: i["sha256"] for i in shown["inputs"]}
    assert digests[manifest] == hashlib.sha256(read_that_night).hexdigest()
    assert set(digests) == {manifest, str(tmp_path / "alg.csv"), str(tmp_path / "bio.csv")}
    assert shown["run"]["argv"][:2] == ["sync", manifest] and "--notify" in shown["run"]["argv"]
    assert hook.url not in json.dumps(shown) and "secret-path" not in json.dumps(shown)
    assert shown["items_total"] == len(shown["items"]) == 6

    [line] = [json.loads(x) for x in log.read_text().splitlines()]
    assert line["run_id"] == moved["run_id"] and line["manifest"] == manifest
    assert (line["os_user"], line["host"], line["profile"]) == (
        getpass.getuser(), socket.gethostname(), "default",
    )  # fmt: skip
    assert line["base_url"] == sandbox_env.base_url
    [removal] = [r for r in line["removed"] if r["external_user_id"] == "a-0"]
    assert removal["file"] == manifest and removal["line"]

    rows = list(csv.DictReader((tmp_path / "night.csv").open()))
    assert {r["run_id"] for r in rows} == {moved["run_id"]}
    assert {r["operator"] for r in rows} == {f"{getpass.getuser()}@{socket.gethostname()}"}
    assert {(r["profile"], r["manifest"]) for r in rows} == {("default", manifest)}
    assert any(r["instance_name"] == "Class bio" and r["change"] == "moved" for r in rows)

    [document] = hook.documents  # the failing night, once
    assert document["run_id"] == failed["run_id"] and document["exit_code"] == 1
    assert "t-1" in document["text"] and document["failures"]
    assert "sandbox-secret" not in json.dumps(document)
    samples = parse(metrics.read_text())[0]
    assert samples["kprov_last_run_exit_code"][0][1] == 1
    assert samples["kprov_last_success_timestamp_seconds"][0][0]["profile"] == "default"
    assert stat.S_IMODE(metrics.stat().st_mode) == 0o644  # node_exporter reads it

    plain = run_cli("history")
    lines = plain.stdout.splitlines()
    assert plain.exit_code == 0 and len(lines) == 5  # the header line, then a run a line
    assert lines[0] == "when\trun\twho\tcommand\tcounts\tend"
    assert "exit 1 (some items failed" in plain.stdout


@pytest.mark.slow
def test_a_run_killed_with_kill_9_shows_as_unfinished_and_its_rerun_as_done(
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = start_sandbox(latency_ms=2, strict_learner_permissions=True)
    try:
        semester = Semester(tmp_path)
        semester.set_class("alg", ["t-1"], [f"a-{i}" for i in range(30)])
        command = [sys.executable, "-m", "kprov", "sync", str(semester.write())]
        env = kprov_env(box, isolated_env)
        holder: dict[str, Any] = {}
        kill_on(box, "create_registration", 8, holder)
        holder["process"] = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert holder["process"].wait(60) == -9
        box.store.__dict__.pop("create_registration", None)
        for key in ("KPROV_BASE_URL", "KPROV_API_KEY", "KPROV_API_SECRET"):
            monkeypatch.setenv(key, env[key])
        [killed] = history()["runs"]
        assert killed["unfinished"] and killed["exit_code"] is None
        assert "unfinished" in run_cli("history").stdout
        items = history(killed["run_id"])["items"]
        assert len(items) == 63 and any(i["outcome"] is None for i in items)
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        assert rerun.returncode == 0, rerun.stderr
        done, again = history()["runs"]
        assert done["exit_code"] == 0 and again["run_id"] == killed["run_id"]
        listed, alone = run_cli("history").stdout, run_cli("history", done["run_id"]).stdout
        kept = {k: n for k, n in done["counts"].items() if k.startswith("already_")}
        assert kept and f"unchanged {sum(kept.values())}" in listed  # the list sums them
        assert all(f"{k.replace('_', ' ')} {n}" in alone for k, n in kept.items())  # one: each
        assert "unchanged" not in alone
        # the rerun found the killed run's accounts and registrations already made (counts,
        # no items): each person's story goes on with what the journals record of them
        journal = isolated_env / "state" / "mapping.csv"
        mapping = dict(line.split(",")[:2] for line in journal.open())
        unrecorded = [i for i in items if i["outcome"] is None and i["action"] != "register"]
        assert unrecorded  # outcomes go in groups: none of the accounts had one yet
        for item in unrecorded[:3]:
            events = history("--person", item["person"])["events"]
            where = [e["event"] for e in events].index("unfinished")
            told = events[where + 1]
            assert told["event"] == "in the mapping" and told["recorded_by"] == "journal"
            journal_words = {"in the mapping", "in the registry"}
            assert all((e["recorded_by"] == "journal") == (e["event"] in journal_words)
                       for e in events)  # fmt: skip
            assert told["account_id"] == mapping[item["person"]]
            assert told["origin"].startswith("mapping.csv:") and told["run_id"] == killed["run_id"]
            shown = run_cli("history", "--person", item["person"]).stdout
            assert "in the mapping" in shown and "ended before recording its outcome" in shown
        registered_then = [i for i in items if i["action"] == "register" and i["outcome"] is None]
        told = [
            e
            for i in registered_then
            for e in history("--person", i["person"])["events"]
            if e["event"] == "in the registry"
        ]
        assert 1 <= len(told) < len(registered_then)  # those the kill let through, only
        assert all(e["registration_id"] for e in told)
        assert all(e["origin"].startswith("registrations.csv:") for e in told)
    finally:
        box.server.stop()


def test_a_revoked_secret_fails_a_quiet_night_once_auth_check_hours_passed(
    sandbox_env: Sandbox, tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = str(first_night(tmp_path, sandbox_env).write())
    tokens = lambda: sandbox_env.requests().get("POST /oauth/token", 0)  # noqa: E731
    monkeypatch.setenv("KPROV_API_SECRET", "revoked-secret")
    before = sandbox_env.requests()
    assert run_cli("sync", manifest).exit_code == 0  # last success an instant ago: no check
    assert sandbox_env.requests() == before
    age_ledger(state_dir, 21)
    asked = tokens()
    night = run_cli("sync", manifest)
    assert night.exit_code == 3, night.output
    assert tokens() == asked + 1  # one token request, nothing else
    assert "checked the credential" in night.stderr and "revoked-secret" not in night.output
    assert history()["runs"][0]["exit_code"] == 3
    monkeypatch.setenv("KPROV_API_SECRET", sandbox_env.env()["KPROV_API_SECRET"])
    fixed = run_cli("sync", manifest)  # the refused check is no success: checked again
    assert fixed.exit_code == 0 and tokens() == asked + 2
    assert run_cli("sync", manifest).exit_code == 0 and tokens() == asked + 2  # next: quiet


def test_a_ledger_that_cannot_record_stops_a_run_before_it_sends_but_never_a_plan(
    sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], ["a-1", "a-2"])
    manifest = str(semester.write())

    def full(*_args: object, **_kwargs: object) -> None:
        raise StorageError("no space left to write the run ledger (test)", hint="Free space.")

    with monkeypatch.context() as patch:
        patch.setattr(Ledger, "begin_run", full)
        refused = run_cli("sync", manifest)
        assert refused.exit_code == 9 and "no space left" in refused.stderr
        assert sandbox_env.write_requests() == 0
        plan = run_cli("sync", manifest, "--plan")
        assert plan.exit_code == 0 and "could not record" not in plan.stderr
        patch.setattr(Ledger, "record_run", full)
        looked = run_cli("sync", manifest, "--plan")
        assert looked.exit_code == 0 and "ledger could not record" in looked.stderr
    with monkeypatch.context() as patch:  # the disk fills once the items are recorded
        patch.setattr(Ledger, "set_outcomes", full)
        patch.setattr(Ledger, "end_run", full)
        done = run_cli("sync", manifest)
    assert done.exit_code == 9, done.output
    assert "mapping and the journals are complete" in done.stderr
    assert sandbox_env.enrolments() == semester.expected()
    assert run_cli("sync", manifest).exit_code == 0
    runs = history()["runs"]
    assert [(r["mode"], r["unfinished"], r["exit_code"]) for r in runs] == [
        ("apply", False, 0), ("apply", True, None), ("plan", False, 0), ("apply", False, 9),
    ]  # fmt: skip


def test_one_off_commands_are_recorded_and_the_ledger_exports_as_json_lines(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], [f"a-{i}" for i in range(6)])
    semester.set_class("bio", ["t-2"], [f"b-{i}" for i in range(4)])
    assert run_cli("sync", str(semester.write())).exit_code == 0
    made = run_cli("instances", "create", "--graph-id", "g", "--name", "Chem", "--key", "chem")
    assert made.exit_code == 0, made.output
    assert run_cli("accounts", "disable", "--external", "a-5", "--yes").exit_code == 0
    assert run_cli("instances", "delete", "bio", "--yes").exit_code == 0
    bad = run_cli("sync", str(tmp_path / "missing.yaml"))
    assert bad.exit_code == 2
    runs = history()["runs"]
    assert [(r["command"], r["exit_code"]) for r in runs] == [
        ("sync", 2), ("instances delete", 0), ("accounts disable", 0),
        ("instances create", 0), ("sync", 0),
    ]  # fmt: skip
    assert runs[0]["error"]["type"] == "InputError" and runs[1]["counts"]["removed"] == 5
    events = [e["event"] for e in history("--person", "a-5")["events"]]
    assert events == ["created", "registered", "disabled"]
    events = [e["event"] for e in history("--person", "b-3")["events"]]
    assert events == ["created", "registered", "removed"]  # its class was deleted

    exported = run_cli("history", "export")
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    kinds = [r["record"] for r in records]
    assert kinds.count("run") == 5 and "item" in kinds and "input" in kinds
    assert run_cli("history", "export", "--json").exit_code == 2
    assert history("--since", "1h")["runs"] and not history("--since", "2999-01-01")["runs"]
    assert run_cli("history", "--since", "yesterday").exit_code == 2
    assert run_cli("history", "kprov-nosuchrun").exit_code == 2
