"""Trust, round three, at the client: a server that refuses for ever, names an id twice,
upper-cases its ids, hides its token endpoint or quotes credentials. Canned answers
(responses) and a fake clock: every test runs in milliseconds."""

from __future__ import annotations

import threading

import pytest
import requests
import responses

from kprov.api.errors import (
    AuthenticationError,
    MalformedAnswer,
    ServerError,
    ServerKeptRefusing,
    ServerWaitTooLong,
    TokenEndpointNotFound,
)
from kprov.api.limits import Limits
from kprov.api.pacing import Pacer, RetryPolicy
from kprov.errors import ExitCode, Interrupted
from tests.mocked_api import (
    ACC1,
    BASE,
    INST1,
    REG1,
    SECRET,
    TOKEN_URL,
    FakeClock,
    make_client,
    token_answer,
)

SPELLINGS = [
    {"Retry-After": "1"},
    {"Retry-After": "0.5"},
    {"Retry-After": "nan"},
    {"Retry-After": "-5"},
    {"Retry-After": "soon"},
    {"Retry-After": ""},
    {},
    {"X-Knewton-Rate-Delay": "nan", "X-Knewton-Rate-Exceeded": "token-limited"},
    {"X-Knewton-Rate-Delay": "-100"},
    {"X-Knewton-Rate-Delay": "250.5", "X-Knewton-Rate-Exceeded": "ip-limited"},
    {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
]


def paced_client(clock: FakeClock, **kwargs: object) -> object:
    pacer = Pacer(quotas={"GET": 15}, clock=clock, sleep=clock.sleep)
    return make_client(clock, pacer=pacer, **kwargs)


@pytest.mark.parametrize("headers", SPELLINGS, ids=[str(h) for h in SPELLINGS])
@responses.activate
def test_a_429_for_ever_ends_the_call_within_the_budget_naming_host_and_answers(
    headers: dict[str, str],
) -> None:
    clock = FakeClock()
    responses.post(TOKEN_URL, json=token_answer())
    responses.get(f"{BASE}/accounts/current", status=429, headers=headers, json={"m": "slow"})
    client = paced_client(clock, retry=RetryPolicy(max_attempts=6, max_rate_limit_waits=10**6))
    started = clock.now
    with pytest.raises(ServerKeptRefusing) as caught:
        client.current_account()  # type: ignore[attr-defined]
    error = caught.value
    assert clock.now - started <= 120  # the default budget, never overrun by a wait
    assert error.exit_code == ExitCode.API and not error.outcome_unknown
    assert "api.example.test:443 has refused every GET /accounts/current request" in str(error)
    assert "429" in str(error) and "KPROV_MAX_SERVER_WAIT" in str(error)


@pytest.mark.parametrize("value", ["inf", "1e999", "99999999999999999999"])
@responses.activate
def test_an_absurd_wait_ends_the_call_at_once(value: str) -> None:
    clock = FakeClock()
    responses.post(TOKEN_URL, json=token_answer())
    responses.get(f"{BASE}/accounts/current", status=429, headers={"Retry-After": value})
    with pytest.raises(ServerWaitTooLong):
        paced_client(clock).current_account()  # type: ignore[attr-defined]
    assert clock.now - 1000.0 < 1


@responses.activate
def test_a_503_storm_is_bounded_by_the_same_budget_and_proves_nothing_was_applied() -> None:
    clock = FakeClock()
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/learning-instances", status=503, headers={"Retry-After": "20"})
    client = make_client(
        clock, retry=RetryPolicy(max_attempts=1000, base_delay=1), limits=Limits(max_server_wait=60)
    )
    with pytest.raises(ServerKeptRefusing) as caught:
        client.create_learning_instance(graph_id="g", name="n")
    assert clock.now - 1000.0 <= 60
    assert "answered 503" in str(caught.value) and "(Retry-After: 20)" in str(caught.value)
    assert not caught.value.outcome_unknown  # a 503 says "not processed"


@responses.activate
def test_a_success_in_between_starts_the_count_again() -> None:
    clock = FakeClock()
    responses.post(TOKEN_URL, json=token_answer())
    client = make_client(clock, limits=Limits(max_server_wait=30))
    for _round in range(4):  # 4 x (20 s of 429s, then an answer): 80 s, never 30 in a row
        for _ in range(2):
            responses.get(f"{BASE}/accounts/current", status=429, headers={"Retry-After": "10"})
        responses.get(f"{BASE}/accounts/current", json={"id": ACC1})
        assert client.current_account().id == ACC1
    assert clock.now - 1000.0 >= 80


@responses.activate
def test_a_stop_while_waiting_after_503s_says_nothing_was_applied() -> None:
    cancel = threading.Event()

    class StoppedWhileWaiting(FakeClock):
        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            cancel.set()  # Ctrl-C during the backoff

    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/learning-instances", status=503)
    client = make_client(StoppedWhileWaiting(), cancel=cancel)
    with pytest.raises(Interrupted) as caught:
        client.create_learning_instance(graph_id="g", name="n")
    assert caught.value.outcome_unknown is False


@pytest.mark.parametrize(("status", "unknown"), [(503, False), (502, True), (500, True)])
@responses.activate
def test_only_a_5xx_that_may_follow_a_change_leaves_the_outcome_unknown(
    status: int, unknown: bool
) -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/learning-instances", status=status, body="<html>proxy</html>")
    with pytest.raises(ServerError) as caught:
        make_client(retry=RetryPolicy(max_attempts=1)).create_learning_instance(
            graph_id="g", name="n"
        )
    assert caught.value.outcome_unknown is unknown


# ------------------------------------------------------------------ ambiguous answers


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/learning-instances", f'{{"id": "{INST1}", "name": "n", "id": "{ACC1}"}}'),
        (
            "POST",
            "/registrations",
            f'{{"id": "{REG1}", "type": "learner", "account_id": "{ACC1}", '
            f'"learning_instance_id": "{INST1}", "id": "{ACC1}"}}',
        ),
        (
            "POST",
            "/batch",
            f'{{"responses": [{{"code": 200, "body": {{"external_user_id": "s1", '
            f'"account_id": "{ACC1}", "account_id": "{INST1}"}}}}]}}',
        ),
    ],
    ids=["instance", "registration", "batch item"],
)
@responses.activate
def test_an_answer_naming_a_key_twice_is_malformed_and_yields_nothing(
    method: str, path: str, body: str
) -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.add(method, f"{BASE}{path}", body=body, content_type="application/json")
    client = make_client()
    with pytest.raises(MalformedAnswer, match="twice in one object"):
        if path == "/learning-instances":
            client.create_learning_instance(graph_id="g", name="n")
        elif path == "/registrations":
            client.create_registration(
                registration_type="learner", account_id=ACC1, learning_instance_id=INST1
            )
        else:
            client.batch_create_accounts(["s1"])


