"""What the client hands the core is checked: batch items, ids, paths, refusals, secrets."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
import responses

from kprov.api.batch import UnverifiableAnswer
from kprov.api.errors import (
    AlreadyRegistered,
    ApiError,
    AuthenticationError,
    InstanceUnavailable,
    MalformedAnswer,
    Refusal,
    ServerError,
    TokenRefused,
    Unprocessable,
)
from kprov.api.ids import UnsafeId
from tests.mocked_api import (
    ACC1,
    ACC2,
    ACC5,
    BASE,
    INST1,
    REG1,
    SECRET,
    TOKEN_URL,
    make_client,
    token_answer,
)

BASIC = base64.b64encode(f"key-1:{SECRET}".encode()).decode()
ACC3 = "5a0c2b6e-1111-4c2a-9a53-2f6a0d1e9b77"


def ok(ext: str | None, account_id: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"account_id": account_id, "entitlements": []}
    if ext is not None:
        body["external_user_id"] = ext
    return {"code": 200, "body": body}


def refused(message: str, code: int = 422) -> dict[str, Any]:
    return {"code": code, "body": {"code": code, "error_message": message}}


def batch(items: list[Any]) -> list[Any]:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/batch", json={"responses": items})
    return make_client().batch_create_accounts(["a", "b", "c"])


@responses.activate
def test_a_fully_named_reordered_answer_gives_each_request_its_own_account() -> None:
    results = batch([ok("c", ACC3), ok("a", ACC1), ok("b", ACC2)])
    assert [(r.external_user_id, r.account_id) for r in results] == [
        ("a", ACC1),
        ("b", ACC2),
        ("c", ACC3),
    ]


@responses.activate
def test_error_items_without_ids_are_read_by_position_as_the_reference_shows() -> None:
    first, second, third = batch(
        [ok("a", ACC1), refused("Duplicate account with b"), refused("limit reached", 422)]
    )
    assert (first.ok, first.account_id) == (True, ACC1)
    assert (second.ok, second.refusal) == (False, Refusal.DUPLICATE_ACCOUNT)
    assert third.refusal is Refusal.ENTITY_LIMIT


@pytest.mark.parametrize(
    "items",
    [
        [ok("c", ACC3), refused("Duplicate account with b"), ok("a", ACC1)],  # out of order
        [ok("a", ACC1), ok("b", ACC2)],  # one item short
        [ok("a", ACC1), ok("b", ACC2), ok("c", ACC2)],  # one account for two people
        [ok("a", ACC1), ok("b", ACC2), ok("zed", ACC3)],  # someone not asked for
        [ok("a", ACC1), ok("a", ACC2), ok("c", ACC3)],  # one person twice
        [ok("a", ACC1), ok("b", "acct-42"), ok("c", ACC3)],  # not a UUID
        [ok("a", ACC1), ok("b", f"../accounts/{ACC2}"), ok("c", ACC3)],
        [ok("a", ACC1), ok("b", None), ok("c", ACC3)],  # created, but no id
        [ok("a", ACC1), "garbage", ok("c", ACC3)],
        [ok("a", ACC1), {"code": "two hundred", "body": {}}, ok("c", ACC3)],
        [ok("a", ACC1), {"code": 200, "body": ["x"]}, ok("c", ACC3)],
    ],
)
@responses.activate
def test_a_batch_answer_that_cannot_be_trusted_is_malformed_as_a_whole(items: list[Any]) -> None:
    with pytest.raises(MalformedAnswer) as caught:
        batch(items)
    assert caught.value.exit_code == 4
    assert caught.value.outcome_unknown  # the core recovers those accounts one by one


@responses.activate
def test_created_items_that_do_not_name_their_person_are_unverifiable() -> None:
    with pytest.raises(UnverifiableAnswer):
        batch([ok(None, ACC1), ok(None, ACC2), ok(None, ACC3)])


@pytest.mark.parametrize("payload", [{"items": []}, {"responses": "none"}, [1, 2]])
@responses.activate
def test_a_batch_answer_without_a_list_of_responses_is_malformed(payload: Any) -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/batch", json=payload)
    with pytest.raises(MalformedAnswer):
        make_client().batch_create_accounts(["a"])


# ------------------------------------------------------------------------ ids and paths


@pytest.mark.parametrize(
    ("call", "method", "url", "answer"),
    [
        ("current", "GET", f"{BASE}/accounts/current", {"external_user_id": "x"}),
        ("create_account", "POST", f"{BASE}/accounts", {"external_user_id": "s1"}),
        ("instance", "POST", f"{BASE}/learning-instances", {"name": "A"}),
        ("registration", "POST", f"{BASE}/registrations", {"type": "learner"}),
        ("registration", "POST", f"{BASE}/registrations", {"id": f"../accounts/{ACC1}"}),
        ("instance", "POST", f"{BASE}/learning-instances", {"id": "li-1"}),
        ("current", "GET", f"{BASE}/accounts/current", {"id": 42}),
        ("create_account", "POST", f"{BASE}/accounts", {"id": ACC1, "external_user_id": "s2"}),
    ],
)
@responses.activate
def test_answers_without_a_good_id_are_malformed_never_a_traceback(
    call: str, method: str, url: str, answer: dict[str, Any]
) -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.add(method, url, json=answer)
    client = make_client()
    actions = {
        "current": client.current_account,
        "create_account": lambda: client.create_account("s1"),
        "instance": lambda: client.create_learning_instance(graph_id="g", name="A"),
        "registration": lambda: client.create_registration(
            registration_type="learner", account_id=ACC1, learning_instance_id=INST1
        ),
    }
    with pytest.raises(MalformedAnswer):
        actions[call]()


@responses.activate
def test_ids_that_climb_out_of_their_path_never_reach_the_wire() -> None:
    client = make_client()
    for bad in (f"../accounts/{ACC1}", "..", f"{ACC1}/../../accounts/{ACC2}", "", f"{ACC1}?x=1"):
        with pytest.raises(UnsafeId) as caught:
            client.delete_registration(bad)
        assert caught.value.exit_code == 2
        with pytest.raises(UnsafeId):
            client.get_learning_instance(bad)
    assert len(responses.calls) == 0


@responses.activate
def test_every_request_goes_to_the_resource_meant_and_no_other() -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.delete(f"{BASE}/registrations/{REG1}", status=204)
    responses.get(f"{BASE}/accounts/{ACC2}", json={"id": ACC2, "external_user_id": "s"})
    client = make_client()
    client.delete_registration(REG1)
    client.get_account(ACC2)
    assert [c.request.url for c in responses.calls] == [
        TOKEN_URL,
        f"{BASE}/registrations/{REG1}",
        f"{BASE}/accounts/{ACC2}",
    ]


@responses.activate
def test_an_answer_about_another_resource_is_malformed() -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.get(f"{BASE}/accounts/{ACC2}", json={"id": ACC1})
    responses.post(
        f"{BASE}/registrations",
        json={"id": REG1, "type": "learner", "account_id": ACC5, "learning_instance_id": INST1},
    )
    client = make_client()
    with pytest.raises(MalformedAnswer):
        client.get_account(ACC2)
    with pytest.raises(MalformedAnswer):
        client.create_registration(
            registration_type="learner", account_id=ACC1, learning_instance_id=INST1
        )


@responses.activate
def test_recovery_refuses_a_token_account_id_that_is_not_a_uuid_or_another_users_account() -> None:
    responses.post(TOKEN_URL, json=token_answer(account_id="../admin"))
    with pytest.raises(MalformedAnswer):
        make_client().account_id_of("stu-1")
    responses.post(TOKEN_URL, json=token_answer(2))
    responses.get(f"{BASE}/accounts/current", json={"id": ACC1, "external_user_id": "stu-9"})
    with pytest.raises(MalformedAnswer):
        make_client().account_id_of("stu-2")


# ------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("status", "message", "error", "kind"),
    [
        (422, "learning instance does not exist or is closed", InstanceUnavailable, None),
        (422, "already registered as instructor", AlreadyRegistered, "instructor"),
        (409, "Conflict", Unprocessable, None),
    ],
)
@responses.activate
def test_registration_refusals_raise_their_narrow_class(
    status: int, message: str, error: type[Exception], kind: str | None
) -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/registrations", status=status, json={"message": message})
    with pytest.raises(Unprocessable) as caught:
        make_client().create_registration(
            registration_type="learner", account_id=ACC1, learning_instance_id=INST1
        )
    assert type(caught.value) is error
    assert getattr(caught.value, "registered_type", None) == kind


# ------------------------------------------------------------------------ secrets

ECHO = f"echo Basic {BASIC} key-1:{SECRET} refresh_token=ref-1&x=1 Bearer acc-1"


@pytest.mark.parametrize(
    ("where", "status", "answer", "error"),
    [
        (
            "token",
            400,
            {"json": {"message": ECHO, "error_id": f"id {SECRET}"}},
            AuthenticationError,
        ),
        ("user-token", 400, {"json": {"message": ECHO}}, TokenRefused),
        ("api", 500, {"json": {"message": ECHO}}, ServerError),
        ("api", 422, {"json": {"message": ECHO, "error_id": "acc-1"}}, Unprocessable),
        ("api", 400, {"body": f"<html><title>{ECHO}</title></html>"}, ApiError),
        ("api", 400, {"body": ECHO, "content_type": "text/plain"}, ApiError),
        (
            "api",
            307,
            {"json": {}, "headers": {"Location": f"https://x.example/?t={SECRET}"}},
            ApiError,
        ),
        ("batch", 200, {"json": {"responses": [refused(ECHO)]}}, None),
    ],
)
@responses.activate
def test_echoed_secrets_appear_in_no_error_and_no_debug_log(
    where: str, status: int, answer: dict[str, Any], error: type[Exception] | None,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Tokens acc-1/ref-1 are issued, then refused (401), then the server echoes them all."""
    client = make_client()
    responses.post(TOKEN_URL, json=token_answer(1))
    url = {"batch": f"{BASE}/batch", "user-token": f"{BASE}/accounts/current"}.get(
        where, f"{BASE}/accounts"
    )
    responses.add("GET" if where == "user-token" else "POST", url, status=401, json={})
    if where in ("token", "user-token"):
        responses.post(TOKEN_URL, status=status, **answer)
    else:
        responses.post(TOKEN_URL, json=token_answer(2))
        responses.post(url, status=status, **answer)
    with caplog.at_level(logging.DEBUG, logger="kprov"):
        if where == "batch":
            [item] = client.batch_create_accounts(["s1"])
            shown = item.error_message or ""
        else:
            with pytest.raises(error or Exception) as caught:
                if where == "user-token":
                    client.account_id_of("s1")
                else:
                    client.create_account("s1")
            shown = f"{caught.value} {caught.value.__dict__}"
    for secret in (SECRET, BASIC, "acc-1", "ref-1"):
        assert secret not in shown
        assert secret not in caplog.text
    assert "<redacted>" in shown


@responses.activate
def test_a_bad_id_is_described_never_repeated() -> None:
    responses.post(TOKEN_URL, json=token_answer(1))
    responses.get(f"{BASE}/accounts/current", json={"id": "acc-1"})  # the live token, as an id
    with pytest.raises(MalformedAnswer) as caught:
        make_client().current_account()
    assert "acc-1" not in str(caught.value)
    assert "not a UUID (a 5-character text)" in str(caught.value)


@responses.activate
def test_absurdly_nested_json_is_malformed_not_a_recursion_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    responses.post(TOKEN_URL, json=token_answer(1))
    responses.get(f"{BASE}/accounts/current", body="[" * 200_000 + "]" * 200_000)
    with caplog.at_level(logging.DEBUG, logger="kprov"), pytest.raises(MalformedAnswer):
        make_client().current_account()
