"""Issue 20, "How this will be checked": a district synced for several nights from exports
that change, with the real CLI against the sandbox over HTTP on 127.0.0.1.

- re-keyed ids (leading zeros dropped): held, nothing created or removed, dismissable;
- a new school joining past the creation limit: held, approved exactly once (the server
  then matches the export), refused a second time;
- `--prune --grace 2`: missing one night, not removed; two nights, removed; back, never.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Sandbox
from tests.helpers import run_cli
from tests.semesters import Semester


def cli_json(*args: str, code: int = 0) -> Any:
    result = run_cli(*args, "--json")
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def accounts(box: Sandbox) -> set[str]:
    with box.store.lock:
        return {a["external_user_id"] for a in box.store.accounts.values()}


def test_a_rekeyed_export_is_held_whole_and_the_hold_can_be_dismissed(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = Semester(tmp_path)
    student_numbers = [f"{100_000 + n * 40_000:09d}" for n in range(22)]  # 9 digits, 000...
    semester.set_class("alg", ["t-1"], student_numbers)
    manifest = str(semester.write())
    assert run_cli("sync", manifest).exit_code == 0
    writes, before = sandbox_env.write_requests(), sandbox_env.enrolments()

    # night 2: the export went through a spreadsheet, which dropped the leading zeros
    semester.set_class("alg", ["t-1"], [str(int(n)) for n in student_numbers])
    semester.write()
    plan = cli_json("sync", manifest, "--prune", "--plan")
    assert plan["counts"]["withheld"] == 66 and plan["exit_code"] == 0  # 22 new, 22 gone
    night = cli_json("sync", manifest, "--prune", "--yes", code=6)
    assert sandbox_env.write_requests() == writes and sandbox_env.enrolments() == before
    assert night["counts"] == {"withheld": 66, "already_registered": 1}
    [trip] = night["guards"]
    assert trip["guard"] == "source" and trip["items"] == 66
    assert (
        "last applied export: 22 ids, 9 digits with leading zeros; this one: 22 ids, "
        "6 digits, no leading zeros; 0 seen before; their lengths changed, leading zeros "
        "dropped: re-keyed?"
    ) in trip["why"]
    hold = night["hold_id"]
    assert night["approve"] == f"kprov holds approve {hold}"

    [listed] = cli_json("holds", "list")["holds"]
    assert (listed["hold_id"], listed["state"], listed["items"]) == (hold, "open", 66)
    shown = cli_json("holds", "show", hold[:9])
    [source] = shown["sources"]
    assert source["before"] == "22 ids, 9 digits with leading zeros"
    assert source["held"] == "22 ids, 6 digits, no leading zeros"
    assert shown["items_total"] == 66 and shown["previous_run"]["exit_code"] == 0
    assert {i["action"] for i in shown["items"]} == {"create_account", "register", "unregister"}

    refused = run_cli("holds", "dismiss", hold)  # no terminal, no --yes: nothing decided
    assert refused.exit_code == 2 and "refusing without confirmation" in refused.stderr
    assert cli_json("holds", "dismiss", hold, "--yes")["state"] == "dismissed"
    again = run_cli("holds", "approve", hold, "--yes")
    assert again.exit_code == 2 and "kprov holds list" in again.stderr
    unknown = run_cli("holds", "approve", "hold-000000000000", "--yes")
    assert unknown.exit_code == 2 and "kprov holds list" in unknown.stderr
    assert cli_json("holds", "list")["holds"] == []
    # dismissing accepts nothing: the next night's export is judged (and held) again
    assert run_cli("sync", manifest, "--prune", "--yes").exit_code == 6
    assert sandbox_env.write_requests() == writes


def test_a_new_school_past_the_creation_limit_is_held_then_approved_exactly_once(
    sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [
        *(f"d-{i}" for i in range(100)),
        "t-1",
        "t-2",
        *(f"{c}-{i}" for c in "ab" for i in range(5)),
    ]
    district = tmp_path / "district.csv"  # a first import: accounts for everyone (no limit)
    district.write_text("external_user_id\n" + "".join(f"{x}\n" for x in people))
    assert run_cli("accounts", "import", str(district)).exit_code == 0
    semester = Semester(tmp_path)
    semester.set_class("alg", ["t-1"], [f"a-{i}" for i in range(5)])
    semester.set_class("bio", ["t-2"], [f"b-{i}" for i in range(5)])
    manifest = str(semester.write())
    assert run_cli("sync", manifest).exit_code == 0

    # night 2: a new school's class (13 new people, past 10 % of the 112 mapped), and a move
    semester.set_class("new", ["t-9"], [f"n-{i}" for i in range(12)])
    semester.set_class("alg", ["t-1"], [f"a-{i}" for i in range(5)] + ["b-0"])
    semester.set_class("bio", ["t-2"], [f"b-{i}" for i in range(1, 5)])
    semester.write()
    night = cli_json("sync", manifest, "--prune", "--yes", "--max-removals", "1", code=6)
    [trip] = night["guards"]
    assert trip["guard"] == "creations" and trip["items"] == 26  # 13 accounts, 13 registrations
    assert "13 new accounts exceed the creation limit of 11 (10% of the 112" in trip["why"]
    assert night["counts"]["removed"] == night["counts"]["registered"] == 1  # the move went
    assert not {f"n-{i}" for i in range(12)} & accounts(sandbox_env)
    hold = night["hold_id"]
    assert cli_json("history", night["run_id"])["hold"]["state"] == "open"

    monkeypatch.setenv("KPROV_BASE_URL", "http://127.0.0.1:9/v0")  # another API: refused
    elsewhere = run_cli("holds", "approve", hold, "--yes")
    assert elsewhere.exit_code == 8 and "nothing was sent" in elsewhere.stderr
    monkeypatch.setenv("KPROV_BASE_URL", sandbox_env.base_url)
    other = run_cli("--profile", "other", "holds", "approve", hold, "--yes")
    assert other.exit_code == 8 and "profile 'default'" in other.stderr
    unconfirmed = run_cli("holds", "approve", hold)  # no terminal, no --yes: refused
    assert unconfirmed.exit_code == 2

    approved = cli_json("holds", "approve", hold, "--yes")
    assert approved["counts"] == {"created": 13, "registered": 13}
    assert sandbox_env.enrolments() == semester.expected()
    twice = run_cli("holds", "approve", hold, "--yes")
    assert twice.exit_code == 2 and "was approved" in twice.stderr
    writes = sandbox_env.write_requests()
    assert run_cli("sync", manifest, "--prune").exit_code == 0
    assert sandbox_env.write_requests() == writes
    [applied] = [r for r in cli_json("history")["runs"] if r["run_id"] == approved["run_id"]]
    assert applied["command"] == "holds approve" and applied["parent"] == night["run_id"]


def test_with_grace_2_one_missing_night_removes_nobody_two_do_and_a_return_resets(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    semester = Semester(tmp_path)
    learners = [f"a-{i}" for i in range(6)]
    semester.set_class("alg", ["t-1"], learners)
    manifest = str(semester.write())
    assert run_cli("sync", manifest).exit_code == 0

    def night(present: list[str]) -> Any:
        semester.set_class("alg", ["t-1"], present)
        semester.write()
        return cli_json("sync", manifest, "--prune", "--grace", "2", "--max-removals", "3")

    semester.set_class("alg", ["t-1"], learners[2:])
    semester.write()
    for _ in range(2):  # plans count nothing
        plan = cli_json("sync", manifest, "--prune", "--grace", "2", "--plan")
        assert plan["counts"]["waiting"] == 2
    [item] = [i for i in plan["items"] if i["external_user_id"] == "a-0"]
    assert "waiting 1 of 2" in item["reason"] and item["outcome"] == "waiting"

    second = night(learners[2:])  # a-0 and a-1 missing: waiting 1 of 2, nobody removed
    assert second["counts"]["waiting"] == 2 and "removed" not in second["counts"]
    third = night([learners[1], *learners[2:]])  # a-1 is back; a-0 missing a second night
    assert third["counts"]["removed"] == 1 and "waiting" not in third["counts"]
    fourth = night(learners[2:])  # a-1 missing again: their count started again
    assert fourth["counts"]["waiting"] == 1 and "removed" not in fourth["counts"]
    enrolled = {e[0] for e in sandbox_env.enrolments()}
    assert "a-0" not in enrolled and "a-1" in enrolled
    events = [e["event"] for e in cli_json("history", "--person", "a-0")["events"]]
    assert events == ["created", "registered", "waiting", "removed"]
