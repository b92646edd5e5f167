"""Client-side pacing: per-token quotas, 429 scopes, adaptive concurrency."""

from __future__ import annotations

import pytest
import responses

from kprov.api.client import KnewtonClient
from kprov.api.pacing import (
    DOCUMENTED_QUOTAS,
    ConcurrencyWindow,
    Pacer,
    QuotaLimiter,
    RetryPolicy,
    endpoint_of,
    parse_quotas,
)
from kprov.config import Profile, quotas_for
from kprov.credentials import Secret
from kprov.errors import ConfigError
from tests.unit.test_client import BASE, TOKEN_URL, FakeClock, token_answer


def test_endpoint_keys_use_templates() -> None:
    assert endpoint_of("delete", "/registrations/abc-1") == "DELETE /registrations/{id}"
    assert endpoint_of("GET", "/accounts/current") == "GET /accounts/current"
    assert endpoint_of("POST", "/batch") == "POST /batch"


def test_quota_specs() -> None:
    assert parse_quotas("off") == {}
    assert parse_quotas("documented") == DOCUMENTED_QUOTAS
    assert parse_quotas("POST /batch=120")["POST /batch"] == 120
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


def test_limiter_spaces_one_tokens_requests_evenly_at_the_quota() -> None:
    clock = FakeClock()
    limiter = QuotaLimiter({"POST /batch": 90}, clock=clock, sleep=clock.sleep)
    for _ in range(91):
        limiter.acquire(None, "POST /batch")
    # 91 requests span 90 intervals of 60/90 s (plus 2 %): never 91 in one minute
    assert clock.now - 1000.0 == pytest.approx(90 * 60 / 90 * QuotaLimiter.SAFETY)


def test_limiter_buckets_are_per_token_and_endpoint() -> None:
    clock = FakeClock()
    limiter = QuotaLimiter({"POST /registrations": 375, "GET": 15}, clock=clock, sleep=clock.sleep)
    for teacher in ("t1", "t2", "t3"):
        limiter.acquire(teacher, "POST /registrations")
    limiter.acquire("t1", "GET /accounts/current")
    assert clock.sleeps == []  # different tokens or endpoints never wait for each other
    limiter.acquire("t1", "GET /registrations/{id}")  # every GET shares one quota
    assert clock.sleeps == [pytest.approx(4 * QuotaLimiter.SAFETY)]


def test_unlisted_endpoints_are_not_paced() -> None:
    clock = FakeClock()
    limiter = QuotaLimiter({"POST /batch": 1}, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        limiter.acquire(None, "DELETE /learning-instances/{id}")
    assert clock.sleeps == []


A1 = "828815a2-5038-4352-a681-82c96921ddf5"


def client_with(clock: FakeClock, quotas: dict[str, int], pacer: Pacer) -> KnewtonClient:
    pacer.limiter = QuotaLimiter(quotas, clock=clock, sleep=clock.sleep)
    return KnewtonClient(
        base_url=BASE,
        api_key="k",
        api_secret=Secret("s"),
        retry=RetryPolicy(max_attempts=3, base_delay=0.01),
        sleep=clock.sleep,
        clock=clock,
        pacer=pacer,
    )


@responses.activate
def test_token_limited_429_delays_only_that_bucket_and_resends_unchanged() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    client = client_with(clock, {"POST /batch": 90}, pacer)
    responses.post(TOKEN_URL, json=token_answer())
    responses.post(
        f"{BASE}/batch",
        status=429,
        json={"message": "slow"},
        headers={"X-Knewton-Rate-Exceeded": "token-limited"},
    )
    responses.post(
        f"{BASE}/batch",
        json={"responses": [{"code": 200, "body": {"external_user_id": "u1", "account_id": A1}}]},
    )
    [item] = client.batch_create_accounts(["u1"])
    assert item.account_id == A1
    batch_calls = [c for c in responses.calls if c.request.url.endswith("/batch")]
    assert batch_calls[0].request.body == batch_calls[1].request.body
    assert pacer.rate_limited_count == 1
    pacer.window.wait_turn()  # no global pause: other tokens and endpoints go on
    assert sum(clock.sleeps) >= 2 * 60 / 90


@responses.activate
def test_ip_limited_429_pauses_everyone_exponentially() -> None:
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    client = client_with(clock, {}, pacer)
    responses.post(TOKEN_URL, json=token_answer())
    for _ in range(3):
        responses.get(
            f"{BASE}/accounts/current",
            status=429,
            json={"message": "slow"},
            headers={"X-Knewton-Rate-Exceeded": "ip-limited"},
        )
    responses.get(f"{BASE}/accounts/current", json={"id": A1})
    client.current_account()
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_adaptive_window_halves_on_429_and_grows_back_slowly() -> None:
    pacer = ConcurrencyWindow(ceiling=8)
    pacer.enter()
    pacer.leave(rate_limited=True)
    assert pacer.window == 4
    pacer.enter()
    pacer.leave(rate_limited=True)
    assert pacer.window == 2
    for _ in range(40):
        pacer.enter()
        pacer.leave()
    assert 8 >= pacer.window > 7