@responses.activate
def test_a_token_answer_naming_a_key_twice_is_malformed() -> None:
    responses.post(
        TOKEN_URL,
        body='{"access_token": "acc-1", "expires_in": 60, "access_token": "acc-2"}',
        content_type="application/json",
    )
    with pytest.raises(MalformedAnswer, match="names a field twice"):
        make_client().token_for()


@responses.activate
def test_upper_cased_ids_are_stored_and_sent_in_canonical_form() -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(f"{BASE}/learning-instances", json={"id": INST1.upper(), "name": "n"})
    responses.get(f"{BASE}/learning-instances/{INST1}", json={"id": INST1.upper(), "name": "n"})
    client = make_client()
    created = client.create_learning_instance(graph_id="g", name="n")
    assert created.id == INST1
    assert client.get_learning_instance(INST1.upper()).id == INST1
    assert responses.calls[-1].request.url == f"{BASE}/learning-instances/{INST1}"


# ------------------------------------------------------------------ the token endpoint


@responses.activate
def test_a_404_from_the_token_endpoint_is_a_configuration_error_naming_the_base_url() -> None:
    responses.post(TOKEN_URL, status=404, body="<html><title>404 Not Found</title></html>")
    with pytest.raises(TokenEndpointNotFound) as caught:
        make_client().token_for("a-learner")  # a user's token too: not a per-row failure
    error = caught.value
    assert error.exit_code == ExitCode.CONFIG
    assert f"no token endpoint at {TOKEN_URL}" in str(error)
    assert f"base URL ({BASE})" in str(error) and "(/v0)" in str(error)


@responses.activate
def test_a_refused_secret_is_told_where_it_came_from() -> None:
    responses.post(TOKEN_URL, status=401, json={"message": "invalid client"})
    hint = "the secret came from file: /etc/kprov/secret (KPROV_API_SECRET_FILE)"
    with pytest.raises(AuthenticationError) as caught:
        make_client(refused_hint=hint).token_for()
    assert caught.value.hint == hint


@responses.activate
def test_a_token_error_is_shown_only_as_a_short_escaped_excerpt() -> None:
    quoted = "bad credentials \x1b]0;x\x07 " + "".join(f"&#{ord(c)};" for c in SECRET) + "z" * 500
    responses.post(TOKEN_URL, status=400, json={"message": quoted})
    with pytest.raises(AuthenticationError) as caught:
        make_client().token_for()
    message = caught.value.api_message
    assert len(message) <= 120 and "<redacted>" in message
    assert "\x1b" not in message and "\\x1b]0;x\\x07" in message


def test_refused_secret_advice_names_each_source_as_config_show_does() -> None:
    from kprov.credentials import Source, refused_secret_hint

    file_source = Source("file", "/etc/kprov/secret (KPROV_API_SECRET_FILE)")
    assert "file: /etc/kprov/secret (KPROV_API_SECRET_FILE)" in refused_secret_hint(
        file_source, "prod"
    )
    assert "auth login" not in refused_secret_hint(file_source, "prod")
    assert "auth login" in refused_secret_hint(Source("keyring", "service kprov"), "prod")
    assert "KPROV_API_SECRET" in refused_secret_hint(Source("env", "KPROV_API_SECRET"), "p")


def test_a_connection_refused_proves_nothing_was_applied() -> None:
    with responses.RequestsMock() as mock:
        mock.post(TOKEN_URL, json=token_answer())
        mock.post(f"{BASE}/learning-instances", body=requests.ConnectionError("refused"))
        client = make_client(retry=RetryPolicy(max_attempts=2, base_delay=0.001))
        with pytest.raises(Exception) as caught:
            client.create_learning_instance(graph_id="g", name="n")
    assert caught.value.outcome_unknown is True  # type: ignore[attr-defined]
