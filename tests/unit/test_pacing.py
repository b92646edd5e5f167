"""The Pacer facade: quota tables, sliding windows, reservations, 429 scopes, cancellation."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
import responses

from kprov.api.client import KnewtonClient
from kprov.api.pacing import (
    DOCUMENTED_QUOTAS,
    Pacer,
    Reservation,
    RetryPolicy,
    endpoint_of,
    parse_quotas,
)
from kprov.api.rate import POLL
from kprov.config import Profile, quotas_for
from kprov.credentials import Secret
from kprov.errors import ConfigError, Interrupted
from tests.mocked_api import BASE, TOKEN_URL, FakeClock, token_answer

RTT = 0.02  # every simulated answer comes back this long after its send


def send(pacer: Pacer, clock: FakeClock, endpoint: str, identity: str | None = None) -> None:
    """One successful attempt through the facade, answered RTT later."""
    pacer.acquire(identity, endpoint)
    clock.now += RTT
    pacer.release(identity, endpoint, status=200, headers={})


def test_endpoint_keys_use_templates() -> None:
    assert endpoint_of("delete", "/registrations/abc-1") == "DELETE /registrations/{id}"
    assert endpoint_of("GET", "/accounts/current") == "GET /accounts/current"
    assert endpoint_of("POST", "/batch") == "POST /batch"
    assert endpoint_of("POST", "/oauth/token") == "POST /oauth/token"


def test_quota_specs() -> None:
    assert parse_quotas("off") == {}
    assert parse_quotas("documented") == DOCUMENTED_QUOTAS
    assert parse_quotas("POST /batch=120")["POST /batch"] == 120
    assert parse_quotas("delete  /registrations=10")["DELETE /registrations"] == 10
    with pytest.raises(ValueError):
        parse_quotas("POST /batch=fast")


def test_profile_and_env_choose_the_quotas() -> None:
    profile = Profile("p", "https://x.test/v0", "k", rate_limits={"POST /batch": 200})
    assert quotas_for(profile, env={})["POST /batch"] == 200
    assert quotas_for(profile, env={})["GET"] == 15
    assert quotas_for(profile, env={"KPROV_RATE_LIMITS": "off"}) == {}
    off = Profile("p", "https://x.test/v0", "k", rate_limits_off=True)
    assert quotas_for(off, env={}) == {}
    with pytest.raises(ConfigError):
        quotas_for(profile, env={"KPROV_RATE_LIMITS": "lots"})


# What /work/shared/api/NOTES.md "Limits" documents, copied independently of the code's table:
# (sends allowed, per seconds). DELETE /learning-instances has no documented figure; it is
# held to DELETE /accounts' (the strictest documented DELETE) rather than left unpaced.
DOCUMENTED = {
    "POST /batch": (90, 60.0),
    "POST /accounts": (750, 60.0),
    "POST /learning-instances": (750, 60.0),
    "POST /registrations": (375, 60.0),
    "DELETE /registrations/{id}": (375, 60.0),
    "DELETE /accounts/{id}": (150, 60.0),
    "DELETE /learning-instances/{id}": (150, 60.0),
    "GET /accounts/{id}": (15, 60.0),
    "GET /accounts/current": (15, 60.0),
    "GET /learning-instances/{id}": (15, 60.0),
    "GET /registrations/{id}": (15, 60.0),
    "POST /oauth/token": (100, 1.0),
}


class SpyPacer(Pacer):
    def __init__(self) -> None:
        super().__init__()
        self.endpoints: set[str] = set()

    def acquire(self, identity: str | None, endpoint: str, **kwargs: object) -> None:
        self.endpoints.add(endpoint)
        super().acquire(identity, endpoint, **kwargs)  # type: ignore[arg-type]


@responses.activate
def test_every_request_the_client_makes_is_paced_at_its_documented_quota() -> None:
    """Each request kind goes through the real client (endpoint_of) and the real table."""
    spy = SpyPacer()
    client = KnewtonClient(base_url=BASE, api_key="k", api_secret=Secret("s"), pacer=spy)
    responses.post(TOKEN_URL, json=token_answer())
    account, instance, registration = (f"00000000-0000-4000-8000-00000000000{n}" for n in "abc")
    reg = {"type": "learner", "account_id": account, "learning_instance_id": instance}

    def echo(request: Any) -> tuple[int, dict[str, str], str]:
        """GET answers name what was asked for (the client checks they do)."""
        kind, _, ident = request.url[len(BASE) + 1 :].partition("/")
        bodies = {
            "accounts": {"id": ident, "external_user_id": "u"},
            "learning-instances": {"id": ident, "graph_id": "g", "name": "n"},
            "registrations": {"id": ident, **reg},
        }
        if ident == "current":
            return 200, {}, json.dumps({"id": account, "external_user_id": "admin"})
        return 200, {}, json.dumps(bodies[kind])

    any_id = re.compile(rf"{re.escape(BASE)}/[a-z-]+/[a-z0-9-]+$")
    responses.add_callback("GET", any_id, callback=echo)
    responses.delete(any_id, status=204)
    responses.post(f"{BASE}/accounts", json={"id": account, "external_user_id": "u"})
    responses.post(f"{BASE}/learning-instances", json={"id": instance, "name": "n"})
    responses.post(f"{BASE}/registrations", json={"id": registration, **reg})
    batch = {"responses": [{"code": 200, "body": {"account_id": account, "external_user_id": "u"}}]}
    responses.post(f"{BASE}/batch", json=batch)
    client.create_account("u")
    client.batch_create_accounts(["u"])
    client.get_account(account)
    client.current_account()
    client.delete_account(account)
    client.create_learning_instance(graph_id="g", name="n")
    client.get_learning_instance(instance)
    client.delete_learning_instance(instance)
    client.create_registration(
        registration_type="learner", account_id=account, learning_instance_id=instance
    )
    client.get_registration(registration)
    client.delete_registration(registration)
    assert spy.endpoints == set(DOCUMENTED)  # a new kind of request must be added here

    for endpoint, (limit, window) in DOCUMENTED.items():
        clock = FakeClock()
        pacer = Pacer(quotas=DOCUMENTED_QUOTAS, clock=clock, sleep=clock.sleep)
        for n in range(limit):  # a whole window's quota at once (many users for the token one)
            user = f"user-{n}" if endpoint == "POST /oauth/token" else None
            pacer.acquire(user, endpoint)
            pacer.release(user, endpoint, status=200, headers={})
        assert clock.sleeps == [], endpoint
        pacer.acquire(None, endpoint)  # one more: waits for the first to leave the window
        assert sum(clock.sleeps) == pytest.approx(window, abs=0.02), endpoint


def test_a_bucket_spends_its_quota_at_once_then_slides_with_the_window() -> None:
    clock = FakeClock()
    pacer = Pacer(quotas={"POST /batch": 90}, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(101):
        send(pacer, clock, "POST /batch")
    # 90 back to back (1.8 s), then the 91st waits until the 1st answer is a minute old and
    # the last 11 follow the first 11 out of the window: ~60.3 s, not 101 * 60/90 = 67 s.
    assert clock.now - start == pytest.approx(RTT + 60 + 11 * RTT, abs=0.02)


def test_try_reserve_says_exactly_when_the_bucket_admits_one() -> None:
    clock = FakeClock()
    pacer = Pacer(quotas={"POST /registrations": 3}, clock=clock, sleep=clock.sleep)
    reservations = [pacer.try_reserve("t1", "POST /registrations") for _ in range(3)]
    assert isinstance(pacer.try_reserve("t2", "POST /registrations"), Reservation)  # own bucket
    wait = pacer.try_reserve("t1", "POST /registrations")
    assert isinstance(wait, float) and wait > 0  # reserved, not yet answered: they count
    clock.now += 5
    for reservation in reservations:
        assert isinstance(reservation, Reservation)
        with pacer.using(reservation):
            send(pacer, clock, "POST /registrations", "t1")
    clock.now += 10
    wait = pacer.try_reserve("t1", "POST /registrations")
    assert wait == pytest.approx(60 - 10 - 2 * RTT, abs=0.02)  # the 1st answer + 60 s
    assert isinstance(wait, float)
    clock.now += wait
    assert isinstance(pacer.try_reserve("t1", "POST /registrations"), Reservation)
    assert clock.sleeps == []  # never blocks


def test_a_reservation_is_spent_by_the_next_send_on_its_bucket_or_given_back() -> None:
    clock = FakeClock()
    pacer = Pacer(quotas={"POST /registrations": 2, "POST /oauth/token": 6000}, clock=clock)
    reservation = pacer.try_reserve("t1", "POST /registrations")
    assert isinstance(reservation, Reservation)
    with pacer.using(reservation):
        send(pacer, clock, "POST /oauth/token", "t1")  # another bucket: not spent on it
        send(pacer, clock, "POST /registrations", "t1")  # spends it: 1 of 2 used
    assert isinstance(pacer.try_reserve("t1", "POST /registrations"), Reservation)  # 2 of 2
    assert isinstance(pacer.try_reserve("t1", "POST /registrations"), float)

    clock2 = FakeClock()
    pacer2 = Pacer(quotas={"POST /registrations": 1}, clock=clock2)
    unused = pacer2.try_reserve("t1", "POST /registrations")
    assert isinstance(unused, Reservation)
    with pacer2.using(unused):
        pass  # the task ended before sending
    assert isinstance(pacer2.try_reserve("t1", "POST /registrations"), Reservation)


def test_buckets_are_per_token_and_endpoint_and_every_get_shares_one() -> None:
    clock = FakeClock()
    pacer = Pacer(quotas={"POST /registrations": 1, "GET": 1}, clock=clock, sleep=clock.sleep)
    for teacher in ("t1", "t2", "t3"):
        send(pacer, clock, "POST /registrations", teacher)
    send(pacer, clock, "GET /accounts/current", "t1")
    assert clock.sleeps == []  # different tokens or endpoints never wait for each other
    send(pacer, clock, "GET /registrations/{id}", "t1")  # every GET shares one quota
    assert sum(clock.sleeps) == pytest.approx(60, abs=0.05)


def test_token_requests_share_one_bucket_per_second_whoever_asks() -> None:
    clock = FakeClock()
    pacer = Pacer(quotas=DOCUMENTED_QUOTAS, clock=clock, sleep=clock.sleep)
    for n in range(100):
        pacer.acquire(f"user-{n}", "POST /oauth/token")
        pacer.release(f"user-{n}", "POST /oauth/token", status=200, headers={})
    assert clock.sleeps == []
    pacer.acquire("someone-else", "POST /oauth/token")
    assert sum(clock.sleeps) == pytest.approx(1.0, abs=0.02)


def test_unlisted_endpoints_and_quotas_off_are_not_held() -> None:
    clock = FakeClock()
    pacer = Pacer(quotas={}, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        send(pacer, clock, "POST /batch")
    assert clock.sleeps == []


def test_token_limited_429_holds_that_bucket_only_and_longer_each_time() -> None:
    clock = FakeClock()
    pacer = Pacer(quotas=DOCUMENTED_QUOTAS, clock=clock, sleep=clock.sleep)
    limited = {"X-Knewton-Rate-Exceeded": "token-limited"}
    pacer.acquire("t1", "POST /registrations")
    for hold in (1.0, 2.0, 4.0):
        clock.now += RTT
        assert pacer.release("t1", "POST /registrations", status=429, headers=limited) == 0.0
        before = clock.now
        send(pacer, clock, "POST /registrations", "t2")  # another token: not held
        send(pacer, clock, "POST /batch", "t1")  # another endpoint: not held
        assert clock.now - before == pytest.approx(2 * RTT)
        pacer.acquire("t1", "POST /registrations")  # the held bucket waits
        assert clock.now - before == pytest.approx(hold, abs=0.06)
    clock.now += RTT
    pacer.release("t1", "POST /registrations", status=200, headers={})  # resets the back-off
    pacer.acquire("t1", "POST /registrations")
    pacer.release("t1", "POST /registrations", status=429, headers=limited)
    before = clock.now
    pacer.acquire("t1", "POST /registrations")
    assert clock.now - before == pytest.approx(1.0, abs=0.06)
    assert pacer.rate_limited_count == 4
    assert pacer.rate.accepted_max is None  # token-limited says nothing about the IP's rate


def test_token_limited_429_with_retry_after_delays_that_request() -> None:
    clock = FakeClock()
    pacer = Pacer(quotas={}, clock=clock, sleep=clock.sleep)
    pacer.acquire("t1", "POST /registrations")
    headers = {"X-Knewton-Rate-Exceeded": "token-limited", "Retry-After": "3"}
    assert pacer.release("t1", "POST /registrations", status=429, headers=headers) == 3.0
    pacer.acquire("t1", "POST /registrations")
    headers = {"X-Knewton-Rate-Exceeded": "token-limited"}  # no quota known: a little, each time
    assert pacer.release("t1", "POST /registrations", status=429, headers=headers) == 1.0


def test_retry_after_delays_the_refused_request_not_the_others() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    for _ in range(50):
        send(pacer, clock, "POST /registrations")
    pacer.acquire(None, "POST /registrations")
    clock.now += RTT
    headers = {"Retry-After": "1", "X-Knewton-Rate-Exceeded": "ip-limited"}
    assert pacer.release(None, "POST /registrations", status=429, headers=headers) == 1.0
    before = clock.now
    for _ in range(10):  # the others go on, spaced at the learned rate (~45/s here)
        pacer.acquire(None, "POST /registrations")
        pacer.release(None, "POST /registrations", status=200, headers={})
    assert clock.now - before < 0.3
    assert pacer.rate.cuts == 1


def test_ip_limited_429_without_evidence_backs_off_that_request_exponentially() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    limited = {"X-Knewton-Rate-Exceeded": "ip-limited"}
    waits = []
    for _ in range(3):
        pacer.acquire(None, "GET /accounts/current")
        clock.now += RTT
        waits.append(pacer.release(None, "GET /accounts/current", status=429, headers=limited))
    assert waits == [1.0, 2.0, 4.0]  # the server refuses, whatever the rate: wait, longer
    assert pacer.rate.accepted_max is None


def test_503_retry_after_and_rate_delay_are_returned() -> None:
    pacer = Pacer(clock=FakeClock())
    pacer.acquire(None, "POST /batch")
    assert pacer.release(None, "POST /batch", status=503, headers={"Retry-After": "7"}) == 7.0
    pacer.acquire(None, "POST /batch")
    held = {"X-Knewton-Rate-Exceeded": "ip-limited", "X-Knewton-Rate-Delay": "1500"}
    assert pacer.release(None, "POST /batch", status=429, headers=held) == 1.5
    pacer.acquire(None, "POST /batch")
    assert pacer.release(None, "POST /batch", status=200, headers={}) == 0.0


def test_in_flight_ceiling_holds_the_rest() -> None:
    pacer = Pacer(ceiling=2)
    pacer.acquire(None, "POST /batch")
    pacer.acquire(None, "POST /batch")
    assert pacer.ceiling.in_flight == 2
    cancel = threading.Event()
    entered = threading.Event()

    def third() -> None:
        pacer.acquire(None, "POST /batch", cancel=cancel)
        entered.set()

    worker = threading.Thread(target=third)
    worker.start()
    assert not entered.wait(0.1)
    pacer.release(None, "POST /batch", status=200, headers={})
    assert entered.wait(2)
    worker.join()


class PollingCondition(threading.Condition):
    """A Condition whose waits are handed to *on_wait* instead of taken."""

    def __init__(self, on_wait: Callable[[float | None], None]) -> None:
        super().__init__()
        self.on_wait = on_wait

    def wait(self, timeout: float | None = None) -> bool:
        self.on_wait(timeout)
        return False


@pytest.mark.parametrize("blocked_on", ["bucket", "ceiling"])
def test_acquire_stops_promptly_when_cancelled_while_waiting(blocked_on: str) -> None:
    """Promptly: a long wait is taken in polls of at most POLL, the stop looked at after
    each; the stop comes during the first poll, so the first poll is the last."""
    cancel = threading.Event()
    polls: list[float | None] = []

    def poll(seconds: float | None) -> None:
        polls.append(seconds)
        cancel.set()  # Ctrl-C, while this wait lasts

    if blocked_on == "bucket":
        pacer = Pacer(quotas={"POST /batch": 1}, sleep=poll)
        pacer.acquire(None, "POST /batch")  # the bucket is full for a minute
    else:
        pacer = Pacer(ceiling=1)
        pacer.acquire(None, "GET")  # the only place in flight is taken
        pacer.ceiling._free = PollingCondition(poll)
    with pytest.raises(Interrupted):
        pacer.acquire(None, "POST /batch", cancel=cancel)
    assert polls == [POLL]  # one poll of 50 ms, not the minute (nor a wait without end)
    assert pacer.ceiling.in_flight == 1  # the cancelled attempt holds nothing


def test_a_cancelled_run_sends_nothing_more() -> None:
    cancel = threading.Event()
    cancel.set()
    pacer = Pacer()
    with pytest.raises(Interrupted):
        pacer.acquire(None, "POST /batch", cancel=cancel)
    assert pacer.ceiling.in_flight == 0


@responses.activate
def test_client_resends_a_token_limited_request_unchanged_once_the_bucket_admits() -> None:
    clock = FakeClock()
    pacer = Pacer(quotas={"POST /batch": 90}, clock=clock, sleep=clock.sleep)
    client = KnewtonClient(
        base_url=BASE,
        api_key="k",
        api_secret=Secret("s"),
        retry=RetryPolicy(max_attempts=3, base_delay=0.01),
        sleep=clock.sleep,
        clock=clock,
        pacer=pacer,
    )
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(
        f"{BASE}/batch",
        status=429,
        json={"message": "slow"},
        headers={"X-Knewton-Rate-Exceeded": "token-limited"},
    )
    a1 = "00000000-0000-4000-8000-0000000000a1"
    answer = {"code": 200, "body": {"account_id": a1, "external_user_id": "u1"}}
    responses.post(f"{BASE}/batch", json={"responses": [answer]})
    [item] = client.batch_create_accounts(["u1"])
    assert item.account_id == a1
    batch_calls = [c for c in responses.calls if str(c.request.url).endswith("/batch")]
    assert batch_calls[0].request.body == batch_calls[1].request.body
    assert pacer.rate_limited_count == 1
    assert sum(clock.sleeps) == pytest.approx(1.0, abs=0.06)  # the bucket's first hold


def test_configured_overrides_pace_too() -> None:
    profile = Profile("p", "https://x.test/v0", "k", rate_limits={"DELETE /registrations": 2})
    for quotas in (quotas_for(profile, env={}), parse_quotas("DELETE /registrations/{id}=2")):
        clock = FakeClock()
        pacer = Pacer(quotas=quotas, clock=clock, sleep=clock.sleep)
        for _ in range(3):
            send(pacer, clock, "DELETE /registrations/{id}", "t1")
        assert sum(clock.sleeps) == pytest.approx(60 - RTT, abs=0.02)
