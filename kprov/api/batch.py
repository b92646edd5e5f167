"""POST /batch answers, verified before a single account id is handed to the core.

The reference says the answer's items come in request order. kprov does not rely on it:
- an item that names its ``external_user_id`` must name a request of this batch, and each
  request at most once; a success item must name it (otherwise nothing proves whose account it
  is: ``UnverifiableAnswer``);
- when every named item sits at its request's position, the answer is read by position (error
  items, which the reference shows without ids, included);
- when items are out of order but every item names its request, the answer is read by id;
- anything else -- a count that differs, an id that is not a UUID, one account id given twice,
  a reordered answer with unnamed items -- is a ``MalformedAnswer`` for the whole batch:
  nothing from it is recorded, and the core recovers those accounts through the users' own
  tokens (the documented scope-token flow), which says the truth whatever this answer said.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from kprov.api.answers import classify_refusal
from kprov.api.errors import MalformedAnswer
from kprov.api.ids import UUID_TEXT, answered_uuid, canonical_id
from kprov.api.models import BatchItemResult
from kprov.api.scrub import Scrubber

MAX_BATCH = 50
_WHERE = {"method": "POST", "path": "/batch"}


class UnverifiableAnswer(MalformedAnswer):
    """A batch answer that may be right but cannot be checked (success items without ids)."""


def batch_request(external_user_ids: Sequence[str]) -> dict[str, Any]:
    return {
        "requests": [
            {"method": "post", "relative_url": "/accounts", "body": {"external_user_id": i}}
            for i in external_user_ids
        ]
    }


def read_batch_answer(
    requested: Sequence[str], payload: Any, scrubber: Scrubber
) -> list[BatchItemResult]:
    """One result per request, in request order, each matched to its own request."""
    items = payload.get("responses") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise MalformedAnswer("the batch answer has no list of responses", **_WHERE)
    if len(items) != len(requested):
        raise MalformedAnswer(
            f"the batch answer has {len(items)} responses for {len(requested)} requests", **_WHERE
        )
    parsed = _items(items)
    named = [p.ext for p in parsed if p.ext is not None]
    if len(set(named)) != len(named) or not set(named) <= set(requested):
        raise MalformedAnswer(
            "the batch answer names an external id twice, or one that was not requested",
            **_WHERE,
        )
    if any(p.ext is None and 200 <= p.status < 300 for p in parsed):
        raise UnverifiableAnswer(
            "the batch answer's created accounts do not name their external_user_id, so "
            "nothing proves whose account each one is; they will be looked up one by one",
            **_WHERE,
        )
    account_ids = [p.account_id for p in parsed if p.account_id]  # canonical already
    if len(set(account_ids)) != len(account_ids):
        raise MalformedAnswer("the batch answer gives one account id to two requests", **_WHERE)

    if all(p.ext is None or p.ext == ext for p, ext in zip(parsed, requested, strict=True)):
        ordered = parsed  # every named item at its request's position
    elif len(named) == len(requested):
        by_ext = {p.ext: p for p in parsed}
        ordered = [by_ext[ext] for ext in requested]  # out of order, but every item named
    else:
        raise MalformedAnswer(
            "the batch answer is out of order and some items do not name their request",
            **_WHERE,
        )
    new = tuple.__new__  # a created account's result without the keyword-reading __new__
    return [
        new(BatchItemResult, (ext, p.status, p.account_id, None, None))
        if p.account_id
        else _refused(ext, p, scrubber)
        for ext, p in zip(requested, ordered, strict=True)
    ]


class _Item(NamedTuple):
    status: int
    ext: str | None
    account_id: str | None  # canonical (lower case); only on a success
    body: dict[str, Any]


def _items(items: list[Any]) -> list[_Item]:
    """Every item's facts. A created account (the common item) is read inline, with the same
    checks as ``_item`` (an int code, an object body, a text external id, a UUID account id);
    anything else goes through ``_item``, which names what is wrong."""
    parsed: list[_Item] = []
    uuid = UUID_TEXT.match
    new = tuple.__new__
    for position, item in enumerate(items):
        if item.__class__ is dict:
            code, body = item.get("code"), item.get("body")
            if code.__class__ is int and 200 <= code < 300 and body.__class__ is dict:
                ext, raw = body.get("external_user_id"), body.get("account_id")
                if raw is None:
                    raw = body.get("id")
                if (ext is None or ext.__class__ is str) and raw.__class__ is str and uuid(raw):
                    parsed.append(new(_Item, (code, ext, canonical_id(raw), body)))
                    continue
        parsed.append(_item(item, position))
    return parsed


def _item(item: Any, position: int) -> _Item:
    """The facts of one item, checked for shape; MalformedAnswer when it has none."""
    if not isinstance(item, dict):
        raise MalformedAnswer(f"batch item {position + 1} is not an object", **_WHERE)
    code = item.get("code")
    if code.__class__ is not int:  # the common case first: a plain int (not a bool)
        if isinstance(code, str) and code.isdigit():
            code = int(code)
        if not isinstance(code, int) or isinstance(code, bool):
            raise MalformedAnswer(f"batch item {position + 1} has no HTTP code", **_WHERE)
    if not 100 <= code <= 599:
        raise MalformedAnswer(f"batch item {position + 1} has no HTTP code", **_WHERE)
    body = item.get("body")
    if body is None:
        body = {}
    elif not isinstance(body, dict):
        raise MalformedAnswer(f"batch item {position + 1}'s body is not an object", **_WHERE)
    ext = body.get("external_user_id")
    if ext is not None and not isinstance(ext, str):
        raise MalformedAnswer(f"batch item {position + 1}'s external_user_id is not text", **_WHERE)
    account_id = None
    if 200 <= code < 300:
        raw = body.get("account_id")
        if raw is None:
            raw = body.get("id")
        account_id = answered_uuid(raw, f"batch item {position + 1}'s account id", **_WHERE)
    return _Item(code, ext, account_id, body)


def _refused(ext: str, item: _Item, scrubber: Scrubber) -> BatchItemResult:
    status, body = item.status, item.body
    raw = next(
        (body[k] for k in ("error_message", "message", "error") if isinstance(body.get(k), str)),
        None,
    )
    message = scrubber.clip(raw) if raw else f"item failed ({status})"
    refusal = None
    if status in (409, 422):
        refusal = classify_refusal(status, message, body, "POST /batch", known=[ext]).refusal
    return BatchItemResult(ext, status, error_message=message, refusal=refusal)
