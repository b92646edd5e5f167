"""The executor against an in-memory API: exactly the plan, each result recorded before it
counts, dependencies instead of phases, and every item keeps a fate when a run stops."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kprov.api.errors import (
    AlreadyRegistered,
    InstanceUnavailable,
    MalformedAnswer,
    NetworkError,
)
from kprov.errors import Interrupted
from kprov.provision.plan import InstanceSpec, Plan
from kprov.provision.planner import build_plan
from kprov.provision.request import Request
from kprov.provision.result import RunResult, run_fate
from kprov.rosters.model import Origin, Person
from kprov.state.local import LocalState, open_local_state
from tests.fakes import FakeApi, FakeInstance, raising, register_plan, run, semester


@pytest.fixture
def state(tmp_path: Path) -> Iterator[LocalState]:
    with open_local_state(tmp_path / "s", tmp_path / "s" / "mapping.csv") as local:
        yield local


def fates(result: RunResult) -> dict[str, int]:
    found: dict[str, int] = {}
    for outcome in result.outcomes:
        found[run_fate(outcome)] = found.get(run_fate(outcome), 0) + 1
    return found


def test_a_semester_is_provisioned_and_a_rerun_plans_nothing(state: LocalState) -> None:
    api = FakeApi()
    people = semester()
    result = run(api, state, register_plan(state, people))
    assert result.stopped_by is None
    assert fates(result) == {"created": 15, "instance_created": 3, "registered": 15}
    expected = {(p.external_id, p.role) for p in people}
    assert {(e, t) for e, _i, t in api.enrolments()} == expected
    learners = [d for kind, d in api.calls if kind == "register" and d[0] == "learner"]
    assert all(as_user is not None and as_user.startswith("t") for *_x, as_user in learners)
    again = register_plan(state, people)
    assert again.items == () and len(again.kept["already_registered"]) == 15


def test_learners_are_registered_before_the_last_account_batch(state: LocalState) -> None:
    api = FakeApi(batch_gap=15)  # a quota paces the batches (counted in calls, not seconds)
    run(api, state, register_plan(state, semester(classes=5, learners=30)), concurrency=1)
    kinds = [kind for kind, _d in api.calls]
    last_batch = max(i for i, k in enumerate(kinds) if k == "batch")
    first_learner = min(
        i for i, (k, d) in enumerate(api.calls) if k == "register" and d[0] == "learner"
    )
    assert first_learner < last_batch  # no barrier between accounts and registrations
    first_batch = next(d for k, d in api.calls if k == "batch")
    assert {ext.split("-")[0] for ext in first_batch} >= {"s0", "s1", "s2", "s3", "s4"}


def test_only_already_registered_for_the_same_type_counts_as_done(state: LocalState) -> None:
    people = semester(classes=1, learners=2)
    plan = register_plan(state, people)
    same = AlreadyRegistered("account is already registered", status=422)
    same.resent_after_unknown = True  # the first attempt's answer was lost: it was ours
    other = AlreadyRegistered("already registered as instructor", status=422)
    other.registered_type = "instructor"
    api = FakeApi(faults={"register": [None, same, other]})
    result = run(api, state, plan, concurrency=1)
    assert fates(result) == {
        "created": 3,
        "instance_created": 1,
        "registered": 1,
        "registered_id_unknown": 1,
        "failed": 1,
    }
    [notice] = [w for w in result.warnings if "without their id" in w]
    assert notice.startswith("1 registration(s)") and "before this run" not in notice
    [flagged] = [o for o in result.outcomes if o.flagged]
    active = state.registry.registration_index.active
    assert active[(flagged.account_id, flagged.instance_id)].registration_id == ""
    [failed] = result.failures()
    assert (failed.account_id, failed.instance_id) not in active  # nothing false recorded
    assert [i.external_id for i in register_plan(state, people).items] == [failed.item.external_id]


def test_a_refusal_that_is_not_a_duplicate_stays_pending(state: LocalState) -> None:
    people = semester(classes=1, learners=1)
    closed = InstanceUnavailable("learning instance does not exist or is closed", status=422)
    api = FakeApi(faults={"register": [None, closed]})
    result = run(api, state, register_plan(state, people), concurrency=1)
    assert fates(result)["failed"] == 1
    assert len(register_plan(state, people).items) == 1  # the rerun sends it again


def test_a_malformed_batch_records_nothing_and_recovers_each_account(state: LocalState) -> None:
    people = semester(classes=1, learners=3)

    def apply_then_fail(external_ids: list[str]) -> None:
        api.faults["batch"] = []
        api.create_accounts(external_ids)  # the server did create them
        raise MalformedAnswer("batch items name other external ids", status=200)

    api = FakeApi(faults={"batch": [apply_then_fail]})
    result = run(api, state, register_plan(state, people))
    assert fates(result) == {"recovered": 4, "instance_created": 1, "registered": 4}
    assert state.mapping.account_of == api.accounts  # every row names the right account


def test_an_answer_naming_an_account_already_mapped_to_someone_else_is_never_recorded(
    state: LocalState,
) -> None:
    api = FakeApi()
    first = run(api, state, register_plan(state, semester(classes=1, learners=1)))
    assert first.stopped_by is None
    stolen = state.mapping.account_of["s0-0"]

    def reuse(external_ids: list[str]) -> None:
        for ext in external_ids:
            api.accounts[ext] = stolen  # a broken server hands out an existing id

    api.faults["batch"] = [reuse]
    people = [Person("s0-9", "learner", Origin("r.csv", 9), "c0")]
    result = run(api, state, register_plan(state, people))
    assert state.mapping.account_of.get("s0-9") != stolen
    assert "failed" in fates(result)


def test_a_registration_id_recorded_for_someone_else_by_an_earlier_run_is_never_recorded(
    state: LocalState,
) -> None:
    """A later prune of this learner would otherwise DELETE the instructor's registration."""
    api = FakeApi()
    assert run(api, state, register_plan(state, semester(classes=1, learners=1))).stopped_by is None
    index = state.registry.registration_index
    (teachers,) = [r for r in index.active.values() if r.type == "instructor"]
    honest = api.register

    def reuse(**kwargs: str | None) -> str:
        honest(**kwargs)  # type: ignore[arg-type]
        return teachers.registration_id.upper()  # an id kprov already holds, in another case

    api.register = reuse  # type: ignore[method-assign]
    people = [Person("s0-9", "learner", Origin("r.csv", 9), "c0")]
    result = run(api, state, register_plan(state, people))
    assert fates(result).get("failed") == 1
    (failure,) = [o for o in result.outcomes if run_fate(o) == "failed"]
    assert "already holds for another registration (t0 as instructor)" in failure.detail
    assert index.holder_of(teachers.registration_id) == teachers
    assert not [r for r in index.active.values() if r.external_user_id == "s0-9"]


