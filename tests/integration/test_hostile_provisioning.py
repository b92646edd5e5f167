"""Whole provisioning runs against a hostile server: nothing false is ever recorded.

The client-level hostile suites pin each answer's reading; these pin what the executor does
with them, end to end over HTTP, asserting the server's state and the local files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kprov.sandbox.hostile import Hostility
from kprov.state.mapping import MappingJournal
from kprov.state.registry import Registry
from tests.conftest import Sandbox, start_sandbox
from tests.end_state import roster_enrolments, server_accounts
from tests.helpers import run_cli
from tests.semesters import semester_roster


def use(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for key, value in box.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("KPROV_RATE_LIMITS", "documented")  # as users run kprov
    return box


@pytest.mark.slow
@pytest.mark.parametrize("modes", ["reorder", "reorder-noid=0.5,wrong-id=0.2,dup-id=0.2"])
def test_batch_answers_out_of_order_or_wrong_leave_no_wrong_mapping_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path, modes: str
) -> None:
    box = use(start_sandbox(hostile=Hostility(modes, seed=5)), monkeypatch)
    try:
        roster = semester_roster(tmp_path / "r.csv", instances=4, learners=60)
        result = run_cli("register", str(roster), "--graph-id", "g", "--concurrency", "4")
        assert result.exit_code == 0, result.output
        mapping = MappingJournal(state_dir / "mapping.csv").load().account_of
        assert mapping == server_accounts(box)  # every row names that person's own account
        assert box.enrolments() == roster_enrolments(roster)
    finally:
        box.server.stop()


def test_refused_registrations_are_never_recorded_and_stay_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    hostile = Hostility("refuse=0.3", seed=9)
    box = use(start_sandbox(hostile=hostile), monkeypatch)
    try:
        roster = semester_roster(tmp_path / "r.csv", instances=2, learners=30)
        first = run_cli("register", str(roster), "--graph-id", "g")
        assert first.exit_code == 1, first.output  # refusals are failures, never "done"

        def recorded() -> set[tuple[str, str]]:
            registry = Registry.open(state_dir)
            try:
                return {
                    (r.account_id, r.instance_id)
                    for r in registry.registration_index.active.values()
                }
            finally:
                registry.close()

        with box.store.lock:
            on_server = {
                (r["account_id"], r["learning_instance_id"])
                for r in box.store.registrations.values()
            }
        assert recorded() == on_server  # nothing refused was recorded as done
        assert len(on_server) < len(roster_enrolments(roster))
        again = run_cli("register", str(roster), "--graph-id", "g")
        assert again.exit_code == 1  # still refused: still pending, never skipped
        box.server.hostile = Hostility()  # the server recovers
        box.server.hostile.install(box.store)
        final = run_cli("register", str(roster), "--graph-id", "g")
        assert final.exit_code == 0, final.output
        assert box.enrolments() == roster_enrolments(roster)
    finally:
        box.server.stop()


@pytest.mark.parametrize("dialect", ["dialect-verbose", "dialect-terse", "dialect-409"])
def test_a_lost_answer_then_already_registered_is_recorded_once_in_every_dialect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path, dialect: str
) -> None:
    from kprov.sandbox.faults import FaultRates

    box = use(
        start_sandbox(
            hostile=Hostility(dialect, seed=3),
            faults=FaultRates(error_after=0.15),
            seed=4,
        ),
        monkeypatch,
    )
    try:
        roster = semester_roster(tmp_path / "r.csv", instances=2, learners=20)
        result = run_cli("register", str(roster), "--graph-id", "g")
        assert result.exit_code == 0, result.output
        assert box.enrolments() == roster_enrolments(roster)
        assert MappingJournal(state_dir / "mapping.csv").load().account_of == server_accounts(box)
    finally:
        box.server.stop()


def test_a_registration_made_outside_kprov_fails_safe_then_can_be_adopted(
    sandbox_env: Sandbox, state_dir: Path
) -> None:
    import json

    run_cli("instances", "create", "--graph-id", "g", "--name", "Chem", "--key", "chem")
    run_cli("accounts", "create", "s-out")
    assert run_cli("register", "--instance", "chem", "--instructor", "t-chem").exit_code == 0
    store = sandbox_env.store
    admin = store.principal(
        store.issue_token("test-key:sandbox-secret", {"grant_type": "client_credentials"})[
            "access_token"
        ]
    )
    account_id = MappingJournal(state_dir / "mapping.csv").load().account_of["s-out"]
    instance_id = Registry.open(state_dir).instance_index.find("chem").instance_id  # type: ignore[union-attr]
    made = store.create_registration(
        admin, {"type": "learner", "account_id": account_id, "learning_instance_id": instance_id}
    )  # by another tool: kprov never asked for it
    refused = run_cli("register", "--instance", "chem", "--learner", "s-out")
    assert refused.exit_code == 1 and "may be the one this request made" in refused.stderr
    recorded = Registry.open(state_dir).registration_index.active.values()
    assert [r.type for r in recorded] == ["instructor"]  # nothing false recorded
    adopted = run_cli("registrations", "resolve", "--instance", "chem", "s-out", made["id"])
    assert adopted.exit_code == 0, adopted.output
    again = run_cli("register", "--instance", "chem", "--learner", "s-out", "--json")
    assert json.loads(again.stdout)["counts"] == {"already_registered": 1}


def test_a_recovery_the_server_answers_with_one_unnamed_account_records_no_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    """The people exist (the mapping was lost), so every batch item is "already exists";
    GET /accounts/current then answers one account, without external_user_id, to every
    user's token. The first to resolve used to be recorded as recovered with that id."""
    from tests.conftest import write_roster

    box = use(start_sandbox(hostile=Hostility("collide", seed=1)), monkeypatch)
    try:
        people = [f"col-{n}" for n in range(6)]
        admin = box.store.principal(
            box.store.issue_token("test-key:sandbox-secret", {"grant_type": "client_credentials"})[
                "access_token"
            ]
        )
        for person in people:
            box.store.create_account(admin, {"external_user_id": person})
        roster = write_roster(tmp_path / "r.csv", people)
        first = run_cli("accounts", "import", str(roster))
        assert first.exit_code == 1, first.output  # failures: pending, never "recovered"
        assert MappingJournal(state_dir / "mapping.csv").load().account_of == {}
        box.server.hostile.modes.clear()  # the server is fixed: the rerun recovers everyone
        again = run_cli("accounts", "import", str(roster))
        assert again.exit_code == 0, again.output
        assert MappingJournal(state_dir / "mapping.csv").load().account_of == server_accounts(box)
    finally:
        box.server.stop()
