"""The client against the sandbox's hostile modes, over real HTTP on 127.0.0.1 (no mocks).

Each test asserts what the client handed back AND what the server really holds: a wrong
answer is refused, nothing false comes out, no request reaches a resource not meant.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kprov.api.batch import UnverifiableAnswer
from kprov.api.client import KnewtonClient
from kprov.api.errors import (
    AccountUnavailable,
    AlreadyRegistered,
    ApiError,
    AuthenticationError,
    DuplicateAccount,
    InstanceUnavailable,
    MalformedAnswer,
    NetworkError,
    ServerError,
    Unprocessable,
)
from kprov.api.ids import UnsafeId
from kprov.api.pacing import DOCUMENTED_QUOTAS, Pacer, RetryPolicy
from kprov.api.transport import Limits
from kprov.credentials import Secret
from kprov.sandbox.hostile import Hostility
from tests.budgets import record_budget
from tests.conftest import SANDBOX_KEY, Sandbox, start_sandbox


@pytest.fixture
def hostile_box(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A sandbox in the hostile modes the test is parametrized (indirectly) with."""
    spec, options = request.param if isinstance(request.param, tuple) else (request.param, {})
    box = start_sandbox(
        hostile=Hostility(spec, seed=7, trickle=options.pop("trickle", 0.2)), **options
    )
    yield box
    box.server.stop()


def client_for(
    box: Sandbox, *, quotas: dict[str, int] | None = None, **kwargs: Any
) -> KnewtonClient:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=3, base_delay=0.001))
    return KnewtonClient(
        base_url=box.base_url,
        api_key=SANDBOX_KEY,
        api_secret=Secret("sandbox-secret"),
        pacer=Pacer(quotas=DOCUMENTED_QUOTAS if quotas is None else quotas, ceiling=8),
        **kwargs,
    )


def truth(box: Sandbox) -> dict[str, str]:
    """external id -> account id, as the server holds them."""
    with box.store.lock:
        return dict(box.store.by_external)


@pytest.mark.parametrize("hostile_box", ["reorder"], indirect=True)
def test_reordered_batches_give_every_person_their_own_account(hostile_box: Sandbox) -> None:
    people = [f"stu-{n:03}" for n in range(100)]
    with client_for(hostile_box) as client:  # POST /batch paced at the documented 90/min
        results = [r for i in (0, 50) for r in client.batch_create_accounts(people[i : i + 50])]
    server = truth(hostile_box)
    assert [r.external_user_id for r in results] == people
    assert all(r.ok and r.account_id == server[r.external_user_id] for r in results)


@pytest.mark.parametrize(
    "hostile_box",
    ["reorder-noid", "noid", "wrong-id", "dup-id", "bad-uuid", "missing-id"],
    indirect=True,
)
def test_an_unverifiable_batch_answer_hands_back_nothing_and_recovery_finds_the_truth(
    hostile_box: Sandbox,
) -> None:
    people = [f"p{n}" for n in range(6)]
    with client_for(hostile_box) as client:
        with pytest.raises(MalformedAnswer) as caught:
            client.batch_create_accounts(people)
        if "noid" in hostile_box.server.hostile.modes:
            assert isinstance(caught.value, UnverifiableAnswer)
        hostile_box.server.hostile.modes.clear()  # (these modes also spoil single answers)
        recovered = {p: client.account_id_of(p) for p in people}  # the documented scope flow
    assert recovered == {p: truth(hostile_box)[p] for p in people}


@pytest.mark.parametrize("hostile_box", ["climbing-id"], indirect=True)
def test_an_id_that_climbs_out_of_its_path_is_refused_and_never_used(hostile_box: Sandbox) -> None:
    with client_for(hostile_box, quotas={}) as client:
        [teacher] = client.batch_create_accounts(["t1"])
        assert teacher.account_id
        with pytest.raises(MalformedAnswer):
            client.create_learning_instance(graph_id="gref-1", name="Algebra")
        [instance_id] = list(hostile_box.store.instances)
        with pytest.raises(MalformedAnswer):
            client.create_registration(
                registration_type="instructor",
                account_id=teacher.account_id,
                learning_instance_id=instance_id,
            )
        with pytest.raises(UnsafeId):  # what a careless caller might still try
            client.delete_registration(f"../accounts/{teacher.account_id}")
    requests_seen = hostile_box.requests()
    assert not any(label.startswith("DELETE") for label in requests_seen)
    assert hostile_box.store.accounts[teacher.account_id]["active"]


@pytest.mark.parametrize("hostile_box", ["missing-id"], indirect=True)
def test_answers_without_their_id_are_malformed_not_a_traceback(hostile_box: Sandbox) -> None:
    with client_for(hostile_box, quotas={}) as client:
        with pytest.raises(MalformedAnswer):
            client.current_account()
        with pytest.raises(MalformedAnswer):
            client.create_learning_instance(graph_id="gref-1", name="Algebra")