def test_an_instance_id_recorded_for_another_class_is_never_recorded_for_a_new_one(
    state: LocalState,
) -> None:
    """Deleting the new class later would otherwise delete the old one."""
    api = FakeApi()
    assert run(api, state, register_plan(state, semester(classes=1, learners=1))).stopped_by is None
    (old,) = state.registry.instance_index.by_key.values()
    honest = api.create_instance

    def reuse(spec: InstanceSpec) -> FakeInstance:
        honest(spec)
        return FakeInstance(old.instance_id)

    api.create_instance = reuse  # type: ignore[method-assign]
    people = [Person("t1", "instructor", Origin("r.csv", 9), "c1")]
    result = run(api, state, register_plan(state, people))
    assert "learning instance id kprov already holds for another learning instance ('c0')" in (
        " ".join(o.detail for o in result.outcomes)
    )
    assert state.registry.instance_index.find("c1") is None
    assert "c1" in state.registry.instance_index.intents  # the rerun warns of a duplicate


def test_a_stopping_error_leaves_every_item_a_fate_and_sends_nothing_more(
    state: LocalState,
) -> None:
    down = NetworkError("no answer from 127.0.0.1:9 (refused)")
    api = FakeApi(faults={"register": [None, raising(down)]})
    result = run(api, state, register_plan(state, semester(classes=1, learners=6)), 1)
    assert result.stopped_by is down
    assert len(result.outcomes) == len(result.plan.items)
    sent = [kind for kind, _d in api.calls if kind == "register"]
    assert len(sent) <= 2 + 4  # the failing one, and at most what was already handed out
    found = fates(result)
    assert found["not_attempted"] >= 1
    assert found.get("registered", 0) + found["not_attempted"] == 7


def test_interrupted_sends_are_not_attempted(state: LocalState) -> None:
    api = FakeApi()

    def interrupt(*_args: object) -> None:
        api.cancel.set()
        raise Interrupted("stopped before sending")

    api.faults["register"] = [interrupt]
    result = run(api, state, register_plan(state, semester(classes=1, learners=3)), 1)
    assert isinstance(result.stopped_by, Interrupted)
    assert [k for k, _d in api.calls].count("register") == 1
    assert fates(result)["not_attempted"] == 4


def test_a_bucket_that_is_not_ready_delays_its_work_only(state: LocalState) -> None:
    api = FakeApi(delays={(None, "POST /batch"): [0.02, 0.02]})
    result = run(api, state, register_plan(state, semester(classes=1, learners=1)))
    assert result.stopped_by is None and fates(result)["registered"] == 2


