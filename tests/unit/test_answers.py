"""Refusals are read narrowly: only a plain "already there" on the right endpoint counts."""

from __future__ import annotations

from typing import Any

import pytest

from kprov.api.answers import classify_refusal, error_fields
from kprov.api.errors import Refusal
from kprov.api.scrub import Scrubber

REG = "POST /registrations"
ACC = "POST /accounts"
BATCH = "POST /batch"
LI = "POST /learning-instances"
R = Refusal
AR, DUP, LIMIT = R.ALREADY_REGISTERED, R.DUPLICATE_ACCOUNT, R.ENTITY_LIMIT
NO_INST, NO_ACC, FIELD, UNK = (
    R.INSTANCE_UNAVAILABLE,
    R.ACCOUNT_UNAVAILABLE,
    R.INVALID_FIELD,
    R.UNKNOWN,
)

# (status, message, endpoint, expected refusal, expected registered type)
TABLE: list[tuple[int, str, str, Refusal, str | None]] = [
    # the traps of the first release: none of these is "already there"
    (422, "learning instance does not exist or is closed", REG, NO_INST, None),
    (422, "account already holds the maximum of 500 registrations", REG, LIMIT, None),
    (422, "learning instance holds the maximum of 500 registrations", REG, LIMIT, None),
    (422, "learning instance already has the maximum of 500 registrations", REG, LIMIT, None),
    (422, "cannot register: the learning instance has already closed", REG, NO_INST, None),
    (422, "registration already exists in another learning instance", REG, UNK, None),
    (422, "account is not registered in this learning instance", REG, UNK, None),
    (422, "account is not already registered", REG, UNK, None),
    (422, "Unprocessable Entity", REG, UNK, None),
    (422, "conflict", REG, UNK, None),
    (422, "Duplicate account with abc322", REG, UNK, None),  # wrong endpoint for it
    (422, "registration already exists", ACC, UNK, None),  # wrong endpoint for it
    # genuine "already registered", in several dialects
    (422, "account is already registered in this learning instance", REG, AR, None),
    (422, "registration already exists", REG, AR, None),
    (422, "already registered as instructor", REG, AR, "instructor"),
    (422, "This account is already registered as learner in this instance", REG, AR, "learner"),
    (409, "Conflict: already registered as an instructor", REG, AR, "instructor"),
    (409, "Registration already exists", REG, AR, None),
    (422, "the account is already enrolled", REG, AR, None),
    (422, "duplicate registration", REG, AR, None),
    (422, "already registered as learner, cannot register as instructor", REG, UNK, None),
    (422, "registration already exists (invalid type)", REG, UNK, None),
    # duplicate accounts
    (422, "Duplicate account with abc322", BATCH, DUP, None),
    (422, "Duplicate account with abc322", ACC, DUP, None),
    (422, "An account with external_user_id 'abc' already exists", ACC, DUP, None),
    (422, "external_user_id already taken", BATCH, DUP, None),
    (409, "Conflict: account already exists", ACC, DUP, None),
    (422, "external user id abc322 has already been taken", ACC, DUP, None),
    (422, "account does not already exist", ACC, UNK, None),
    # limits, unavailable things, bad fields
    (422, "up to 50 requests are allowed per batch call", BATCH, LIMIT, None),
    (422, "external_user_id must be 1 to 256 characters", ACC, LIMIT, None),
    (422, "character fields hold at most 256 characters", LI, LIMIT, None),
    (422, "registration limit reached", REG, LIMIT, None),
    (422, "maximum registrations exceeded", REG, LIMIT, None),
    (422, "learning_instance_id does not name a learning instance", REG, NO_INST, None),
    (422, "unknown learning_instance_id", REG, NO_INST, None),
    (422, "learning instance is closed", REG, NO_INST, None),
    (422, "account_id does not name an active account", REG, NO_ACC, None),
    (422, "Account does not exist or has been disabled", REG, NO_ACC, None),
    (422, "unknown account_id", REG, NO_ACC, None),
    (422, "account 7 does not exist in learning instance 9", REG, UNK, None),
    (422, "type must be learner or instructor", REG, FIELD, None),
    (422, "graph_id is required", LI, FIELD, None),
    (422, "learning instance names must not contain email addresses", LI, FIELD, None),
    (422, "external_user_id is not valid", ACC, FIELD, None),
    (422, "", REG, UNK, None),
    (422, "   ", REG, UNK, None),
]  # fmt: skip


