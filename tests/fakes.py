"""An in-memory ProvisioningApi: the API's rules without HTTP, with scripted faults."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kprov.api.errors import (
    AlreadyRegistered,
    DuplicateAccount,
    InstanceUnavailable,
    NotFound,
    PermissionDenied,
    Refusal,
    TokenRefused,
)
from kprov.api.models import BatchItemResult
from kprov.errors import Interrupted
from kprov.provision.execute import Executor
from kprov.provision.plan import InstanceSpec, Plan
from kprov.provision.planner import build_plan
from kprov.provision.request import Request
from kprov.provision.result import RunResult
from kprov.rosters.model import Origin, Person
from kprov.state.local import LocalState


@dataclass
class FakeInstance:
    id: str
    possible_duplicate: bool = False


@dataclass
class FakeApi:
    """Accounts, instances and registrations in dicts; every call is logged in ``calls``.

    ``faults[kind]`` is a list of callables (or exceptions) consumed one per call of that kind
    ("batch", "recover", "instance", "register", "unregister"): an exception is raised, a
    callable is called with the call's arguments first (to mutate or to raise).
    """

    strict_learners: bool = True
    accounts: dict[str, str] = field(default_factory=dict)  # external id -> account id
    instances: dict[str, InstanceSpec] = field(default_factory=dict)
    registrations: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id -> (a,i,t)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    faults: dict[str, list[Any]] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    delays: dict[tuple[str | None, str], list[float]] = field(default_factory=dict)
    # A quota counted in calls, not seconds: a POST /batch waits until this many other calls
    # were made since the last one (or it was refused 500 times: nothing else could go).
    batch_gap: int = 0
    _batch_refusals: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- helpers for tests
    def ext_of(self, account_id: str) -> str:
        return next(e for e, a in self.accounts.items() if a == account_id)

    def enrolments(self) -> set[tuple[str, str, str]]:
        return {(self.ext_of(a), i, t) for a, i, t in self.registrations.values()}

    def _fault(self, kind: str, *args: Any) -> None:
        queue = self.faults.get(kind)
        if queue:
            fault = queue.pop(0)
            if isinstance(fault, BaseException):
                raise fault
            if callable(fault):
                fault(*args)

    def _log(self, kind: str, detail: Any) -> None:
        if self.cancel.is_set():  # like the client: nothing is sent once the run stops
            raise Interrupted("stopped before sending")
        with self._lock:
            self.calls.append((kind, detail))

    # -- ProvisioningApi
    def create_accounts(self, external_ids: Sequence[str]) -> Sequence[BatchItemResult]:
        self._log("batch", list(external_ids))
        self._fault("batch", external_ids)
        results = []
        with self._lock:
            for ext in external_ids:
                if ext in self.accounts:
                    results.append(
                        BatchItemResult(
                            ext,
                            422,
                            error_message=f"Duplicate account with {ext}",
                            refusal=Refusal.DUPLICATE_ACCOUNT,
                        )
                    )
                    continue
                self.accounts[ext] = str(uuid.uuid4())
                results.append(BatchItemResult(ext, 200, account_id=self.accounts[ext]))
        return results

    def recover_account_id(self, external_id: str) -> str:
        self._log("recover", external_id)
        self._fault("recover", external_id)
        if external_id not in self.accounts:
            raise TokenRefused("no active account for scope", status=400)
        return self.accounts[external_id]

    def create_instance(self, spec: InstanceSpec) -> FakeInstance:
        self._log("instance", spec)
        self._fault("instance", spec)
        instance_id = str(uuid.uuid4())
        with self._lock:
            self.instances[instance_id] = spec
        return FakeInstance(instance_id)

    def _teachers(self, instance_id: str) -> set[str]:
        return {
            self.ext_of(a) for a, i, t in self.registrations.values()
            if i == instance_id and t == "instructor"
        }  # fmt: skip

    def register(self, *, role: str, account_id: str, instance_id: str, as_user: str | None) -> str:
        self._log("register", (role, account_id, instance_id, as_user))
        self._fault("register", role, account_id, instance_id, as_user)
        with self._lock:
            if instance_id not in self.instances:
                raise InstanceUnavailable("learning instance does not exist or is closed")
            if role == "instructor" and as_user is not None:
                raise PermissionDenied("instructors are registered by the partner admin")
            teacher = as_user in self._teachers(instance_id)
            if role == "learner" and not teacher and (self.strict_learners or as_user):
                raise PermissionDenied("learners must be registered by an instructor")
            for a, i, t in self.registrations.values():
                if (a, i) == (account_id, instance_id):
                    error = AlreadyRegistered("account is already registered", status=422)
                    error.registered_type = t
                    raise error
            registration_id = str(uuid.uuid4())
            self.registrations[registration_id] = (account_id, instance_id, role)
        return registration_id

    def unregister(self, registration_id: str) -> None:
        self._log("unregister", registration_id)
        self._fault("unregister", registration_id)
        with self._lock:
            if self.registrations.pop(registration_id, None) is None:
                raise NotFound("registration not found", status=404)

    def try_reserve(self, as_user: str | None, endpoint: str) -> Any:
        if self.batch_gap and endpoint == "POST /batch":
            with self._lock:
                kinds = [kind for kind, _detail in self.calls]
                since = kinds[::-1].index("batch") if "batch" in kinds else self.batch_gap
                if since < self.batch_gap and self._batch_refusals < 500:
                    self._batch_refusals += 1
                    return 0.001
                self._batch_refusals = 0
        waits = self.delays.get((as_user, endpoint))
        if waits:
            wait = waits.pop(0)
            if wait:
                return wait
        return ("reserved", as_user, endpoint)

    @contextmanager
    def using(self, reservation: Any) -> Iterator[None]:
        yield

    @property
    def requests_sent(self) -> int:
        return len(self.calls)

    @property
    def rate_limited(self) -> int:
        return 0

    @property
    def requests_ok(self) -> int:
        return len(self.calls)


def raising(error: BaseException) -> Callable[..., None]:
    def fault(*_args: Any) -> None:
        raise error

    return fault


def duplicate(message: str = "Duplicate account") -> DuplicateAccount:
    return DuplicateAccount(message, status=422)


# ------------------------------------------------- runs of a plan against FakeApi


def semester(classes: int = 3, learners: int = 4) -> list[Person]:
    people = []
    line = 1
    for c in range(classes):
        line += 1
        people.append(Person(f"t{c}", "instructor", Origin("r.csv", line), f"c{c}"))
        for n in range(learners):
            line += 1
            people.append(Person(f"s{c}-{n}", "learner", Origin("r.csv", line), f"c{c}"))
    return people


def register_plan(state: LocalState, people: list[Person], **extra: object) -> Plan:
    specs = {f"c{c}": InstanceSpec("gref-x", f"Class {c}") for c in range(10)}
    request = Request(command="register", people=people, specs=specs, **extra)  # type: ignore[arg-type]
    return build_plan(request, state.mapping, state.registry)


def run(api: FakeApi, state: LocalState, plan: Plan, concurrency: int = 4) -> RunResult:
    return Executor(api, state, concurrency=concurrency).run(plan)