def test_learners_fall_back_to_the_admin_when_their_instructor_fails(state: LocalState) -> None:
    closed = InstanceUnavailable("closed", status=422)
    api = FakeApi(faults={"register": [closed]})
    result = run(api, state, register_plan(state, semester(classes=1, learners=2)), 1)
    reasons = [o.detail for o in result.failures()]
    assert any("add its instructor to the roster" in r for r in reasons)


def test_a_stored_id_that_is_not_a_uuid_fails_its_item_only(state: LocalState) -> None:
    from kprov.api.ids import UnsafeId
    from kprov.provision.plan import Action, Item

    api = FakeApi(faults={"unregister": [UnsafeId("registration id is not a UUID")]})
    removals = tuple(
        Item(Action.UNREGISTER, f"s{n}", "learner", "c0", "i", "a", f"r{n}") for n in range(2)
    )
    result = run(api, state, Plan(command="unregister", items=removals), concurrency=1)
    assert result.stopped_by is None
    assert [run_fate(o) for o in result.outcomes].count("failed") == 1
    assert [k for k, _d in api.calls].count("unregister") == 2  # the run went on to the next


def test_learners_fall_back_to_the_admin_when_their_instructor_failed_before_the_instance(
    state: LocalState,
) -> None:
    """The instructor's account fails while the instance is still being created: the
    learners must not wait for ever for an instructor that will never come."""
    from kprov.api.models import BatchItemResult

    class BadTeacherApi(FakeApi):
        def create_accounts(self, external_ids: list[str]) -> list[BatchItemResult]:  # type: ignore[override]
            answers = super().create_accounts(external_ids)
            return [
                BatchItemResult(a.external_user_id, 400, error_message="bad field")
                if a.external_user_id == "t0"
                else a
                for a in answers
            ]

    api = BadTeacherApi(strict_learners=False, delays={(None, "POST /learning-instances"): [0.2]})
    result = run(api, state, register_plan(state, semester(classes=1, learners=3)))
    learners = [d for kind, d in api.calls if kind == "register" and d[0] == "learner"]
    assert len(learners) == 3 and all(as_user is None for *_x, as_user in learners)
    assert fates(result)["registered"] == 3


def test_learners_are_not_registered_under_an_instructor_the_plan_removes(
    state: LocalState,
) -> None:
    api = FakeApi()
    first = [Person(ext, role, Origin("r.csv", n), "c0") for n, (ext, role) in enumerate(
        [("t1", "instructor"), ("t2", "instructor"), ("s0", "learner")], start=2)]  # fmt: skip
    run(api, state, register_plan(state, first))
    newcomer = Person("s9", "learner", Origin("m.csv", 4), "c0")
    request = Request(
        command="sync", people=[first[1], first[2], newcomer],
        specs={"c0": InstanceSpec("g", "C0")}, instances=("c0",), prune=True,
        authoritative=frozenset({"c0"}), max_removals="100%",
    )  # fmt: skip
    plan = build_plan(request, state.mapping, state.registry)
    assert [(i.action.value, i.external_id) for i in plan.items] == [
        ("create_account", "s9"),
        ("register", "s9"),
        ("unregister", "t1"),
    ]
    api.delays[("t1", "POST /registrations")] = [0.2]  # t1 would be chosen: smallest id
    result = run(api, state, plan)
    assert fates(result) == {"created": 1, "registered": 1, "removed": 1}
    [learner] = [d for kind, d in api.calls if kind == "register" and d[0] == "learner"][-1:]
    assert learner[-1] == "t2"


def test_an_untyped_already_registered_without_an_earlier_request_is_not_recorded(
    state: LocalState,
) -> None:
    people = semester(classes=1, learners=1)
    foreign = AlreadyRegistered("registration already exists", status=422)  # type unsaid
    api = FakeApi(faults={"register": [None, foreign]})
    result = run(api, state, register_plan(state, people), concurrency=1)
    [failed] = result.failures()
    assert "or another's; not recorded" in failed.detail
    assert (failed.account_id, failed.instance_id) not in state.registry.registration_index.active


def test_after_a_crash_an_untyped_already_registered_for_what_kprov_sent_is_recorded(
    state: LocalState,
) -> None:
    from kprov.state.registry import RegistrationRecord

    people = semester(classes=1, learners=1)
    api = FakeApi()
    assert run(api, state, register_plan(state, people), 1).stopped_by is None
    # a previous run sent s0-0's registration and died before recording the answer
    record = next(
        r for r in state.registry.registration_index.active.values() if r.external_user_id == "s0-0"
    )
    state.registry.record_registration_removed(record)  # forget the recorded answer ...
    state.registry.record_registration_sent(
        RegistrationRecord(record.account_id, record.instance_id, "learner", "", "s0-0")
    )  # ... but keep the intent, as a kill -9 after sending would
    again = register_plan(state, people)
    untyped = AlreadyRegistered("registration already exists", status=422)
    api.faults["register"] = [untyped]
    result = run(api, state, again, concurrency=1)
    assert [(o.item.external_id, run_fate(o)) for o in result.outcomes] == [
        ("s0-0", "registered_id_unknown")
    ]


