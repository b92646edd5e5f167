"""Reading what the server answered: error fields, and what a 422/409 refusal means.

``classify_refusal`` is deliberately narrow. Only words that plainly say "this account already
exists" or "this account is already registered here", on the endpoint where that can happen,
count; a limit, a closed or unknown instance, a bad field, a negation, a proxy's HTML page, an
empty body or two readings that disagree are never "already there". Unclear means UNKNOWN,
which the core keeps pending.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kprov import strict_json
from kprov.api.errors import (
    REFUSAL_CLASSES,
    AlreadyRegistered,
    MalformedAnswer,
    Refusal,
    Unprocessable,
)
from kprov.api.scrub import Scrubber
from kprov.strict_json import DuplicateName


@dataclass(frozen=True)
class ErrorFields:
    """An error answer, scrubbed: its message, error_id and JSON object body (None if not one)."""

    message: str
    error_id: str | None
    body: dict[str, Any] | None


def parse_json(raw: bytes) -> Any:
    """The JSON value of a server's answer, or ValueError (``kprov.strict_json``: bad UTF-8,
    absurd nesting, NaN, an object that names a key twice). Every JSON answer is read here."""
    return strict_json.loads(raw)


def answer_object(
    raw: bytes, status: int, method: str, path: str, scrubber: Scrubber
) -> dict[str, Any]:
    """A success answer's JSON object; MalformedAnswer for anything else (HTML, text, a list,
    an object that names a key twice: which value is meant cannot be told)."""
    try:
        body = parse_json(raw)
    except DuplicateName as twice:
        raise MalformedAnswer(
            f"the answer names {scrubber.clip(twice.name, 40)!r} twice in one object, so which "
            "value is meant cannot be told; nothing of it was recorded",
            status=status,
            method=method,
            path=path,
        ) from None
    except ValueError:
        raise MalformedAnswer(
            "the answer is not JSON", status=status, method=method, path=path
        ) from None
    if not isinstance(body, dict):
        raise MalformedAnswer(
            "the answer is not a JSON object", status=status, method=method, path=path
        )
    return body


def error_fields(
    raw: bytes, *, content_type: str, reason: str, scrubber: Scrubber, limit: int = 300
) -> ErrorFields:
    """Message and error_id from any error body: JSON, HTML from a proxy, text or nothing."""
    reason = scrubber.clip(reason, 80)  # the status line is server text too
    try:
        body = parse_json(raw) if raw.strip() else None
    except ValueError:
        body = None
        text = raw.decode("utf-8", "replace")
        if "html" in content_type.lower() or re.search(r"<\s*(html|body|title)\b", text, re.I):
            gist = scrubber.clip(_html_gist(text), 80) or "untitled"
            return ErrorFields(f"an HTML page, not an API answer: {gist}", None, None)
        return ErrorFields(scrubber.clip(text, limit) or reason or "no message", None, None)
    if body is None:
        return ErrorFields(scrubber.clip(reason or "an empty answer", limit), None, None)
    if not isinstance(body, dict):
        shown = f"JSON that is not an object: {raw.decode('utf-8', 'replace')}"
        return ErrorFields(scrubber.clip(shown, limit), None, None)
    message = next(
        (
            body[key]
            for key in ("message", "error_message", "error_description", "error", "detail")
            if isinstance(body.get(key), str) and body[key].strip()
        ),
        None,
    )
    error_id = body.get("error_id")
    return ErrorFields(
        scrubber.clip(message, limit) if message else reason or "no message",
        scrubber.clip(str(error_id), 80) if isinstance(error_id, (str, int)) and error_id else None,
        body,
    )


def _html_gist(text: str) -> str:
    """The title (or the text) of an HTML page, without its markup."""
    found = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    return html.unescape(found.group(1) if found else re.sub(r"<[^>]+>", " ", text))


# ------------------------------------------------------------------------- refusals


@dataclass(frozen=True)
class RefusalReading:
    refusal: Refusal
    registered_type: str | None = None  # for ALREADY_REGISTERED, when the answer names it


UNKNOWN = RefusalReading(Refusal.UNKNOWN)

_REGISTRATION_ENDPOINTS = frozenset({"POST /registrations"})
_ACCOUNT_ENDPOINTS = frozenset({"POST /accounts", "POST /batch"})

_UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NEGATION = re.compile(r"\b(not|no|never|none|nor|without|unable)\b|n't\b")
_ELSEWHERE = re.compile(r"\b(another|other|different)\b")
_LIMIT = re.compile(
    r"\b(maximum|max|limit|limits|at most|up to \d+|exceed|exceeds|exceeded|too many|too long|"
    r"capacity|quota)\b|\b(50|500|256) (requests|registrations|characters)\b"
)
_GONE = re.compile(
    r"\b(does not exist|do not exist|doesn't exist|not exist|not found|no such|unknown|closed|"
    r"deleted|removed|inactive|not active|no longer|has ended|ended|expired|archived|disabled|"
    r"does not name|not open)\b"
)
_INSTANCE = re.compile(r"\b(learning instance|instance|class)\b")
_ACCOUNT = re.compile(r"\b(account|user|learner|instructor)\b")
_BAD_FIELD = re.compile(
    r"\b(is required|required|must be|must not|should be|invalid|malformed|not a valid|"
    r"not valid|unsupported|unknown field|unexpected|email|personal data|pii)\b"
)
_ALREADY_REGISTERED = re.compile(
    r"\balready (been )?(registered|enrolled)\b|\bregistered already\b|"
    r"\b(registration|enrollment|enrolment) already exists\b|"
    r"\b(learner|instructor) registration already exists\b|"
    r"\balready (has|holds) an? (active )?(registration|enrollment|enrolment)\b|"
    r"\bduplicate (registration|enrollment|enrolment)\b|"
    r"\balready an? (learner|instructor|member)\b"
)
_REGISTERED_TYPE = re.compile(
    r"\bas an? (learner|instructor)\b|\bas (learner|instructor)\b|"
    r"\balready an? (learner|instructor)\b|\b(learner|instructor) registration already\b"
)
_DUPLICATE_ACCOUNT = re.compile(
    r"\bduplicate (account|external user id|user)\b|"
    r"\b(account|user|external user id)( with [\w .@:'\"]{0,80}?)? already exists\b|"
    r"\b(external user id|account)( [\w.@'\"]{1,80})? (is |has )?already (been )?"
    r"(taken|in use|used|exists|registered)\b"
)


def classify_refusal(
    status: int,
    message: str,
    body: Mapping[str, Any] | None,
    endpoint: str,
    *,
    known: Iterable[str] = (),
) -> RefusalReading:
    """What a 422/409 means, read narrowly; UNKNOWN when unclear.

    *endpoint* is the quota key ("POST /registrations", "POST /batch" for a batch item...).
    *known* are strings kprov sent (an external id, a name) that the message may quote; they
    are blanked before reading, so an id such as ``not-enrolled`` cannot change the meaning.
    """
    if status not in (409, 422) or not isinstance(body, Mapping):
        return UNKNOWN  # not an API refusal (an HTML page from a proxy, a text body...)
    texts = [message] + [
        str(body[key])
        for key in ("error", "error_code", "reason", "code")
        if isinstance(body.get(key), str) and body[key] != message
    ]
    readings = {_read(_normalise(t, known), endpoint) for t in texts if t and t.strip()}
    readings.discard(UNKNOWN)
    typed = _type_from_body(body)
    if typed is not None:
        readings = {
            RefusalReading(r.refusal, r.registered_type or typed)
            if r.refusal is Refusal.ALREADY_REGISTERED
            else r
            for r in readings
        }
    if len(readings) != 1:
        return UNKNOWN  # nothing recognised, or two readings that disagree
    reading = readings.pop()
    if typed is not None and reading.registered_type not in (None, typed):
        return UNKNOWN
    return reading


def refusal_error(
    status: int,
    fields: ErrorFields,
    endpoint: str,
    *,
    method: str,
    path: str,
    known: Iterable[str] = (),
) -> Unprocessable:
    """The narrowest Unprocessable subclass for a refusal, ready to raise."""
    reading = classify_refusal(status, fields.message, fields.body, endpoint, known=known)
    error = REFUSAL_CLASSES[reading.refusal](
        fields.message, status=status, error_id=fields.error_id, method=method, path=path
    )
    if isinstance(error, AlreadyRegistered):
        error.registered_type = reading.registered_type
    return error


def _normalise(text: str, known: Iterable[str]) -> str:
    text = text.lower()
    for value in sorted((k.lower() for k in known if k), key=len, reverse=True):
        text = text.replace(value, " ID ")
    text = _UUID_TEXT.sub(" ID ", text)
    text = re.sub(r"[_\-]+", " ", text)
    return " ".join(text.split())


def _read(text: str, endpoint: str) -> RefusalReading:
    if _LIMIT.search(text):
        return RefusalReading(Refusal.ENTITY_LIMIT)
    if _GONE.search(text):
        instance, account = bool(_INSTANCE.search(text)), bool(_ACCOUNT.search(text))
        if instance and not account:
            return RefusalReading(Refusal.INSTANCE_UNAVAILABLE)
        if account and not instance:
            return RefusalReading(Refusal.ACCOUNT_UNAVAILABLE)
        return UNKNOWN  # which of the two is gone cannot be told
    bad_field = bool(_BAD_FIELD.search(text))
    positive = UNKNOWN
    if endpoint in _REGISTRATION_ENDPOINTS and _ALREADY_REGISTERED.search(text):
        types = {t for group in _REGISTERED_TYPE.findall(text) for t in group if t}
        if len(types) > 1:
            return UNKNOWN
        positive = RefusalReading(Refusal.ALREADY_REGISTERED, types.pop() if types else None)
    elif endpoint in _ACCOUNT_ENDPOINTS and _DUPLICATE_ACCOUNT.search(text):
        positive = RefusalReading(Refusal.DUPLICATE_ACCOUNT)
    if positive is not UNKNOWN:
        if bad_field or _NEGATION.search(text) or _ELSEWHERE.search(text):
            return UNKNOWN
        return positive
    return RefusalReading(Refusal.INVALID_FIELD) if bad_field else UNKNOWN


def _type_from_body(body: Mapping[str, Any]) -> str | None:
    """A registration type the refusal's JSON names for the existing registration, if any."""
    for key in ("registered_type", "existing_type"):
        if body.get(key) in ("learner", "instructor"):
            return str(body[key])
    existing = body.get("existing_registration")
    if isinstance(existing, Mapping) and existing.get("type") in ("learner", "instructor"):
        return str(existing["type"])
    return None  # a top-level "type" may only echo what was asked: not evidence