@pytest.mark.parametrize(("status", "message", "endpoint", "refusal", "kind"), TABLE)
def test_refusals_are_classified_narrowly(
    status: int, message: str, endpoint: str, refusal: Refusal, kind: str | None
) -> None:
    reading = classify_refusal(status, message, {"message": message}, endpoint)
    assert (reading.refusal, reading.registered_type) == (refusal, kind)


def test_an_html_422_page_or_an_empty_409_means_nothing() -> None:
    page = "<html><title>422</title><body>account already registered</body></html>"
    assert classify_refusal(422, page, None, REG).refusal is R.UNKNOWN
    assert classify_refusal(409, "", None, REG).refusal is R.UNKNOWN
    assert classify_refusal(409, "Conflict", {}, REG).refusal is R.UNKNOWN


def test_only_409_and_422_are_refusals() -> None:
    message = "account is already registered in this learning instance"
    assert classify_refusal(400, message, {"message": message}, REG).refusal is R.UNKNOWN
    assert classify_refusal(500, message, {"message": message}, REG).refusal is R.UNKNOWN


def test_an_external_id_quoted_in_the_message_cannot_change_its_meaning() -> None:
    message = "Duplicate account with not-yet-enrolled"
    assert classify_refusal(422, message, {}, ACC).refusal is R.UNKNOWN  # "not" read as words
    known = classify_refusal(422, message, {}, ACC, known=["not-yet-enrolled"])
    assert known.refusal is R.DUPLICATE_ACCOUNT


def test_a_machine_code_that_contradicts_the_message_is_unknown() -> None:
    body = {"message": "learning instance is closed", "error_code": "already_registered"}
    assert classify_refusal(422, body["message"], body, REG).refusal is R.UNKNOWN
    agree = {"message": "Unprocessable", "error_code": "ALREADY_REGISTERED"}
    assert classify_refusal(422, "Unprocessable", agree, REG).refusal is R.ALREADY_REGISTERED


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"existing_type": "instructor"}, "instructor"),
        ({"existing_registration": {"type": "learner"}}, "learner"),
        ({"type": "learner"}, None),  # may only echo the type that was asked for
    ],
)
def test_the_existing_type_is_read_only_from_fields_that_name_it(
    body: dict[str, Any], kind: str | None
) -> None:
    message = "registration already exists"
    reading = classify_refusal(422, message, {"message": message, **body}, REG)
    assert (reading.refusal, reading.registered_type) == (R.ALREADY_REGISTERED, kind)


def test_a_type_in_the_body_that_contradicts_the_message_is_unknown() -> None:
    message = "already registered as learner"
    body = {"message": message, "existing_type": "instructor"}
    assert classify_refusal(422, message, body, REG).refusal is R.UNKNOWN


def test_error_fields_read_json_html_text_and_nothing() -> None:
    scrub = Scrubber()
    json_body = b'{"message": "bad  field\\n here", "error_id": "e-1"}'
    fields = error_fields(json_body, content_type="application/json", reason="", scrubber=scrub)
    assert (fields.message, fields.error_id) == ("bad field here", "e-1")
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    fields = error_fields(page, content_type="text/html", reason="Bad Gateway", scrubber=scrub)
    assert fields.message == "an HTML page, not an API answer: 502 Bad Gateway"
    assert fields.body is None
    fields = error_fields(b"", content_type="", reason="Conflict", scrubber=scrub)
    assert (fields.message, fields.body) == ("Conflict", None)
    fields = error_fields(b"[1, 2]", content_type="application/json", reason="", scrubber=scrub)
    assert fields.message.startswith("JSON that is not an object")
    fields = error_fields(b"\xff\xfe garbage", content_type="", reason="", scrubber=scrub)
    assert "garbage" in fields.message
