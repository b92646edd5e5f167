"""How each request travels: fresh tokens after every wait, no redirects, caps, Ctrl-C."""

from __future__ import annotations

import threading

import pytest
import requests
import responses

from kprov.api.client import KnewtonClient
from kprov.api.errors import (
    ApiError,
    MalformedAnswer,
    NetworkError,
    RedirectRefused,
    ServerWaitTooLong,
)
from kprov.api.pacing import Pacer, RetryPolicy
from kprov.api.transport import Limits
from kprov.api.urls import UnsafeUrl
from kprov.credentials import Secret
from kprov.errors import Interrupted
from tests.mocked_api import ACC1, BASE, TOKEN_URL, FakeClock, form_of, make_client

CURRENT = f"{BASE}/accounts/current"


def short_token(n: int, lifetime: int = 10) -> dict[str, object]:
    return {"access_token": f"acc-{n}", "refresh_token": f"ref-{n}", "expires_in": lifetime}


@responses.activate
def test_a_token_that_aged_in_the_pacer_queue_is_renewed_before_it_is_sent() -> None:
    clock = FakeClock()
    pacer = Pacer(quotas={"GET": 1}, clock=clock, sleep=clock.sleep)  # one GET a minute
    responses.post(TOKEN_URL, json=short_token(1))  # lives 10 s, far less than a queue wait
    responses.post(TOKEN_URL, json=short_token(2))
    responses.get(CURRENT, json={"id": ACC1})
    client = make_client(clock, pacer=pacer)
    client.current_account()
    client.current_account()  # waits ~61 s for its slot: acc-1 is long dead by then
    gets = [c for c in responses.calls if c.request.url == CURRENT]
    assert [c.request.headers["Authorization"] for c in gets] == ["Bearer acc-1", "Bearer acc-2"]
    assert form_of(responses.calls[2]) == {"grant_type": "refresh_token", "refresh_token": "ref-1"}
    assert sum(clock.sleeps) >= 60  # the renewal came after the wait, not before it


@responses.activate
def test_a_401_renews_and_resends_a_bounded_number_of_times() -> None:
    for n in range(1, 6):
        responses.post(TOKEN_URL, json=short_token(n, 3600))
    responses.get(CURRENT, status=401, json={"message": "token expired"})
    with pytest.raises(ApiError) as caught:
        make_client().current_account()
    assert caught.value.status == 401
    gets = [c for c in responses.calls if c.request.url == CURRENT]
    assert len(gets) == 4  # the first send and three resends, each with a renewed token
    assert len({c.request.headers["Authorization"] for c in gets}) == 4


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@responses.activate
def test_redirects_are_refused_and_never_followed(status: int) -> None:
    responses.post(TOKEN_URL, json=short_token(1))
    responses.get(CURRENT, status=status, headers={"Location": "https://other.example/v0/x"})
    with pytest.raises(RedirectRefused) as caught:
        make_client().current_account()
    assert f"{status} -> https://other.example/v0/x" in str(caught.value)
    assert "does not follow redirects" in str(caught.value)
    assert caught.value.exit_code == 4
    assert [c.request.url for c in responses.calls] == [TOKEN_URL, CURRENT]


