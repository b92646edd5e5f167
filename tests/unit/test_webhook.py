"""Posting a run's summary: delivered once, within a deadline, never followed elsewhere."""

from __future__ import annotations

import pytest

from kprov.api.webhook import post_json
from tests.budgets import record_budget
from tests.webhook_receiver import receiver


def test_a_summary_is_posted_once_as_json() -> None:
    with receiver() as hook:
        delivery = post_json(hook.url, {"text": "kprov sync FAILED", "run_id": "kprov-1"})
    assert delivery.delivered and delivery.attempts == 1
    assert hook.documents == [{"text": "kprov sync FAILED", "run_id": "kprov-1"}]


def test_a_server_error_is_tried_once_more_within_the_deadline() -> None:
    with receiver() as hook:
        hook.statuses = [503]
        delivery = post_json(hook.url, {"text": "x"}, sleep=lambda s: None)
    assert delivery.delivered and delivery.attempts == 2 and len(hook.documents) == 2


def test_a_refusal_is_not_retried_and_the_url_is_never_shown() -> None:
    with receiver() as hook:
        hook.statuses = [404]
        delivery = post_json(hook.url, {"text": "x"})
    assert not delivery.delivered and delivery.attempts == 1
    assert "404" in delivery.problem and "secret-path" not in delivery.problem


def test_a_redirect_is_not_followed() -> None:
    with receiver() as hook, receiver() as elsewhere:
        hook.statuses, hook.location = [302], elsewhere.url
        delivery = post_json(hook.url, {"text": "x"})
    assert not delivery.delivered and elsewhere.documents == []


def test_a_stalled_receiver_costs_at_most_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = record_budget(monkeypatch)
    pauses: list[float] = []
    with receiver() as hook:
        hook.stall = 3.0
        delivery = post_json(hook.url, {"text": "x"}, deadline=0.3, sleep=pauses.append)
    assert not delivery.delivered and "timed out" in delivery.problem
    # the one attempt was cut at what was left of the 0.3 s, and that used up the delivery's
    # time: no pause, no second attempt (the stalled answer would have come at 3 s)
    assert delivery.attempts == 1 and pauses == []
    [cut] = budget.deadlines  # (the socket's own timeout, as long, may have ended it first)
    assert 0 < cut.seconds <= 0.3


def test_plain_http_goes_only_to_this_machine() -> None:
    delivery = post_json("http://chat.example.com/hook/secret-path", {"text": "x"})
    assert not delivery.delivered and delivery.attempts == 0
    assert "plain http" in delivery.problem and "secret-path" not in delivery.problem
