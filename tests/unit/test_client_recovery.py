"""Recovering an account id through the user's own token: only an answer that says whose
account it is may be recorded (the reference documents external_user_id on accounts/current;
a token answer's account_id is not in the reference at all)."""

from __future__ import annotations

import pytest
import responses

from kprov.api.errors import MalformedAnswer
from tests.mocked_api import ACC1, ACC2, BASE, TOKEN_URL, make_client, token_answer

CURRENT = f"{BASE}/accounts/current"


def gets() -> int:
    return sum(1 for call in responses.calls if call.request.url == CURRENT)


@responses.activate
def test_one_unnamed_account_answered_to_every_user_recovers_no_one() -> None:
    """The tester's server: every batch item "already exists", and accounts/current answers
    {"id": X} without external_user_id to every token. X used to go to whoever came first."""
    for n in range(3):
        responses.post(TOKEN_URL, json=token_answer(n))
    responses.get(CURRENT, json={"id": ACC1, "entitlements": []})
    client = make_client()
    for person in ("stu-1", "stu-2", "stu-3"):
        with pytest.raises(MalformedAnswer) as caught:
            client.account_id_of(person)
        assert "does not name its external_user_id" in str(caught.value)
        assert caught.value.outcome_unknown is True  # nothing may be recorded from it


@responses.activate
def test_an_answer_naming_another_user_is_refused() -> None:
    responses.post(TOKEN_URL, json=token_answer())
    responses.get(CURRENT, json={"id": ACC1, "external_user_id": "stu-9"})
    with pytest.raises(MalformedAnswer, match="external_user_id is not the one asked for"):
        make_client().account_id_of("stu-1")


@responses.activate
def test_the_admins_own_account_needs_no_name() -> None:
    """Only a user's own token is checked against a name: `accounts current` is unchanged."""
    responses.post(TOKEN_URL, json=token_answer())
    responses.get(CURRENT, json={"id": ACC1})
    assert make_client().current_account().id == ACC1


@responses.activate
def test_a_token_account_id_that_names_no_one_is_checked_by_the_named_answer() -> None:
    responses.post(TOKEN_URL, json=token_answer(account_id=ACC2))
    responses.get(CURRENT, json={"id": ACC2, "external_user_id": "stu-1"})
    assert make_client().account_id_of("stu-1") == ACC2
    assert gets() == 1  # the token answer did not say whose account it is


@pytest.mark.parametrize(
    "current",
    [{"id": ACC1, "external_user_id": "stu-1"}, {"id": ACC2}],
    ids=["disagrees", "unnamed"],
)
@responses.activate
def test_a_token_account_id_the_named_answer_does_not_confirm_is_refused(
    current: dict[str, str],
) -> None:
    responses.post(TOKEN_URL, json=token_answer(account_id=ACC2))
    responses.get(CURRENT, json=current)
    with pytest.raises(MalformedAnswer):
        make_client().account_id_of("stu-1")


@responses.activate
def test_a_token_answer_for_another_scope_is_no_shortcut() -> None:
    """RFC 6749 lets a server answer a scope other than the one asked: then the token says
    nothing about whose account_id it carries."""
    responses.post(TOKEN_URL, json=token_answer(account_id=ACC2, scope="other"))
    responses.get(CURRENT, json={"id": ACC2, "external_user_id": "stu-1"})
    assert make_client().account_id_of("stu-1") == ACC2
    assert gets() == 1


@responses.activate
def test_a_token_answer_naming_another_user_is_never_used() -> None:
    responses.post(TOKEN_URL, json=token_answer(account_id=ACC2, external_user_id="stu-9"))
    client = make_client()
    with pytest.raises(MalformedAnswer, match="names another user"):
        client.account_id_of("stu-1")
    with pytest.raises(MalformedAnswer):  # nor kept for anything else done as that user
        client.token_for("stu-1")
    assert gets() == 0