@responses.activate
def test_a_redirecting_token_endpoint_gets_no_second_copy_of_the_credentials() -> None:
    responses.post(TOKEN_URL, status=307, headers={"Location": "http://evil.example/token"})
    with pytest.raises(RedirectRefused, match=r"evil\.example"):
        make_client().token_for()
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("base", "token"),
    [
        ("http://api.example.test/v0", None),
        ("HTTP://API.EXAMPLE.TEST/v0", None),
        ("http://localhost:1@10.0.0.9/v0", None),
        ("https://api.example.test/v0", "http://auth.example.test/oauth/token"),
        ("https://api.example.test/v0", "https://user:pw@auth.example.test/token"),
        ("http://127.0.0.1.nip.io/v0", None),
    ],
)
def test_the_client_refuses_plain_http_and_hidden_hosts_itself(
    base: str, token: str | None
) -> None:
    with pytest.raises(UnsafeUrl) as caught:
        KnewtonClient(base_url=base, api_key="k", api_secret=Secret("s"), token_url=token)
    assert caught.value.exit_code == 3


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:8/v0", "http://[::1]:8/v0", "http://LOCALHOST./v0"]
)
def test_plain_http_to_this_machine_is_allowed(base: str) -> None:
    KnewtonClient(base_url=base, api_key="k", api_secret=Secret("s")).close()


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "100000"},
        {"X-Knewton-Rate-Delay": "100000000", "X-Knewton-Rate-Exceeded": "token-limited"},
        {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"},
    ],
)
@responses.activate
def test_a_server_asking_for_a_huge_wait_stops_the_call_at_once(headers: dict[str, str]) -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    responses.post(TOKEN_URL, json=short_token(1))
    responses.get(CURRENT, status=429, headers=headers, json={"message": "later"})
    with pytest.raises(ServerWaitTooLong) as caught:
        make_client(clock, pacer=pacer).current_account()
    assert "api.example.test:443 asked kprov to wait" in str(caught.value)
    assert caught.value.exit_code == 4
    assert sum(clock.sleeps) < 5
    pacer.acquire("someone-else", "GET /accounts/current")  # nobody else waits that long
    pacer.release("someone-else", "GET /accounts/current", status=200, headers={})
    assert sum(clock.sleeps) < 5


@responses.activate
def test_the_server_wait_cap_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPROV_MAX_SERVER_WAIT", "5")
    clock = FakeClock()
    responses.post(TOKEN_URL, json=short_token(1))
    responses.get(CURRENT, status=503, headers={"Retry-After": "3"}, json={})
    responses.get(CURRENT, status=503, headers={"Retry-After": "9"}, json={})
    with pytest.raises(ServerWaitTooLong, match="at most 5 s"):
        make_client(clock).current_account()
    assert 3 <= sum(clock.sleeps) < 5


@responses.activate
def test_nothing_is_sent_once_the_run_is_cancelled() -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Interrupted):
        make_client(cancel=cancel).create_account("s1")
    assert len(responses.calls) == 0


@responses.activate
def test_a_stop_during_a_backoff_wait_sends_nothing_more() -> None:
    cancel = threading.Event()
    responses.post(TOKEN_URL, json=short_token(1))
    responses.get(CURRENT, status=503, json={})
    client = KnewtonClient(
        base_url=BASE,
        api_key="k",
        api_secret=Secret("s"),
        retry=RetryPolicy(max_attempts=5, base_delay=30.0),
        cancel=cancel,
    )
    threading.Timer(0.2, cancel.set).start()  # Ctrl-C while waiting up to 30 s
    with pytest.raises(Interrupted):
        client.current_account()
    assert len([c for c in responses.calls if c.request.url == CURRENT]) == 1


@pytest.mark.parametrize(
    ("error", "words", "attempts"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused", 2),
        (requests.exceptions.ConnectTimeout("slow"), "timed out connecting", 4),
        (requests.exceptions.ReadTimeout("slow"), "timed out waiting for the answer", 4),
    ],
)
@responses.activate
def test_network_errors_name_host_and_port_and_what_happened(
    error: Exception, words: str, attempts: int
) -> None:
    responses.post(
        TOKEN_URL, body=requests.ConnectionError(error) if isinstance(error, OSError) else error
    )
    client = make_client(retry=RetryPolicy(max_attempts=4, base_delay=0.0, connect_attempts=2))
    with pytest.raises(NetworkError) as caught:
        client.token_for()
    text = str(caught.value)
    assert f"no answer from api.example.test:443: {words} ({attempts} attempts)" in text
    assert "rerun" not in text  # resume advice is the core's to give, for runs that resume
    assert len(responses.calls) == attempts


