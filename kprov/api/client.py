"""The Knewton v0 API client: documented endpoints in, checked dataclasses or typed errors out.

Everything that knows HTTP lives in ``api/``. Callers get dataclasses from ``models`` and
exceptions from ``errors``; they never see a response, a traceback or a secret. What the
server answers is checked before it leaves this module (ids are UUIDs, batch items belong to
their requests, refusals are classified narrowly); see ``transport`` for how each request is
sent (pacing, fresh tokens, deadlines, no redirects) and ``answers``/``batch`` for the reading.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from kprov.api.answers import answer_object, error_fields, refusal_error
from kprov.api.batch import MAX_BATCH, batch_request, read_batch_answer
from kprov.api.claims import CreatedIds
from kprov.api.errors import ApiError, MalformedAnswer, NotFound, error_for_status
from kprov.api.ids import id_segment, same_id
from kprov.api.models import (
    REGISTRATION_TYPES,
    Account,
    BatchItemResult,
    LearningInstance,
    Registration,
    Token,
)
from kprov.api.pacing import Pacer, RetryPolicy, endpoint_of
from kprov.api.scrub import Scrubber
from kprov.api.tokens import TokenCache
from kprov.api.transport import Answer, Limits, Transport
from kprov.api.urls import check_credential_url
from kprov.secret import Secret

__all__ = ["ADMIN", "MAX_BATCH", "REGISTRATION_TYPES", "KnewtonClient"]

DEFAULT_TIMEOUT = (10.0, 30.0)  # (connect, silence between bytes); see Limits for the rest
ADMIN = None  # the `as_user` value meaning "the partner admin's token"
MAX_AUTH_RETRIES = 3  # resends after a 401, each with a renewed token, per request


class KnewtonClient:
    """A thread-safe client for the documented v0 endpoints.

    ``as_user`` on a method selects whose token is used: ``None`` is the partner admin, an
    external user id is that user's own token (the 2-legged ``scope`` flow), cached per user.
    ``cancel``, once set, stops every request before it is sent and every wait at once
    (``kprov.errors.Interrupted``). *sleep* replaces those waits in tests. *refused_hint* is
    what to do when the API refuses the key or secret (it names where the secret came from).
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        api_secret: Secret,
        token_url: str | None = None,
        admin_external_id: str | None = None,
        pool_size: int = 8,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        pacer: Pacer | None = None,
        cancel: threading.Event | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        request_label: str | None = None,
        test_accounts: bool = False,
        refused_hint: str | None = None,
    ) -> None:
        # Defence in depth: config checks these too, but no caller may skip the check.
        self.base_url = check_credential_url(base_url, "base URL")
        self.token_url = check_credential_url(
            token_url or f"{self.base_url}/oauth/token", "token URL"
        )
        self.scrubber = Scrubber()
        basic = self.scrubber.add_credentials(api_key, api_secret.reveal())
        self.pacer = pacer or Pacer(clock=clock, sleep=sleep or time.sleep)
        self.cancel = cancel or threading.Event()
        self._test_accounts = test_accounts
        self._created = CreatedIds()  # no created id may name two resources
        self.transport = Transport(
            pacer=self.pacer,
            scrubber=self.scrubber,
            retry=retry,
            limits=limits or Limits.from_env(connect_timeout=timeout[0], read_timeout=timeout[1]),
            cancel=self.cancel,
            sleep=sleep,
            clock=clock,
            request_label=request_label,
            pool_size=pool_size,
        )
        self.tokens = TokenCache(
            self.transport,
            token_url=self.token_url,
            basic=basic,
            admin_scope=admin_external_id,
            scrubber=self.scrubber,
            clock=clock,
            base_url=self.base_url,
            refused_hint=refused_hint,
        )

    @property
    def request_count(self) -> int:
        return self.transport.request_count

    @property
    def answered_ok(self) -> int:
        """Requests answered 2xx (token requests too)."""
        return self.transport.answered_ok

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> KnewtonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- tokens

    def token_for(self, user: str | None = ADMIN) -> Token:
        """A valid token for the admin (None) or a user; one mint per user, however many threads."""
        return self.tokens.get(user)

    def forget_user(self, external_user_id: str) -> None:
        """Drop a user's cached token."""
        self.tokens.forget(external_user_id)

    # -------------------------------------------------------------- requests

    def _request(
        self,
        method: str,
        path: str,
        *,
        as_user: str | None = ADMIN,
        body: Any = None,
        extra_headers: dict[str, str] | None = None,
        known: Iterable[str] = (),
    ) -> Answer:
        """An authenticated call answered 2xx; anything else raises its typed error.

        The bearer token is read after the pacer admits each attempt; a 401 renews it and
        resends, at most MAX_AUTH_RETRIES times.
        """
        used: list[Token] = []

        def authorize() -> str:
            # The slot is held now: renewing here must not wait for a second one.
            token = self.tokens.get(as_user, in_slot=True)
            used.append(token)
            return f"Bearer {token.access_token}"

        resent = False  # an earlier attempt of this call may have been applied
        for auth_try in range(MAX_AUTH_RETRIES + 1):
            self.tokens.get(as_user)  # mint before queueing, with pacing, when there is none
            answer = self.transport.send(
                method,
                self.base_url + path,
                path=path,
                identity=as_user,
                authorize=authorize,
                log_body=body,
                headers=extra_headers,
                **({"json": body} if body is not None else {}),
            )
            resent = resent or answer.resent_after_unknown
            if answer.status != 401 or auth_try == MAX_AUTH_RETRIES:
                break
            self.tokens.invalidate(as_user, used[-1])
        if answer.status < 400:
            if answer.resent_after_unknown is resent:
                return answer
            return replace(answer, resent_after_unknown=resent)
        fields = error_fields(
            answer.body,
            content_type=answer.content_type,
            reason=answer.reason,
            scrubber=self.scrubber,
        )
        if answer.status in (409, 422):
            endpoint = endpoint_of(method, path)
            refusal = refusal_error(
                answer.status, fields, endpoint, method=method, path=path, known=known
            )
            refusal.resent_after_unknown = resent
            raise refusal
        kind = error_for_status(answer.status)
        if kind is NotFound and fields.body is None:
            # An HTML page or an empty answer is a proxy's or a router's 404, not the API's
            # "no such resource": never let it count as "already gone".
            kind = ApiError
        raise kind(
            fields.message,
            status=answer.status,
            error_id=fields.error_id,
            method=method,
            path=path,
            # A 503 (JSON or a proxy's page) and a 429 say "not processed"; any other 5xx may
            # follow a change, and so may an earlier attempt whose answer was lost.
            outcome_unknown=resent or (answer.status >= 500 and answer.status != 503),
        )

    def _object(self, answer: Answer, method: str, path: str) -> dict[str, Any]:
        """The answer's JSON object; MalformedAnswer for anything else (HTML, text, a list, an
        object naming a key twice)."""
        return answer_object(answer.body, answer.status, method, path, self.scrubber)

    def _creation_headers(self) -> dict[str, str]:
        return {"X-Knewton-Test": "true"} if self._test_accounts else {}

    # -------------------------------------------------------------- accounts

    def create_account(self, external_user_id: str) -> Account:
        where = {"method": "POST", "path": "/accounts"}
        answer = self._request(
            "POST",
            "/accounts",
            body={"external_user_id": external_user_id},
            extra_headers=self._creation_headers(),
            known=[external_user_id],
        )
        account = Account.from_answer(self._object(answer, **where), **where)
        _require_same(account.external_user_id, external_user_id, "external_user_id", where)
        return account

    def get_account(self, account_id: str) -> Account:
        path = f"/accounts/{id_segment(account_id, 'account id')}"
        body = self._object(self._request("GET", path), "GET", path)
        account = Account.from_answer(body, method="GET", path=path)
        _require_same_id(account.id, account_id, "account id", {"method": "GET", "path": path})
        return account

    def current_account(self, as_user: str | None = ADMIN) -> Account:
        where = {"method": "GET", "path": "/accounts/current"}
        answer = self._request("GET", "/accounts/current", as_user=as_user)
        account = Account.from_answer(self._object(answer, **where), **where)
        if as_user is not None:  # a user's own token must answer that user's account
            if account.external_user_id is None:
                # The reference documents the field: without it, whose account this is
                # cannot be checked (a server that answers one account to everyone).
                raise MalformedAnswer(
                    "the answer does not name its external_user_id, so it cannot be checked "
                    "to be this user's account",
                    **where,
                )
            _require_same(account.external_user_id, as_user, "external_user_id", where)
        return account

    def delete_account(self, account_id: str) -> None:
        self._request("DELETE", f"/accounts/{id_segment(account_id, 'account id')}")

    def account_id_of(self, external_user_id: str) -> str:
        """Recover the account id of an external id: the user's own token, then its account.

        ``GET /accounts/current`` under that user's own token (the documented way), whose
        answer must name that external_user_id. The token answer's ``account_id`` (not in the
        reference) saves that GET only when the token answer itself names the user; otherwise
        it must agree with the GET. Anything unverifiable raises MalformedAnswer: an id the
        server also gives someone else must never be recorded. Raises TokenRefused when no
        account has that external id. The user's token is not kept: recovery touches each
        user once, and a million cached tokens would be a leak.
        """
        try:
            token = self.token_for(external_user_id)
            if token.account_id and token.named_user == external_user_id:
                return token.account_id
            account = self.current_account(as_user=external_user_id)
            if token.account_id and not same_id(token.account_id, account.id):
                raise MalformedAnswer(
                    "the token answer and GET /accounts/current name two different accounts "
                    "for this user",
                    method="GET",
                    path="/accounts/current",
                )
            return account.id
        finally:
            self.forget_user(external_user_id)

    def batch_create_accounts(self, external_user_ids: Iterable[str]) -> list[BatchItemResult]:
        """One POST /batch of at most 50 account creations; one verified result per request,
        in request order. A wrong or unverifiable answer raises MalformedAnswer (nothing from
        it may be recorded; recover those accounts with ``account_id_of``)."""
        ids = list(external_user_ids)
        if not ids:
            return []
        if len(ids) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} requests, got {len(ids)}")
        if len(set(ids)) != len(ids):
            raise ValueError("a batch must not name an external id twice")
        answer = self._request(
            "POST", "/batch", body=batch_request(ids), extra_headers=self._creation_headers()
        )
        payload = self._object(answer, "POST", "/batch")
        return read_batch_answer(ids, payload, self.scrubber)

    # ---------------------------------------------------- learning instances

    def create_learning_instance(
        self,
        *,
        graph_id: str,
        name: str,
        start_date: str | None = None,
        end_date: str | None = None,
    ) -> LearningInstance:
        body: dict[str, Any] = {"graph_id": graph_id, "name": name}
        if start_date:
            body["start_date"] = start_date
        if end_date:
            body["end_date"] = end_date
        where = {"method": "POST", "path": "/learning-instances"}
        answer = self._request("POST", "/learning-instances", body=body, known=[name, graph_id])
        instance = LearningInstance.from_answer(self._object(answer, **where), **where)
        self._created.claim("learning instance", instance.id, tuple(body.items()), where)
        if answer.resent_after_unknown:
            # An earlier attempt may have created one too; the API cannot list instances.
            instance = replace(instance, possible_duplicate=True)
        return instance

    def get_learning_instance(self, instance_id: str) -> LearningInstance:
        path = f"/learning-instances/{id_segment(instance_id, 'learning instance id')}"
        where = {"method": "GET", "path": path}
        instance = LearningInstance.from_answer(
            self._object(self._request("GET", path), **where), **where
        )
        _require_same_id(instance.id, instance_id, "learning instance id", where)
        return instance

    def delete_learning_instance(self, instance_id: str) -> None:
        self._request(
            "DELETE", f"/learning-instances/{id_segment(instance_id, 'learning instance id')}"
        )

    # --------------------------------------------------------- registrations

    def create_registration(
        self,
        *,
        registration_type: str,
        account_id: str,
        learning_instance_id: str,
        as_user: str | None = ADMIN,
    ) -> Registration:
        """Register an account. Instructors: admin token; learners: an instructor's token.

        A refusal raises the narrowest ``Unprocessable`` subclass (``AlreadyRegistered`` with
        the type the answer names, ``InstanceUnavailable``...); unclear ones stay generic.
        """
        if registration_type not in REGISTRATION_TYPES:
            raise ValueError(f"registration type must be one of {REGISTRATION_TYPES}")
        body = {
            "type": registration_type,
            "account_id": account_id,
            "learning_instance_id": learning_instance_id,
        }
        where = {"method": "POST", "path": "/registrations"}
        answer = self._request(
            "POST", "/registrations", body=body, as_user=as_user, known=[account_id]
        )
        registration = Registration.from_answer(self._object(answer, **where), **where)
        for key, sent in body.items():
            answered = getattr(registration, key)
            if not answered:
                # The reference documents all three as answered: without them, nothing
                # says this id is the registration asked for (and not one to delete later).
                raise MalformedAnswer(f"the answer does not name its {key}", **where)
            if not same_id(answered, sent):
                raise MalformedAnswer(f"the answer's {key} is not the one sent", **where)
        self._created.claim("registration", registration.id, tuple(body.values()), where)
        return registration

    def get_registration(self, registration_id: str, as_user: str | None = ADMIN) -> Registration:
        path = f"/registrations/{id_segment(registration_id, 'registration id')}"
        where = {"method": "GET", "path": path}
        answer = self._request("GET", path, as_user=as_user)
        registration = Registration.from_answer(self._object(answer, **where), **where)
        _require_same_id(registration.id, registration_id, "registration id", where)
        return registration

    def delete_registration(self, registration_id: str, as_user: str | None = ADMIN) -> None:
        path = f"/registrations/{id_segment(registration_id, 'registration id')}"
        self._request("DELETE", path, as_user=as_user)


def _require_same(answered: str | None, sent: str, what: str, where: dict[str, str]) -> None:
    """An answer that names another user than the one asked about is not trusted."""
    if answered is not None and answered != sent:
        raise MalformedAnswer(f"the answer's {what} is not the one asked for", **where)


def _require_same_id(answered: str, sent: str, what: str, where: dict[str, str]) -> None:
    if not same_id(answered, sent):
        raise MalformedAnswer(f"the answer's {what} is not the one asked for", **where)