@pytest.mark.parametrize("hostile_box", [("refuse", {"seed": 3})], indirect=True)
def test_trap_refusals_are_never_read_as_already_registered(hostile_box: Sandbox) -> None:
    hostile_box.server.hostile.modes.pop("refuse")  # set up the class first, honestly
    with client_for(hostile_box, quotas={}) as client:
        students = client.batch_create_accounts([f"s{n}" for n in range(30)])
        instance = client.create_learning_instance(graph_id="gref-1", name="Algebra")
        hostile_box.server.hostile.modes["refuse"] = 1.0
        classes = set()
        for student in students:
            assert student.account_id
            with pytest.raises(Unprocessable) as caught:
                client.create_registration(
                    registration_type="learner",
                    account_id=student.account_id,
                    learning_instance_id=instance.id,
                )
            assert not isinstance(caught.value, AlreadyRegistered)
            classes.add(type(caught.value).__name__)
    assert hostile_box.store.registrations == {}  # nothing was applied, nothing is "done"
    assert {"InstanceUnavailable", "EntityLimitReached", "Unprocessable"} <= classes


@pytest.mark.parametrize(
    "hostile_box", ["dialect-verbose", "dialect-terse", "dialect-409"], indirect=True
)
def test_genuine_refusals_are_recognised_in_every_dialect(hostile_box: Sandbox) -> None:
    with client_for(hostile_box, quotas={}) as client:
        [first] = client.batch_create_accounts(["d1"])
        with pytest.raises(DuplicateAccount):
            client.create_account("d1")
        [again] = client.batch_create_accounts(["d1"])
        assert again.refusal is not None and again.refusal.value == "duplicate_account"
        instance = client.create_learning_instance(graph_id="gref-1", name="Algebra")
        assert first.account_id
        register = {"account_id": first.account_id, "learning_instance_id": instance.id}
        client.create_registration(registration_type="instructor", **register)
        with pytest.raises(AlreadyRegistered) as caught:
            client.create_registration(registration_type="instructor", **register)
        if hostile_box.server.hostile.modes.keys() != {"dialect-terse"}:
            assert caught.value.registered_type == "instructor"
        client.delete_learning_instance(instance.id)
        with pytest.raises(InstanceUnavailable):
            client.create_registration(registration_type="instructor", **register)
        client.delete_account(first.account_id)
        other = client.create_learning_instance(graph_id="gref-1", name="Geometry")
        with pytest.raises(AccountUnavailable):
            client.create_registration(
                registration_type="instructor",
                account_id=first.account_id,
                learning_instance_id=other.id,
            )


@pytest.mark.parametrize("hostile_box", ["html"], indirect=True)
def test_proxy_error_pages_are_retried_then_reported_in_one_line(hostile_box: Sandbox) -> None:
    with client_for(hostile_box, quotas={}) as client, pytest.raises(ServerError) as caught:
        client.batch_create_accounts(["h1"])
    assert "an HTML page, not an API answer: 50" in str(caught.value)
    assert "<html>" not in str(caught.value)
    assert truth(hostile_box).keys() == {"partner-admin"}  # nothing was applied


