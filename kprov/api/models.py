"""Values the API client returns; field-name differences between endpoints end here.

``from_answer`` constructors check what they read: ids are UUIDs, strings are strings, and an
answer without its ``id`` is a ``MalformedAnswer``, never a KeyError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kprov.api.errors import MalformedAnswer, Refusal
from kprov.api.ids import answered_uuid, canonical_id
from kprov.api_facts import is_uuid

REGISTRATION_TYPES = ("learner", "instructor")


@dataclass(frozen=True)
class Token:
    """An OAuth token pair. Never printed: repr hides the token strings."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False, default=None)
    renew_at: float | None = None  # monotonic time to renew it; None: no lifetime was given

    account_id: str | None = None  # not in the reference: some servers add it
    # The user the answer itself says the token is for (its external_user_id, else its
    # scope); None when it names nobody. Only then is account_id known to be that user's.
    named_user: str | None = None


def _text(body: dict[str, Any], key: str, *, method: str, path: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedAnswer(
        f"the answer's {key} is {type(value).__name__}, not text", method=method, path=path
    )


@dataclass(frozen=True)
class Account:
    id: str
    external_user_id: str | None

    @classmethod
    def from_answer(cls, body: dict[str, Any], *, method: str, path: str) -> Account:
        # POST /accounts and GET answer "id"; a batch item answers "account_id".
        raw = body.get("id") if body.get("id") is not None else body.get("account_id")
        return cls(
            id=answered_uuid(raw, "account id", method=method, path=path),
            external_user_id=_text(body, "external_user_id", method=method, path=path),
        )


class BatchItemResult(NamedTuple):
    """One request of a POST /batch call, matched to its request (not to a position).
    (A tuple: a batch makes fifty, a frozen dataclass costs several times more to build.)"""

    external_user_id: str
    status: int
    account_id: str | None = None
    error_message: str | None = None  # scrubbed of every secret kprov holds
    refusal: Refusal | None = None  # for a 409/422 item: what it means, read narrowly

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and self.account_id is not None


@dataclass(frozen=True)
class LearningInstance:
    id: str
    graph_id: str | None
    name: str | None
    start_date: str | None = None
    end_date: str | None = None
    possible_duplicate: bool = False  # created on a resend after an answer was lost

    @classmethod
    def from_answer(cls, body: dict[str, Any], *, method: str, path: str) -> LearningInstance:
        def text(key: str) -> str | None:
            return _text(body, key, method=method, path=path)

        return cls(
            id=answered_uuid(body.get("id"), "learning instance id", method=method, path=path),
            graph_id=text("graph_id"),
            name=text("name"),
            start_date=text("start_date"),
            end_date=text("end_date"),
        )


@dataclass(frozen=True)
class Registration:
    id: str
    type: str
    account_id: str
    learning_instance_id: str
    invalid: bool = False

    @classmethod
    def from_answer(cls, body: dict[str, Any], *, method: str, path: str) -> Registration:
        """A registration answer; account and instance ids, when present, must be UUIDs."""
        kind = body.get("type")
        if kind is not None and kind not in REGISTRATION_TYPES:
            raise MalformedAnswer(
                "the answer's registration type is neither learner nor instructor",
                method=method,
                path=path,
            )
        ids = {}
        for key in ("account_id", "learning_instance_id"):
            value = body.get(key)
            if value is not None and not is_uuid(value):
                answered_uuid(value, key.replace("_", " "), method=method, path=path)
            ids[key] = canonical_id(value) if value is not None else ""
        return cls(
            id=answered_uuid(body.get("id"), "registration id", method=method, path=path),
            type=str(kind or ""),
            account_id=ids["account_id"],
            learning_instance_id=ids["learning_instance_id"],
            invalid=body.get("invalid") is True,
        )