@pytest.mark.parametrize(
    ("body", "content_type"),
    [("not json", "text/plain"), ("[1, 2]", "application/json"), ("", "application/json")],
)
@responses.activate
def test_a_200_with_garbage_is_a_malformed_answer(body: str, content_type: str) -> None:
    responses.post(TOKEN_URL, json=short_token(1))
    responses.get(CURRENT, body=body, content_type=content_type)
    with pytest.raises(MalformedAnswer) as caught:
        make_client().current_account()
    assert caught.value.exit_code == 4


@pytest.mark.parametrize(
    "answer", ["<html>oops</html>", '{"access_token": 7}', '{"expires_in": 5}']
)
@responses.activate
def test_a_token_answer_without_a_token_is_malformed(answer: str) -> None:
    responses.post(TOKEN_URL, body=answer)
    with pytest.raises(MalformedAnswer):
        make_client().token_for()


@responses.activate
def test_an_answer_over_the_size_cap_is_refused() -> None:
    responses.post(TOKEN_URL, json=short_token(1))
    responses.get(CURRENT, body="x" * 5000)
    with pytest.raises(MalformedAnswer, match="larger than 4096 bytes"):
        make_client(limits=Limits(max_body=4096)).current_account()


def test_bad_deadline_or_wait_settings_are_configuration_errors() -> None:
    with pytest.raises(Exception, match="KPROV_REQUEST_DEADLINE"):
        Limits.from_env({"KPROV_REQUEST_DEADLINE": "soon"})
    with pytest.raises(Exception, match="KPROV_MAX_SERVER_WAIT"):
        Limits.from_env({"KPROV_MAX_SERVER_WAIT": "0"})
    assert Limits.from_env({"KPROV_REQUEST_DEADLINE": "2.5"}).deadline == 2.5


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@responses.activate
def test_a_slot_holder_never_waits_on_a_renewal_that_waits_for_its_slot() -> None:
    """One slot; A holds it with a token that aged meanwhile; B renews that token and needs
    the slot. A gives its slot back (Requeue) instead of waiting on B: no deadlock."""
    clock = _Clock()
    a_has_slot, b_waits = threading.Event(), threading.Event()

    class Staged(Pacer):
        def acquire(self, identity: str | None, endpoint: str, **kwargs: object) -> None:
            if endpoint.startswith("POST /oauth") and a_has_slot.is_set():
                b_waits.set()
            super().acquire(identity, endpoint, **kwargs)  # type: ignore[arg-type]
            if endpoint == "GET /accounts/current" and not a_has_slot.is_set():
                clock.now = 95.0  # the token aged while A queued
                a_has_slot.set()
                assert b_waits.wait(5)

    responses.post(TOKEN_URL, json=short_token(1, 100))
    responses.post(TOKEN_URL, json=short_token(2, 100))
    responses.get(CURRENT, json={"id": ACC1})
    client = KnewtonClient(
        base_url=BASE, api_key="k", api_secret=Secret("s"), pacer=Staged(ceiling=1), clock=clock
    )
    client.token_for()
    a = threading.Thread(target=client.current_account, daemon=True)
    a.start()
    assert a_has_slot.wait(5)
    b = threading.Thread(target=client.token_for, daemon=True)
    b.start()
    a.join(5)
    b.join(5)
    assert not a.is_alive() and not b.is_alive()
    [get] = [c for c in responses.calls if c.request.url == CURRENT]
    assert get.request.headers["Authorization"] == "Bearer acc-2"
    assert len([c for c in responses.calls if c.request.url == TOKEN_URL]) == 2


@responses.activate
def test_many_threads_needing_a_token_cause_one_mint() -> None:
    responses.post(TOKEN_URL, json=short_token(1, 3600))
    responses.get(CURRENT, json={"id": ACC1})
    client = make_client()
    workers = [threading.Thread(target=client.current_account) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(5)
    assert len([c for c in responses.calls if c.request.url == TOKEN_URL]) == 1
    assert len([c for c in responses.calls if c.request.url == CURRENT]) == 8