@pytest.mark.parametrize(
    "hostile_box",
    [
        ("trickle-token", {}),
        ("stall-token", {}),
        ("trickle", {}),
        ("trickle-body", {}),
        ("stall", {}),
    ],
    indirect=True,
)
def test_trickling_and_stalled_answers_are_abandoned_at_the_deadline(
    hostile_box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = record_budget(monkeypatch, this_thread=True)
    client = client_for(hostile_box, quotas={}, limits=Limits(deadline=0.5))
    with client, pytest.raises(NetworkError) as caught:
        client.current_account()
    port = hostile_box.server.server_address[1]
    assert f"no answer from 127.0.0.1:{port}: no complete answer within the 0.5 s deadline" in str(
        caught.value
    )
    assert caught.value.exit_code == 4
    assert caught.value.outcome_unknown  # a stalled write may have been applied
    # one 0.5 s deadline cut one attempt, and nothing was sent again (no retry of a trickle)
    assert [d.seconds for d in budget.deadlines] in ([0.5], [0.5, 0.5])  # (the token first)
    assert budget.expired == 1 and budget.deadlines[-1].expired and budget.waits == []
    assert set(hostile_box.requests().values()) == {1}


@pytest.mark.parametrize("hostile_box", [("", {"token_ttl": 1.0})], indirect=True)
def test_one_second_tokens_never_fail_a_paced_concurrent_run(hostile_box: Sandbox) -> None:
    """Workers queue longer than a token lives; every token is still fresh when it is sent."""
    quotas = {"POST /registrations": 600, "POST /batch": 90}  # 0.1 s apart: queues of ~1 s
    with client_for(hostile_box, quotas=quotas) as client:
        students = client.batch_create_accounts([f"q{n}" for n in range(24)])
        instance = client.create_learning_instance(graph_id="gref-1", name="Algebra")
        errors: list[Exception] = []

        def register(chunk: list[Any]) -> None:
            for student in chunk:
                try:
                    client.create_registration(
                        registration_type="instructor",
                        account_id=student.account_id,
                        learning_instance_id=instance.id,
                    )
                except Exception as exc:  # collected: the assertion below names it
                    errors.append(exc)

        workers = [threading.Thread(target=register, args=(students[n::8],)) for n in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert errors == []
    assert len(hostile_box.enrolments()) == 24
    assert hostile_box.requests().get("HTTP 401", 0) == 0  # no token aged in the queue


@pytest.mark.parametrize("hostile_box", ["echo", "echo-html"], indirect=True)
def test_echoed_credentials_and_tokens_never_reach_an_error(hostile_box: Sandbox) -> None:
    modes = hostile_box.server.hostile.modes
    api_mode = dict(modes)
    modes.clear()
    with client_for(hostile_box, quotas={}) as client:
        first = client.token_for()
        client.tokens.invalidate(None, first)  # as after a 401: the next call refreshes
        modes.update(api_mode, **{"echo-token": 1.0})
        with pytest.raises(AuthenticationError) as refused:  # refresh, then credentials: echoed
            client.current_account()
        modes.pop("echo-token")
        with pytest.raises(ApiError) as echoed:  # a fresh token, echoed by the API call
            client.current_account()
    basic = base64.b64encode(f"{SANDBOX_KEY}:sandbox-secret".encode()).decode()
    with hostile_box.store.lock:
        live = [*hostile_box.store.tokens, *hostile_box.store.refresh_tokens]
    for error in (refused.value, echoed.value):
        text = f"{error} {error.__dict__}"
        for secret in (
            "sandbox-secret",
            basic,
            first.access_token,
            str(first.refresh_token),
            *live,
        ):
            assert secret not in text
        assert "<redacted>" in text


@pytest.mark.parametrize(
    "hostile_box", [("trickle", {"trickle": 0.015}), ("trickle-token", {"trickle": 0.015})],
    indirect=True,
)  # fmt: skip
def test_an_answer_trickled_past_its_status_line_is_no_answer_not_a_malformed_one(
    hostile_box: Sandbox,
) -> None:
    """At most 40 bytes in 0.6 s: the status line, then the deadline cuts the headers. The
    fragment used to be parsed as a whole answer ("HTTP 200: the answer is not JSON")."""
    token_mode = "trickle-token" in hostile_box.server.hostile.modes
    client = client_for(hostile_box, quotas={}, limits=Limits(deadline=0.6))
    with client, pytest.raises(NetworkError) as caught:
        if token_mode:
            client.token_for()
        else:  # a long name: the answer is far longer than what can arrive in time
            client.create_learning_instance(graph_id="gref-1", name="Algebra " + "x" * 200)
    port = hostile_box.server.server_address[1]
    assert f"no answer from 127.0.0.1:{port}: no complete answer within the 0.6 s deadline" in (
        str(caught.value)
    )
    assert caught.value.outcome_unknown
    requests_seen = hostile_box.requests()
    if not token_mode:  # applied, then answered too slowly: the outcome really is unknown
        assert len(hostile_box.store.instances) == 1
        assert requests_seen["POST /learning-instances"] == 1  # never resent
    else:
        assert requests_seen["POST /oauth/token"] == 1


def existing_people(box: Sandbox, people: list[str]) -> dict[str, str]:
    """Create *people* honestly (modes off), then restore the modes; external -> account id."""
    modes = dict(box.server.hostile.modes)
    box.server.hostile.modes.clear()
    with client_for(box, quotas={}) as client:
        client.batch_create_accounts(people)
    box.server.hostile.modes.update(modes)
    return {p: truth(box)[p] for p in people}


@pytest.mark.parametrize("hostile_box", ["collide"], indirect=True)
def test_an_account_answered_to_everyone_without_a_name_is_never_recovered(
    hostile_box: Sandbox,
) -> None:
    """GET /accounts/current answers one account, without external_user_id, to every user's
    token (a server bug, or a cache that ignores Authorization): no one's id can be checked."""
    people = [f"c{n}" for n in range(4)]
    existing_people(hostile_box, people)
    with client_for(hostile_box, quotas={}) as client:
        for person in people:
            with pytest.raises(MalformedAnswer, match="does not name its external_user_id"):
                client.account_id_of(person)
    assert hostile_box.requests()["GET /accounts/current"] == len(people)


@pytest.mark.parametrize(
    "hostile_box", [("collide-token", {"token_account_id": True})], indirect=True
)
def test_a_token_account_id_given_to_everyone_is_caught_by_the_named_answer(
    hostile_box: Sandbox,
) -> None:
    """Token answers carry one account_id for every user and do not say whose it is: kprov
    asks GET /accounts/current (which names the user) and refuses when the two disagree."""
    people = [f"k{n}" for n in range(4)]
    server = existing_people(hostile_box, people)
    with client_for(hostile_box, quotas={}) as client:
        first = client.account_id_of(people[0])  # the one whose id the token answers carry
        for person in people[1:]:
            with pytest.raises(MalformedAnswer, match="two different accounts"):
                client.account_id_of(person)
    assert first == server[people[0]]
