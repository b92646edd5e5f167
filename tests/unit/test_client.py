"""The API client against canned HTTP answers (responses): exact request shapes and recovery."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
import requests
import responses

from kprov.api.errors import (
    AuthenticationError,
    NetworkError,
    NotFound,
    PermissionDenied,
    ServerError,
    TokenRefused,
    Unprocessable,
)
from kprov.api.pacing import Pacer, parse_retry_after
from kprov.credentials import Secret
from tests.mocked_api import (
    ACC1,
    ACC2,
    ACC5,
    BASE,
    INST1,
    INST2,
    REG1,
    SECRET,
    TOKEN_URL,
    FakeClock,
    form_of,
    make_client,
    token_answer,
)


@responses.activate
def test_admin_token_request_is_form_encoded_with_basic_auth_and_no_scope() -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.get(f"{BASE}/accounts/current", json={"id": ACC1, "external_user_id": "admin"})
    account = make_client().current_account()
    token_call = responses.calls[0]
    assert token_call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    expected = base64.b64encode(f"key-1:{SECRET}".encode()).decode()
    assert token_call.request.headers["Authorization"] == f"Basic {expected}"
    assert form_of(token_call) == {"grant_type": "client_credentials"}
    assert responses.calls[1].request.headers["Authorization"] == "Bearer acc-1"
    assert account.id == ACC1


@responses.activate
def test_admin_scope_is_sent_when_the_profile_names_the_admin_external_id() -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.get(f"{BASE}/accounts/current", json={"id": ACC1})
    make_client(admin_external_id="sys-admin").current_account()
    assert form_of(responses.calls[0]) == {"grant_type": "client_credentials", "scope": "sys-admin"}


@responses.activate
def test_user_token_uses_scope_and_is_cached_per_user() -> None:
    responses.post(TOKEN_URL, json=token_answer(7))
    responses.post(
        f"{BASE}/registrations",
        json={"id": REG1, "type": "learner", "account_id": ACC2, "learning_instance_id": INST1},
    )
    client = make_client()
    for _ in range(3):
        client.create_registration(
            registration_type="learner",
            account_id=ACC2,
            learning_instance_id=INST1,
            as_user="teacher-9",
        )
    token_calls = [c for c in responses.calls if c.request.url == TOKEN_URL]
    assert len(token_calls) == 1
    assert form_of(token_calls[0]) == {"grant_type": "client_credentials", "scope": "teacher-9"}


@responses.activate
def test_expired_token_is_refreshed_once_and_the_call_retried() -> None:
    responses.post(TOKEN_URL, json=token_answer(1))
    responses.post(TOKEN_URL, json=token_answer(2))
    responses.get(f"{BASE}/accounts/current", status=401, json={"message": "token expired"})
    responses.get(f"{BASE}/accounts/current", json={"id": ACC1})
    assert make_client().current_account().id == ACC1
    assert form_of(responses.calls[2]) == {"grant_type": "refresh_token", "refresh_token": "ref-1"}
    assert responses.calls[3].request.headers["Authorization"] == "Bearer acc-2"


@responses.activate
def test_failed_refresh_falls_back_to_client_credentials() -> None:
    responses.post(TOKEN_URL, json=token_answer(1))
    responses.post(TOKEN_URL, status=400, json={"message": "invalid refresh token"})
    responses.post(TOKEN_URL, json=token_answer(3))
    responses.get(f"{BASE}/accounts/current", status=401, json={"message": "expired"})
    responses.get(f"{BASE}/accounts/current", json={"id": ACC1})
    assert make_client().current_account().id == ACC1
    assert form_of(responses.calls[3]) == {"grant_type": "client_credentials"}
    assert responses.calls[4].request.headers["Authorization"] == "Bearer acc-3"


@responses.activate
def test_token_close_to_expiry_is_renewed_before_use() -> None:
    clock = FakeClock()
    responses.post(
        TOKEN_URL, json={"access_token": "short", "refresh_token": "r", "expires_in": 60}
    )
    responses.post(TOKEN_URL, json=token_answer(2))
    responses.get(f"{BASE}/accounts/current", json={"id": ACC1})
    client = make_client(clock)
    client.current_account()
    clock.now += 55  # a short lifetime is renewed a tenth before it ends (here 6 s)

    client.current_account()
    assert form_of(responses.calls[2]) == {"grant_type": "refresh_token", "refresh_token": "r"}


@responses.activate
def test_refused_credentials_raise_authentication_error_with_exit_code_3() -> None:
    responses.post(TOKEN_URL, status=401, json={"message": "bad client", "error_id": "e-9"})
    with pytest.raises(AuthenticationError) as caught:
        make_client().current_account()
    assert caught.value.exit_code == 3
    assert caught.value.error_id == "e-9"
    assert SECRET not in str(caught.value)


@responses.activate
def test_unknown_user_scope_raises_token_refused() -> None:
    responses.post(TOKEN_URL, status=400, json={"message": "no such user"})
    with pytest.raises(TokenRefused):
        make_client().account_id_of("nobody")


@responses.activate
def test_server_errors_are_retried_with_backoff_then_succeed() -> None:
    clock = FakeClock()
    responses.post(TOKEN_URL, json=token_answer())
    responses.get(f"{BASE}/accounts/current", status=503, json={"message": "down"})
    responses.get(f"{BASE}/accounts/current", status=502, body="bad gateway")
    responses.get(f"{BASE}/accounts/current", json={"id": ACC1})
    assert make_client(clock).current_account().id == ACC1
    assert len(clock.sleeps) == 2
    assert all(0 <= s <= 0.02 for s in clock.sleeps)


@responses.activate
def test_server_errors_past_the_attempt_limit_raise_with_outcome_unknown() -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/accounts", status=500, json={"message": "boom", "error_id": "x1"})
    with pytest.raises(ServerError) as caught:
        make_client().create_account("stu-1")
    assert caught.value.outcome_unknown
    assert len([c for c in responses.calls if str(c.request.url).endswith("/accounts")]) == 4


@pytest.mark.parametrize(
    ("status", "error"),
    [(403, PermissionDenied), (404, NotFound), (422, Unprocessable), (409, Unprocessable)],
)
@responses.activate
def test_client_errors_are_not_retried(status: int, error: type[Exception]) -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/accounts", status=status, json={"message": "no", "error_id": "i-1"})
    with pytest.raises(error):
        make_client().create_account("stu-1")
    assert len([c for c in responses.calls if str(c.request.url).endswith("/accounts")]) == 1


@responses.activate
def test_429_with_retry_after_delays_that_request_and_does_not_spend_attempts() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    responses.post(TOKEN_URL, json=token_answer())
    for _ in range(5):  # more 429s than max_attempts: 429 means nothing was processed
        responses.get(
            f"{BASE}/accounts/current",
            status=429,
            headers={"Retry-After": "2"},
            json={"message": "slow down"},
        )
    responses.get(f"{BASE}/accounts/current", json={"id": ACC1})
    client = make_client(clock, pacer=pacer)
    assert client.current_account().id == ACC1
    assert pacer.rate_limited_count == 5
    assert sum(clock.sleeps) >= 10  # the refused request waited 2 s before each resend


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("junk") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@responses.activate
def test_connection_errors_are_retried_then_raise_network_error() -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/batch", body=requests.ConnectionError("reset"))
    with pytest.raises(NetworkError) as caught:
        make_client().batch_create_accounts(["a"])
    assert caught.value.outcome_unknown
    assert caught.value.exit_code == 4


@responses.activate
def test_batch_maps_account_id_and_per_item_errors_in_order() -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(
        f"{BASE}/batch",
        json={
            "responses": [
                {"code": 200, "body": {"external_user_id": "a", "account_id": ACC1}},
                {"code": 422, "body": {"code": 422, "error_message": "Duplicate account with b"}},
            ]
        },
    )
    first, second = make_client().batch_create_accounts(["a", "b"])
    sent = json.loads(responses.calls[1].request.body or b"")
    assert sent["requests"][0] == {
        "method": "post",
        "relative_url": "/accounts",
        "body": {"external_user_id": "a"},
    }
    assert (first.ok, first.account_id) == (True, ACC1)
    assert (second.ok, second.status, second.error_message) == (
        False,
        422,
        "Duplicate account with b",
    )


def test_batch_refuses_more_than_fifty_requests_without_sending() -> None:
    with responses.RequestsMock() as mocked, pytest.raises(ValueError):
        make_client().batch_create_accounts([f"u{i}" for i in range(51)])
    assert len(mocked.calls) == 0


@responses.activate
def test_create_account_reads_id_not_account_id() -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/accounts", json={"external_user_id": "abc", "id": ACC1})
    assert make_client().create_account("abc").id == ACC1


@pytest.mark.parametrize("naming", [{"scope": "stu-1"}, {"external_user_id": "stu-1"}])
@responses.activate
def test_account_id_of_uses_the_token_account_id_when_the_token_answer_names_the_user(
    naming: dict[str, Any],
) -> None:
    responses.post(TOKEN_URL, json=token_answer(account_id=ACC2, **naming))
    assert make_client().account_id_of("stu-1") == ACC2
    assert len(responses.calls) == 1  # no GET: reads have the smallest quota


@responses.activate
def test_account_id_of_falls_back_to_accounts_current_under_the_users_token() -> None:
    responses.post(TOKEN_URL, json=token_answer(5))
    responses.get(f"{BASE}/accounts/current", json={"id": ACC5, "external_user_id": "stu-5"})
    assert make_client().account_id_of("stu-5") == ACC5
    assert responses.calls[1].request.headers["Authorization"] == "Bearer acc-5"


@responses.activate
def test_request_label_and_test_header_are_sent() -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/accounts", json={"id": ACC1})
    make_client(request_label="kprov-run1", test_accounts=True).create_account("abc")
    sent = responses.calls[1].request.headers
    assert sent["request-label"] == "kprov-run1"
    assert sent["X-Knewton-Test"] == "true"


@responses.activate
def test_debug_log_redacts_secrets_and_tokens(caplog: pytest.LogCaptureFixture) -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(TOKEN_URL, json=token_answer(2))
    responses.get(f"{BASE}/accounts/current", status=401, json={"message": "expired"})
    responses.get(f"{BASE}/accounts/current", json={"id": ACC1})
    with caplog.at_level(logging.DEBUG, logger="kprov.http"):
        client = make_client()
        client.current_account()
    text = caplog.text + repr(client.__dict__)
    assert "accounts/current" in caplog.text
    for secret in (SECRET, "acc-1", "ref-1", "acc-2", "ref-2"):
        assert secret not in text
    assert base64.b64encode(f"key-1:{SECRET}".encode()).decode() not in caplog.text


def test_secret_never_shows_in_repr() -> None:
    assert SECRET not in repr(Secret(SECRET))
    assert SECRET not in str(Secret(SECRET))


@responses.activate
def test_an_instance_created_on_a_resend_after_a_lost_answer_is_flagged() -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/learning-instances", status=500, json={"message": "oops"})
    responses.post(f"{BASE}/learning-instances", json={"id": INST1, "name": "A"})
    responses.post(f"{BASE}/learning-instances", status=503, json={"message": "busy"})
    responses.post(f"{BASE}/learning-instances", json={"id": INST2, "name": "B"})
    client = make_client()
    assert client.create_learning_instance(graph_id="g", name="A").possible_duplicate
    assert not client.create_learning_instance(graph_id="g", name="B").possible_duplicate