def test_an_account_id_is_claimed_once_whatever_its_case(state: LocalState) -> None:
    from kprov.provision.recorder import Recorder

    recorder = Recorder(state)
    upper = "0A0A0A0A-0000-4000-8000-00000000000B"
    assert recorder.claim_account(upper, "x")
    assert not recorder.claim_account(upper.lower(), "y")  # another person: refused
    assert recorder.claim_account(upper.lower(), "x")  # the same person again: fine


def test_an_interrupt_during_a_long_quota_wait_ends_the_run_at_once(
    state: LocalState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's loop waits for a 30 s quota in naps of at most 0.2 s, looking at the stop
    between them: Ctrl-C during the first nap ends the run after it."""
    import queue

    from kprov.provision import execute

    api = FakeApi(delays={(None, "POST /batch"): [30.0] * 5})  # the batch bucket: 30 s away
    naps: list[float | None] = []

    class Napping(queue.Queue):
        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            if block and timeout is not None:
                naps.append(timeout)
                api.cancel.set()  # Ctrl-C, while this nap lasts
            return super().get(block, timeout)

    monkeypatch.setattr(execute, "queue", SimpleNamespace(Queue=Napping, Empty=queue.Empty))
    result = run(api, state, register_plan(state, semester(classes=1, learners=1)))
    assert naps == [0.2]  # one short nap, then the stop was seen: not 30 s
    assert isinstance(result.stopped_by, Interrupted)
    assert [k for k, _d in api.calls if k == "batch"] == []


def test_instances_create_refuses_an_id_another_key_holds(state: LocalState) -> None:
    """`kprov instances create` goes through admin.create_instance: same rule, exit 4."""
    from kprov.api.errors import MalformedAnswer
    from kprov.provision.admin import create_instance

    api = FakeApi()
    _outcome, first = create_instance(api, state, InstanceSpec("gref-x", "Algebra"), "alg")
    api.create_instance = lambda spec: FakeInstance(first.instance_id)  # type: ignore[method-assign]
    with pytest.raises(MalformedAnswer, match="already holds for the instance 'alg'"):
        create_instance(api, state, InstanceSpec("gref-x", "Geometry"), "geo")
    assert state.registry.instance_index.find("geo") is None
    assert "geo" in state.registry.instance_index.intents


def test_a_task_whose_items_the_ledger_refused_is_never_sent(state: LocalState) -> None:
    """``before_send`` (the run ledger's gate) raising stops the run: nothing it refused goes,
    every item keeps a fate, and outcomes reach ``on_settled`` in one call a pass, in order."""
    from kprov.errors import StorageError
    from kprov.provision.execute import Executor
    from kprov.provision.plan import Action

    api = FakeApi()
    plan = register_plan(state, semester(classes=2, learners=60))
    recorded_through = 100  # the ledger took the first 100 items (of 246), then refused:
    # the account batches' highest items are 85, 110 and 121
    told: list[list[int]] = []

    def gate(highest: int) -> None:
        if highest >= recorded_through:
            raise StorageError("nothing more is sent: the run ledger could not record")

    result = Executor(
        api,
        state,
        concurrency=2,
        before_send=gate,
        on_settled=lambda pairs: told.append([seq for seq, _outcome in pairs]),
    ).run(plan)
    assert isinstance(result.stopped_by, StorageError)
    sent = {ext for kind, data in api.calls if kind == "batch" for ext in data}
    assert all(  # (the first batch may go, or be stopped by the others' refusal: a race)
        i < recorded_through
        for i, item in enumerate(plan.items)
        if item.external_id in sent and item.action is Action.CREATE_ACCOUNT
    )
    assert sorted(seq for group in told for seq in group) == list(range(len(plan.items)))
    assert fates(result).get("not_attempted", 0) > 0


def test_a_refused_account_batch_fails_the_registrations_waiting_for_it(state: LocalState) -> None:
    from kprov.api.errors import Unprocessable

    people = semester(classes=1, learners=3)
    refused = Unprocessable("the batch was refused", status=400)
    api = FakeApi(faults={"batch": [refused]})
    result = run(api, state, register_plan(state, people))
    assert fates(result) == {"failed": 8, "instance_created": 1}  # 4 accounts, 4 registrations
    blocked = [o.detail for o in result.outcomes if o.item.action == "register"]
    assert blocked == ["no account: HTTP 400: the batch was refused"] * 4
    assert not api.registrations
