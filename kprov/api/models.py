"""Values the API client returns; field-name differences between endpoints end here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Token:
    """An OAuth token pair. Never printed: repr hides the token strings."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False, default=None)
    renew_at: float | None = None  # monotonic time to renew it; None: no lifetime was given

    account_id: str | None = None


@dataclass(frozen=True)
class Account:
    id: str
    external_user_id: str | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Account:
        # POST /accounts and GET answer "id"; a batch item answers "account_id".
        account_id = body.get("id") or body.get("account_id")
        if not account_id:
            raise ValueError("account body has neither 'id' nor 'account_id'")
        return cls(id=str(account_id), external_user_id=body.get("external_user_id"))


@dataclass(frozen=True)
class BatchItemResult:
    """One request of a POST /batch call, in request order."""

    external_user_id: str
    status: int
    account_id: str | None = None
    error_message: str | None = None

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
    def from_json(cls, body: dict[str, Any]) -> LearningInstance:

        return cls(
            id=str(body["id"]),
            graph_id=body.get("graph_id"),
            name=body.get("name"),
            start_date=body.get("start_date"),
            end_date=body.get("end_date"),
        )


@dataclass(frozen=True)
class Registration:
    id: str
    type: str
    account_id: str
    learning_instance_id: str
    invalid: bool = False

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Registration:
        return cls(
            id=str(body["id"]),
            type=str(body.get("type", "")),
            account_id=str(body.get("account_id", "")),
            learning_instance_id=str(body.get("learning_instance_id", "")),
            invalid=bool(body.get("invalid", False)),
        )
