"""The sandbox's rate limiter: a token bucket with a chosen burst and Retry-After style."""

from __future__ import annotations

import pytest

from kprov.sandbox.faults import RequestRateLimiter
from tests.mocked_api import FakeClock


def test_burst_is_what_a_still_bucket_lets_through_at_once() -> None:
    clock = FakeClock()
    limiter = RequestRateLimiter(400, burst=20, clock=clock)
    assert [limiter.admit() is None for _ in range(21)] == [True] * 20 + [False]
    clock.now += 1 / 400  # one token back
    assert limiter.allow()
    assert not limiter.allow()


def test_default_burst_is_one_second_of_the_rate() -> None:
    limiter = RequestRateLimiter(50, clock=FakeClock())
    assert sum(limiter.allow() for _ in range(100)) == 50


def test_retry_after_is_whole_seconds_rounded_up_by_default() -> None:
    clock = FakeClock()
    limiter = RequestRateLimiter(400, burst=1, clock=clock)
    assert limiter.admit() is None
    wait = limiter.admit()
    assert wait == pytest.approx(1 / 400)  # the real wait: 2.5 ms
    assert wait is not None
    headers = limiter.refusal_headers(wait)
    assert headers == {"Retry-After": "1", "X-Knewton-Rate-Exceeded": "ip-limited"}
    exact = RequestRateLimiter(400, retry_after="exact", clock=clock).refusal_headers(wait)
    assert exact["Retry-After"] == "0.0025"
    silent = RequestRateLimiter(400, retry_after="none", clock=clock).refusal_headers(wait)
    assert "Retry-After" not in silent
    assert RequestRateLimiter(1, burst=1).refusal_headers(2.2)["Retry-After"] == "3"


def test_nonsense_limiter_settings_are_refused() -> None:
    for kwargs in ({"burst": 0}, {"retry_after": "soon"}):
        with pytest.raises(ValueError):
            RequestRateLimiter(10, **kwargs)
    with pytest.raises(ValueError):
        RequestRateLimiter(0)
