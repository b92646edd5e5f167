"""The API's rules, read independently from the client, over the sandbox's state (``state``)."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kprov.sandbox.state import SandboxState

ADMIN_EXTERNAL_ID = "partner-admin"
MAX_REGISTRATIONS = 500
MAX_FIELD = 256
EMAIL_IN_TEXT = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class SandboxError(Exception):
    """An API error answer: HTTP status plus the documented JSON body.

    *kind* names the refusal ("duplicate_account", "already_registered", ...) and *facts* what
    it concerns, so a hostile dialect (``hostile.py``) can word it another way.
    """

    def __init__(self, status: int, message: str, kind: str = "", **facts: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.facts = facts
        self.error_id = uuid.uuid4().hex[:12]

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "error_id": self.error_id}


@dataclass
class Principal:
    """Who a bearer token belongs to."""

    account_id: str
    is_admin: bool


class SandboxStore(SandboxState):
    """Accounts, learning instances, registrations and tokens of one sandbox partner."""

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        state_path: Path | None = None,
        token_ttl: float = 3599.0,
        strict_learner_permissions: bool = False,
        token_account_id: bool = False,
        clock: Any = time.time,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.token_ttl = token_ttl
        self.strict = strict_learner_permissions
        self.token_account_id = token_account_id
        self._clock = clock
        super().__init__()
        self.tokens: dict[str, tuple[str, float]] = {}
        self.refresh_tokens: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        # How refusals are worded (a hostile dialect replaces it); the default keeps them.
        self.reword: Callable[[SandboxError], SandboxError] = lambda error: error
        # A refusal to answer a batch item with, nothing applied (hostile ``refuse``).
        self.item_trap: Callable[[Any], SandboxError | None] = lambda body: None
        self.max_batch_seen = 0
        self.open_journal(state_path)
        if ADMIN_EXTERNAL_ID not in self.by_external:
            self._apply({"op": "account", "id": str(uuid.uuid4()), "ext": ADMIN_EXTERNAL_ID})
        self.admin_id = self.by_external[ADMIN_EXTERNAL_ID]

    # ------------------------------------------------------------- tokens

    def issue_token(self, basic: str | None, form: dict[str, str]) -> dict[str, Any]:
        if basic != f"{self.api_key}:{self.api_secret}":
            raise SandboxError(401, "invalid client credentials")
        grant = form.get("grant_type")
        with self.lock:
            if grant == "client_credentials":
                scope = form.get("scope")
                if not scope or scope == ADMIN_EXTERNAL_ID:
                    account_id = self.admin_id
                else:
                    account_id = self.by_external.get(scope, "")
                    if not account_id or not self.accounts[account_id]["active"]:
                        raise SandboxError(400, f"no active account for scope {scope!r}")
            elif grant == "refresh_token":
                account_id = self.refresh_tokens.pop(form.get("refresh_token", ""), "")
                if not account_id:
                    raise SandboxError(400, "invalid refresh token")
            else:
                raise SandboxError(400, f"unsupported grant_type {grant!r}")
            access = secrets.token_urlsafe(24)
            refresh = secrets.token_urlsafe(24)
            expires_at = self._clock() + self.token_ttl
            self.tokens[access] = (account_id, expires_at)
            self.refresh_tokens[refresh] = account_id
        answer: dict[str, Any] = {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            # Whole seconds, as the API answers; a sub-second TTL (tests) stays a fraction.
            "expires_in": int(self.token_ttl) if self.token_ttl >= 1 else self.token_ttl,
            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at)),
        }
        if self.token_account_id:
            answer["account_id"] = account_id
        return answer

    def principal(self, bearer: str | None) -> Principal:
        if not bearer:
            raise SandboxError(401, "missing bearer token")
        with self.lock:
            found = self.tokens.get(bearer)
        if found is None:
            raise SandboxError(401, "invalid access token")
        account_id, expires_at = found
        if expires_at <= self._clock():
            raise SandboxError(401, "access token expired")
        return Principal(account_id=account_id, is_admin=account_id == self.admin_id)

    # ----------------------------------------------------------- accounts

    @staticmethod
    def _require_admin(who: Principal) -> None:
        if not who.is_admin:
            raise SandboxError(403, "current account must have partner administrator privileges")

    def _validate_external_id(self, body: Any) -> str:
        if not isinstance(body, dict) or not isinstance(body.get("external_user_id"), str):
            raise SandboxError(422, "external_user_id is required")
        ext = body["external_user_id"]
        if not ext or len(ext) > MAX_FIELD:
            raise SandboxError(422, f"external_user_id must be 1 to {MAX_FIELD} characters")
        return ext

    def create_account(self, who: Principal, body: Any) -> dict[str, Any]:
        self._require_admin(who)
        ext = self._validate_external_id(body)
        with self.lock:
            if ext in self.by_external:
                raise SandboxError(
                    422, f"Duplicate account with {ext}", "duplicate_account", ext=ext
                )
            account_id = str(uuid.uuid4())
            self._apply({"op": "account", "id": account_id, "ext": ext})
        return {
            "external_user_id": ext,
            "entitlements": [],
            "id": account_id,
            "email_verified": False,
        }

    def batch(self, who: Principal, body: Any) -> dict[str, Any]:
        self._require_admin(who)
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise SandboxError(400, "requests must be a non-empty list")
        with self.lock:
            self.max_batch_seen = max(self.max_batch_seen, len(requests))
        if len(requests) > 50:
            raise SandboxError(422, "up to 50 requests are allowed per batch call")
        responses = []
        for item in requests:
            if (
                not isinstance(item, dict)
                or str(item.get("method", "")).lower() != "post"
                or item.get("relative_url") != "/accounts"
            ):
                responses.append(
                    {
                        "code": 400,
                        "body": {"code": 400, "error_message": "only post /accounts is supported"},
                    }
                )
                continue
            try:
                trap = self.item_trap(item.get("body"))
                if trap is not None:
                    raise trap
                created = self.create_account(who, item.get("body"))
            except SandboxError as error:
                exc = self.reword(error)
                responses.append(
                    {"code": exc.status, "body": {"code": exc.status, "error_message": exc.message}}
                )
                continue
            responses.append(
                {
                    "code": 200,
                    "body": {
                        "external_user_id": created["external_user_id"],
                        "account_id": created["id"],
                        "entitlements": [],
                    },
                }
            )
        return {"responses": responses}

    def account_json(self, account_id: str) -> dict[str, Any]:
        account = self.accounts[account_id]
        return {
            "external_user_id": account["external_user_id"],
            "id": account_id,
            "entitlements": [],
            "email_verified": False,
        }

    def get_account(self, who: Principal, account_id: str) -> dict[str, Any]:
        with self.lock:
            if account_id not in self.accounts:
                raise SandboxError(404, "account not found")
            if not who.is_admin and who.account_id != account_id:
                raise SandboxError(403, "not allowed to read this account")
            return self.account_json(account_id)

    def delete_account(self, who: Principal, account_id: str) -> None:
        with self.lock:
            if account_id not in self.accounts:
                raise SandboxError(404, "account not found")
            if not who.is_admin and who.account_id != account_id:
                raise SandboxError(403, "not allowed to delete this account")
            self._apply({"op": "disable_account", "id": account_id})

    # -------------------------------------------------- learning instances

    def create_instance(self, who: Principal, body: Any) -> dict[str, Any]:
        self._require_admin(who)
        if not isinstance(body, dict):
            raise SandboxError(400, "body must be a JSON object")
        graph_id, name = body.get("graph_id"), body.get("name")
        if not isinstance(graph_id, str) or not graph_id:
            raise SandboxError(422, "graph_id is required")
        if not isinstance(name, str) or not name:
            raise SandboxError(422, "name is required")
        if len(name) > MAX_FIELD or len(graph_id) > MAX_FIELD:
            raise SandboxError(422, f"character fields hold at most {MAX_FIELD} characters")
        if EMAIL_IN_TEXT.search(name):
            raise SandboxError(422, "learning instance names must not contain email addresses")
        stored = {"graph_id": graph_id, "name": name}
        for key in ("start_date", "end_date"):
            if body.get(key) is not None:
                stored[key] = str(body[key])
        with self.lock:
            instance_id = str(uuid.uuid4())
            self._apply({"op": "instance", "id": instance_id, "body": stored})
        return {**stored, "id": instance_id, "in_progress": True}

    def _instance(self, instance_id: str) -> dict[str, Any]:
        found = self.instances.get(instance_id)
        if found is None or not found["active"]:
            raise SandboxError(404, "learning instance not found")
        return found

    def _is_instructor(self, account_id: str, instance_id: str) -> bool:
        reg_id = self.active_registration.get((account_id, instance_id))
        return reg_id is not None and self.registrations[reg_id]["type"] == "instructor"

    def get_instance(self, who: Principal, instance_id: str) -> dict[str, Any]:
        with self.lock:
            found = self._instance(instance_id)
            if not who.is_admin and not self._is_instructor(who.account_id, instance_id):
                raise SandboxError(403, "not allowed to read this learning instance")
            return {k: v for k, v in found.items() if k != "active"} | {"in_progress": True}

    def delete_instance(self, who: Principal, instance_id: str) -> None:
        self._require_admin(who)
        with self.lock:
            self._instance(instance_id)
            self._apply({"op": "delete_instance", "id": instance_id})

    # -------------------------------------------------------- registrations

    def create_registration(self, who: Principal, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SandboxError(400, "body must be a JSON object")
        kind = body.get("type")
        account_id = body.get("account_id")
        instance_id = body.get("learning_instance_id")
        if kind not in ("learner", "instructor"):
            raise SandboxError(422, "type must be learner or instructor")
        with self.lock:
            if account_id not in self.accounts or not self.accounts[account_id]["active"]:
                raise SandboxError(
                    422, "account_id does not name an active account", "account_unavailable"
                )
            if instance_id not in self.instances or not self.instances[instance_id]["active"]:
                raise SandboxError(
                    422,
                    "learning_instance_id does not name a learning instance",
                    "instance_unavailable",
                )
            if kind == "instructor":
                self._require_admin(who)
            else:
                instructor = self._is_instructor(who.account_id, instance_id)
                if not instructor and (self.strict or not who.is_admin):
                    raise SandboxError(
                        403, "learners must be registered by an instructor of the instance"
                    )
            existing = self.active_registration.get((account_id, instance_id))
            if existing is not None:
                raise SandboxError(
                    422,
                    "account is already registered in this learning instance",
                    "already_registered",
                    existing_type=self.registrations[existing]["type"],
                )
            if self.per_instance[instance_id] >= MAX_REGISTRATIONS:
                raise SandboxError(
                    422, "learning instance holds the maximum of 500 registrations", "instance_full"
                )
            if self.per_account[account_id] >= MAX_REGISTRATIONS:
                raise SandboxError(
                    422, "account holds the maximum of 500 registrations", "account_full"
                )
            reg_id = str(uuid.uuid4())
            stored = {"type": kind, "account_id": account_id, "learning_instance_id": instance_id}
            self._apply({"op": "registration", "id": reg_id, "body": stored})
        return {**stored, "id": reg_id}

    def get_registration(self, who: Principal, registration_id: str) -> dict[str, Any]:
        with self.lock:
            reg = self.registrations.get(registration_id)
            if reg is None:
                raise SandboxError(404, "registration not found")
            allowed = (
                who.is_admin
                or who.account_id == reg["account_id"]
                or self._is_instructor(who.account_id, reg["learning_instance_id"])
            )
            if not allowed:
                raise SandboxError(403, "not allowed to read this registration")
            return dict(reg)

    def delete_registration(self, who: Principal, registration_id: str) -> None:
        with self.lock:
            reg = self.registrations.get(registration_id)
            if reg is None:
                raise SandboxError(404, "registration not found")
            if not who.is_admin and not self._is_instructor(
                who.account_id, reg["learning_instance_id"]
            ):
                raise SandboxError(403, "not allowed to delete this registration")
            self._apply({"op": "delete_registration", "id": registration_id})

    # ----------------------------------------------------------- inspection

    def snapshot(self) -> dict[str, Any]:
        """The whole state, for tests and `GET /_sandbox/state`."""
        with self.lock:
            return {
                "accounts": [
                    {**self.account_json(a), "active": acc["active"]}
                    for a, acc in self.accounts.items()
                    if a != self.admin_id
                ],
                "instances": [dict(i) for i in self.instances.values()],
                "registrations": [dict(r) for r in self.registrations.values()],
                "requests": dict(self.requests),
                "max_batch_seen": self.max_batch_seen,
            }
