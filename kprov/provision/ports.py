"""The small interface the executor talks to the API through, and its HTTP implementation.

The executor knows these calls and their typed errors, nothing of HTTP: unit tests run it
against an in-memory fake, integration tests against the sandbox over real HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

from kprov.api.models import BatchItemResult
from kprov.provision.plan import InstanceSpec

if TYPE_CHECKING:
    from kprov.api.client import KnewtonClient
    from kprov.api.pacing import Reservation


# Quota buckets (identity, endpoint) the scheduler reserves before it hands work to a worker.
BATCH = "POST /batch"
INSTANCES = "POST /learning-instances"
REGISTRATIONS = "POST /registrations"
UNREGISTRATIONS = "DELETE /registrations/{id}"


class CreatedInstance(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def possible_duplicate(self) -> bool: ...


class ProvisioningApi(Protocol):
    """What the executor needs from the API. Errors are ``kprov.api.errors`` classes."""

    cancel: threading.Event

    def create_accounts(self, external_ids: Sequence[str]) -> Sequence[BatchItemResult]:
        """One POST /batch; results in request order, verified against the requests."""

    def recover_account_id(self, external_id: str) -> str:
        """The account id of an existing external id, via that user's own token."""

    def create_instance(self, spec: InstanceSpec) -> CreatedInstance: ...

    def register(self, *, role: str, account_id: str, instance_id: str, as_user: str | None) -> str:
        """The new registration's id."""

    def unregister(self, registration_id: str) -> None: ...

    def try_reserve(self, as_user: str | None, endpoint: str) -> Reservation | float: ...

    def using(self, reservation: Reservation | None) -> AbstractContextManager[None]: ...

    @property
    def requests_sent(self) -> int: ...

    @property
    def rate_limited(self) -> int: ...

    @property
    def requests_ok(self) -> int:
        """Requests answered 2xx: proof the credential worked (kept in the run ledger)."""


class ClientApi:
    """``ProvisioningApi`` over the real HTTP client."""

    def __init__(self, client: KnewtonClient) -> None:
        self.client = client
        self.cancel = client.cancel

    def create_accounts(self, external_ids: Sequence[str]) -> Sequence[BatchItemResult]:
        return self.client.batch_create_accounts(external_ids)

    def recover_account_id(self, external_id: str) -> str:
        """Through the user's own token; the client checks the account it names is theirs."""
        return self.client.account_id_of(external_id)

    def create_instance(self, spec: InstanceSpec) -> CreatedInstance:
        return self.client.create_learning_instance(
            graph_id=spec.graph_id,
            name=spec.name,
            start_date=spec.start_date or None,
            end_date=spec.end_date or None,
        )

    def register(self, *, role: str, account_id: str, instance_id: str, as_user: str | None) -> str:
        """The client checks the answer echoes what was asked (account, instance, type)."""
        registration = self.client.create_registration(
            registration_type=role,
            account_id=account_id,
            learning_instance_id=instance_id,
            as_user=as_user,
        )
        return registration.id

    def unregister(self, registration_id: str) -> None:
        self.client.delete_registration(registration_id)

    def try_reserve(self, as_user: str | None, endpoint: str) -> Reservation | float:
        return self.client.pacer.try_reserve(as_user, endpoint)

    def using(self, reservation: Reservation | None) -> AbstractContextManager[None]:
        return self.client.pacer.using(reservation)

    @property
    def requests_sent(self) -> int:
        return self.client.request_count

    @property
    def rate_limited(self) -> int:
        return self.client.pacer.rate_limited_count

    @property
    def requests_ok(self) -> int:
        return self.client.answered_ok


class OfflineApi:
    """For a plan that sends nothing: the executor settles its items without a client (so a
    night with nothing to do sends no request at all, not even for a token)."""

    def __init__(self) -> None:
        self.cancel = threading.Event()

    def _never(self, *_args: object, **_kwargs: object) -> Any:
        raise AssertionError("a plan without changes sent a request")

    create_accounts = recover_account_id = create_instance = register = unregister = _never

    def try_reserve(self, as_user: str | None, endpoint: str) -> Reservation | float:
        from kprov.api.pacing import Reservation

        return Reservation(None)  # nothing here ever waits (nor is ever sent)

    def using(self, reservation: object) -> AbstractContextManager[None]:
        return nullcontext()

    requests_sent = 0
    rate_limited = 0
    requests_ok = 0
