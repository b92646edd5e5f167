"""The rate learner against simulated token-bucket servers (simulated clock: milliseconds)."""

from __future__ import annotations

import math

import pytest

from kprov.api.rate import RateLearner
from tests.unit.rate_server import TokenBucketServer, simulate

SEEDS = (1, 2, 3)


def test_rate_is_unbounded_before_any_429() -> None:
    learner = RateLearner()
    for n in range(10_000):
        assert learner.delay(n * 1e-4) == 0.0
        learner.take(n * 1e-4)
        learner.on_accepted(n * 1e-4)
    assert learner.rate(1.0) == math.inf


def test_one_cut_per_episode_of_429s_not_per_429() -> None:
    learner = RateLearner()
    for n in range(400):  # a second of answers at 400/s
        learner.take(n / 400)
        learner.on_accepted(n / 400)
    assert learner.on_refused(1.0, sent_at=0.98) == 0.0  # the new rate is wait enough
    after_first = learner.rate(1.0)
    assert after_first == pytest.approx(0.9 * 400, rel=0.02)
    for late in range(15):  # the rest of that burst: sent before the cut
        learner.on_refused(1.0 + late / 1000, sent_at=0.99)
    assert learner.cuts == 1
    assert learner.rate(1.02) == pytest.approx(after_first, rel=0.01)


def test_refusals_that_persist_back_the_request_off_exponentially() -> None:
    learner = RateLearner()
    for n in range(100):
        learner.on_accepted(n / 100)
        learner.take(n / 100)
    waits = [learner.on_refused(1.0 + k, sent_at=1.0 + k) for k in range(4)]
    assert waits == [0.0, 2.0, 4.0, 8.0]  # no success in between: refusing, not metering
    learner.on_accepted(5.0)
    assert learner.on_refused(6.0, sent_at=6.0) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_small_burst_server_is_learned_with_a_handful_of_429s(seed: int) -> None:
    """400/s, burst 20, Retry-After: 1 (the independent server of issue 14)."""
    server = TokenBucketServer(rate=400, burst=20)
    run = simulate(server, RateLearner(), requests=5160, seed=seed)
    bound = 5160 / 400
    assert run.wall <= 1.1 * bound
    assert run.refused <= 15
    assert run.steady_rate(2.0) >= 0.9 * 400


@pytest.mark.parametrize("seed", SEEDS)
def test_one_second_burst_server_is_used_to_the_full(seed: int) -> None:
    server = TokenBucketServer(rate=400, burst=400)
    run = simulate(server, RateLearner(), requests=5160, seed=seed)
    assert run.wall <= 1.0 * 5160 / 400  # the saved-up second shortens the run
    assert run.refused <= 12
    assert run.steady_rate(4.0) >= 0.9 * 400


@pytest.mark.parametrize(
    ("rate", "burst", "workers"), [(50, 5, 4), (100, 20, 16), (200, 20, 8), (1000, 50, 40)]
)
def test_other_rates_and_pools_converge(rate: float, burst: float, workers: int) -> None:
    server = TokenBucketServer(rate=rate, burst=burst)
    run = simulate(server, RateLearner(), requests=int(rate * 8), workers=workers)
    assert run.steady_rate(run.wall / 3) >= 0.9 * rate
    assert run.refused <= 2 * workers  # the first burst: about what was in flight


def test_a_server_faster_than_the_client_never_slows_it() -> None:
    server = TokenBucketServer(rate=2000, burst=20)
    run = simulate(server, RateLearner(), requests=5000)
    assert (run.refused, run.cuts) == (0, 0)


def test_a_server_that_raises_its_limit_is_found_again() -> None:
    server = TokenBucketServer(rate=200, burst=20, rate_at=lambda t: 200 if t < 10 else 400)
    run = simulate(server, RateLearner(), requests=8000)
    assert run.achieved_rate(4, 10) == pytest.approx(200, rel=0.1)
    assert run.steady_rate(18) >= 0.9 * 400
    assert run.refused <= 30


def test_a_server_that_lowers_its_limit_is_followed() -> None:
    server = TokenBucketServer(rate=400, burst=20, rate_at=lambda t: 400 if t < 5 else 200)
    run = simulate(server, RateLearner(), requests=4000)
    assert run.steady_rate(8) >= 0.9 * 200
    assert run.refused <= 30


@pytest.mark.parametrize("seed", SEEDS)
def test_a_429_just_after_a_slow_phase_is_not_taken_for_the_servers_rate(seed: int) -> None:
    """Batch calls (slow, ~100/s) then registrations: the first 429 comes when the last
    second's accepted rate says far less than the server's 400/s."""
    server = TokenBucketServer(rate=400, burst=20)
    run = simulate(server, RateLearner(), requests=5160, seed=seed, slow_first=100)
    assert run.wall <= 1.25 * 5160 / 400  # ~1 s of the slow phase is not rate-bound
    assert run.steady_rate(3.0) >= 0.9 * 400


def test_the_limit_grows_past_the_accepted_rate_only_as_far_as_we_send() -> None:
    learner = RateLearner()
    for n in range(400):
        learner.take(n / 400)
        learner.on_accepted(n / 400)
    learner.on_refused(1.0, sent_at=1.0)
    assert learner.accepted_max == pytest.approx(400, rel=0.02)
    for n in range(1000):  # held back elsewhere: 100/s for 10 s
        learner.take(1.0 + n / 100)
        learner.on_accepted(1.0 + n / 100)
    assert learner.rate(11.0) == pytest.approx(400, rel=0.02)  # not the cubic's 7,000/s
    for n in range(500):  # sending at the limit again: the probe resumes
        learner.take(11.0 + n / 500)
    assert learner.rate(12.0) > 440
