"""`kprov instances`, `register`, `unregister`, `registrations` end to end over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kprov.sandbox.faults import FaultRates
from tests.conftest import Sandbox, start_sandbox
from tests.end_state import roster_enrolments
from tests.helpers import run_cli
from tests.semesters import semester_roster


def use(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for key, value in box.env().items():
        monkeypatch.setenv(key, value)
    return box


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strict", "learners"), [(True, 12), (False, 5)], ids=["strict", "lenient"]
)
def test_forty_classes_from_one_roster_then_a_rerun_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strict: bool, learners: int
) -> None:
    """The whole semester under the strict reading (learners by their instructor's token);
    the lenient one only changes whose token may register learners, so a smaller roster."""
    box = use(start_sandbox(strict_learner_permissions=strict), monkeypatch)
    try:
        roster = semester_roster(tmp_path / "semester.csv", instances=40, learners=learners)
        lines = 40 * (learners + 1)
        result = run_cli(
            "register", str(roster), "--graph-id", "gref-algebra", "--concurrency", "8", "--json"
        )
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)["counts"]
        assert summary == {"created": lines, "instance_created": 40, "registered": lines}
        assert box.enrolments() == roster_enrolments(roster)
        posts = box.requests()["POST /registrations"]
        assert posts == lines
        again = run_cli("register", str(roster), "--graph-id", "gref-algebra", "--json")
        assert json.loads(again.stdout)["counts"] == {"already_registered": lines}
        assert box.requests()["POST /registrations"] == posts
        batches = -(-lines // 50)
        assert box.write_requests() == posts + batches + 40  # batches, instances: none again
    finally:
        box.server.stop()


def test_learners_are_registered_with_the_instructors_token(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    roster = semester_roster(tmp_path / "r.csv", instances=2, learners=3)
    assert run_cli("register", str(roster), "--graph-id", "g").exit_code == 0
    with sandbox_env.store.lock:
        scopes = sandbox_env.store.requests  # token requests: admin + one per instructor
        assert scopes["POST /oauth/token"] == 3


@pytest.mark.slow
def test_register_under_faults_ends_exact_with_no_registration_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = use(
        start_sandbox(
            faults=FaultRates(unavailable=0.05, error_after=0.03, drop=0.02),
            seed=7,
            strict_learner_permissions=True,
        ),
        monkeypatch,
    )
    try:
        roster = semester_roster(tmp_path / "semester.csv", instances=10, learners=30)
        first = run_cli("register", str(roster), "--graph-id", "g", "--concurrency", "6")
        if first.exit_code != 0:
            assert first.exit_code in (1, 4), first.output
            assert run_cli("register", str(roster), "--graph-id", "g").exit_code == 0
        assert box.enrolments() == roster_enrolments(roster)
        with box.store.lock:
            pairs = [
                (r["account_id"], r["learning_instance_id"])
                for r in box.store.registrations.values()
            ]
        assert len(pairs) == len(set(pairs)) == 310
    finally:
        box.server.stop()


def test_a_class_without_instructor_is_caught_at_plan_time_and_the_rest_proceeds(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    """Even where the partner admin could register learners, a class nobody teaches is
    refused before anything is sent for it: no instance, no account made only for it."""
    roster = tmp_path / "r.csv"
    roster.write_text(
        "external_user_id,role,instance\ns-1,student,lonely\ns-2,student,taught\n"
        "t-1,teacher,taught\n",
        encoding="utf-8",
    )
    result = run_cli("register", str(roster), "--graph-id", "g")
    assert result.exit_code == 1
    assert f"{roster}:2" in result.stderr and "add its teacher to the roster" in result.stderr
    assert sandbox_env.enrolments() == {
        ("s-2", "taught", "learner"),
        ("t-1", "taught", "instructor"),
    }
    with sandbox_env.store.lock:
        names = {i["name"] for i in sandbox_env.store.instances.values()}
        accounts = {a["external_user_id"] for a in sandbox_env.store.accounts.values()}
    assert "lonely" not in names and "s-1" not in accounts


def test_unknown_instance_exits_2_and_sends_nothing(sandbox_env: Sandbox, tmp_path: Path) -> None:
    roster = semester_roster(tmp_path / "r.csv", instances=1, learners=1)
    result = run_cli("register", str(roster))
    assert result.exit_code == 2
    assert "'class-000'" in result.stderr and "--graph-id" in result.stderr
    assert sandbox_env.requests() == {}


def test_more_than_500_in_one_instance_is_a_cannot_for_that_class_only(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    roster = semester_roster(tmp_path / "r.csv", instances=1, learners=501)
    result = run_cli("register", str(roster), "--graph-id", "g", "--plan", "--json")
    items = json.loads(result.stdout)["items"]
    assert {i["action"] for i in items} == {"block"} and len(items) == 503  # 502 + instance
    assert "allows 500" in items[0]["reason"]
    assert sandbox_env.requests() == {}


def test_instances_create_is_idempotent_by_key_and_refuses_emails(sandbox_env: Sandbox) -> None:
    first = json.loads(
        run_cli(
            "instances", "create", "--graph-id", "g", "--name", "Alg I", "--key", "alg", "--json"
        ).stdout
    )
    second = json.loads(
        run_cli(
            "instances", "create", "--graph-id", "g", "--name", "Alg I", "--key", "alg", "--json"
        ).stdout
    )
    assert first["outcome"] == "created" and second["outcome"] == "already_exists"
    assert first["instance_id"] == second["instance_id"]
    assert sandbox_env.requests()["POST /learning-instances"] == 1
    bad = run_cli("instances", "create", "--graph-id", "g", "--name", "Ms Lee lee@school.org")
    assert bad.exit_code == 2 and "email" in bad.stderr
    assert sandbox_env.requests()["POST /learning-instances"] == 1
    listed = json.loads(run_cli("instances", "list", "--json").stdout)["instances"]
    assert [i["key"] for i in listed] == ["alg"]
    got = json.loads(run_cli("instances", "get", "alg", "--json").stdout)
    assert got["name"] == "Alg I"


@pytest.mark.parametrize(
    "command",
    [
        ("registrations", "list", "--instance", "alg1"),
        ("instances", "get", "alg1"),
        ("instances", "delete", "alg1", "--yes"),
    ],
)
def test_a_mistyped_instance_key_is_named_unknown_not_an_empty_class_or_a_bad_id(
    sandbox_env: Sandbox, command: tuple[str, ...]
) -> None:
    """`alg1` for `alg`: not "0 registrations" (exit 0), nor "not a UUID ... state files"."""
    assert (
        run_cli("instances", "create", "--graph-id", "g", "--name", "A", "--key", "alg").exit_code
        == 0
    )
    requests = sum(sandbox_env.requests().values())
    result = run_cli(*command)
    assert result.exit_code == 2, result.output
    assert "no learning instance with the key 'alg1'" in result.stderr
    assert "instances list" in result.stderr and "state files" not in result.stderr
    assert sum(sandbox_env.requests().values()) == requests


def test_inline_register_then_unregister_exactly_the_named_ones(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    assert (
        run_cli("instances", "create", "--graph-id", "g", "--name", "Bio", "--key", "bio").exit_code
        == 0
    )
    result = run_cli(
        "register",
        "--instance",
        "bio",
        "--instructor",
        "t-1",
        "--learner",
        "s-1",
        "--learner",
        "s-2",
        "--learner",
        "s-3",
    )
    assert result.exit_code == 0, result.output
    refused = run_cli(
        "unregister", "--instance", "bio", "s-1", "s-2", "--max-removals", "1", "--yes"
    )
    assert refused.exit_code == 6
    assert len(sandbox_env.enrolments()) == 4
    done = run_cli("unregister", "--instance", "bio", "s-1", "s-2", "--yes", "--json")
    assert done.exit_code == 0, done.output
    removed = [i for i in json.loads(done.stdout)["items"] if i["outcome"] == "removed"]
    assert sorted(i["external_user_id"] for i in removed) == ["s-1", "s-2"]
    assert sandbox_env.enrolments() == {
        ("t-1", "Bio", "instructor"),
        ("s-3", "Bio", "learner"),
    }
    listed = json.loads(run_cli("registrations", "list", "--instance", "bio", "--json").stdout)
    assert {r["external_user_id"] for r in listed["registrations"]} == {"t-1", "s-3"}
    registration_id = listed["registrations"][0]["registration_id"]
    shown = json.loads(run_cli("registrations", "get", registration_id, "--json").stdout)
    assert shown["id"] == registration_id
    assert run_cli("unregister", "--instance", "bio", "s-1", "--yes").exit_code == 1  # gone


def test_deleting_an_instance_invalidates_its_registrations(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    run_cli("instances", "create", "--graph-id", "g", "--name", "Chem", "--key", "chem")
    run_cli("register", "--instance", "chem", "--instructor", "t-9", "--learner", "s-9")
    assert run_cli("instances", "delete", "chem").exit_code == 2  # no terminal, no --yes
    assert run_cli("instances", "delete", "chem", "--yes").exit_code == 0
    assert sandbox_env.enrolments() == set()
    assert json.loads(run_cli("instances", "list", "--json").stdout)["instances"] == []


def test_an_instance_key_too_long_for_the_api_is_an_input_error(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    roster = tmp_path / "r.csv"
    roster.write_text("external_user_id,instance\ns-1," + "k" * 300 + "\n", encoding="utf-8")
    result = run_cli("register", str(roster), "--graph-id", "g")
    assert result.exit_code == 2
    assert f"{roster}:2: instance 'kkkk" in result.stderr and "allows 256" in result.stderr
    assert sandbox_env.requests() == {}


def test_test_accounts_flag_marks_account_creation_only(
    sandbox_env: Sandbox, tmp_path: Path
) -> None:
    roster = semester_roster(tmp_path / "r.csv", instances=1, learners=2)
    result = run_cli("register", str(roster), "--graph-id", "g", "--test-accounts")
    assert result.exit_code == 0, result.output
    requests = sandbox_env.requests()
    assert requests["POST /batch marked X-Knewton-Test"] == requests["POST /batch"]
    assert "POST /registrations marked X-Knewton-Test" not in requests


def test_when_the_api_goes_down_every_line_still_gets_a_fate(
    sandbox_env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roster = semester_roster(tmp_path / "r.csv", instances=2, learners=2)
    assert run_cli("register", str(roster), "--graph-id", "g").exit_code == 0
    grown = semester_roster(tmp_path / "r2.csv", instances=2, learners=4)
    sandbox_env.server.stop()  # the API is gone for the second run
    monkeypatch.setenv("KPROV_RETRY_MAX_ATTEMPTS", "1")
    result = run_cli("register", str(grown), "--json")
    assert result.exit_code == 4
    summary = json.loads(result.stdout)
    # 2 instructors + 8 learners, each accounted for: 6 already there, 4 new learners whose
    # accounts (4 more items) could not be created either
    assert summary["counts"] == {"already_registered": 6, "not_attempted": 8}
    lines = [i for i in summary["items"] if i["action"] == "register"]
    assert sorted(i["external_user_id"] for i in lines) == sorted(
        f"s-{c:03d}-{n:03d}" for c in range(2) for n in (2, 3)
    )


def test_ids_given_on_the_command_line_are_hashed_and_checked_like_roster_lines(
    sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KPROV_ID_KEY", "district-key-0123456789")
    run_cli("instances", "create", "--graph-id", "g", "--name", "Hashed", "--key", "h")
    done = run_cli(
        "register", "--instance", "h", "--hash-ids", "--instructor", "sis-t1",
        "--learner", "sis-777",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    with sandbox_env.store.lock:
        sent = {a["external_user_id"] for a in sandbox_env.store.accounts.values()}
    assert not {"sis-t1", "sis-777"} & sent  # the raw SIS ids never reached the API
    assert all(len(ext) == 64 for ext in sent - {"partner-admin"})
    twice = run_cli("register", "--instance", "h", "--instructor", "x-1", "--learner", "x-1")
    assert twice.exit_code == 2 and "appears twice" in twice.stderr
    pii = run_cli("unregister", "--instance", "h", "jane@school.org", "--yes")
    assert pii.exit_code == 2 and "email address" in pii.stderr
