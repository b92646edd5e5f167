"""Registering learners and instructors in learning instances, and removing them.

The API's rules, as kprov applies them:
- instructors are registered with the partner admin's token;
- learners with the token of an instructor of that instance (``scope=<instructor id>``),
  which both readings of the reference allow; for an instance with no instructor the partner
  admin's token is tried, and a refusal (403) says to add an instructor to the roster;
- learner registrations are interleaved across instances, so every instructor's token spends
  its own quota in parallel;
- a registration can only be deleted by its id, and the API lists none: every result is
  recorded locally (durably, before it counts). After a request whose outcome was unknown, a
  conflict ("already registered") counts as success, recorded without the id and flagged.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from kprov.api.client import KnewtonClient
from kprov.api.errors import (
    ApiError,
    AuthenticationError,
    NetworkError,
    NotFound,
    PermissionDenied,
    ServerError,
    Unprocessable,
)
from kprov.errors import InputError, KprovError, SafetyLimitError
from kprov.provision.pool import Pool, StopRun
from kprov.rosters import Problem, problems_error
from kprov.rosters.model import INSTRUCTOR, LEARNER, Person
from kprov.state.journal import now_iso
from kprov.state.mapping import MappingIndex
from kprov.state.registry import InstanceRecord, RegistrationRecord, Registry

MAX_REGISTRATIONS = 500  # per learning instance and per account (entity limits)
MAX_FIELD = 256  # characters in any character field (entity limits)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CONFLICT_WORDS = ("already", "exist", "duplicate", "conflict")
RUN_STOPPERS = (AuthenticationError, NetworkError, ServerError)


class RegOutcome(StrEnum):
    REGISTERED = "registered"
    ALREADY_REGISTERED = "already_registered"
    CONFIRMED_WITHOUT_ID = "registered_id_unknown"
    FAILED = "failed"
    WOULD_REGISTER = "would_register"
    NOT_ATTEMPTED = "not_attempted"


SUCCESSES = (RegOutcome.REGISTERED, RegOutcome.ALREADY_REGISTERED,
             RegOutcome.CONFIRMED_WITHOUT_ID)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Enrollment:
    """One roster line resolved: who, in which instance (key as given and API id), as what."""

    person: Person
    instance_ref: str
    instance_id: str
    account_id: str = ""

    @property
    def role(self) -> str:
        return self.person.role


@dataclass(frozen=True, slots=True)
class EnrollmentResult:
    enrollment: Enrollment
    outcome: RegOutcome
    registration_id: str = ""
    reason: str = ""


@dataclass
class RegisterResult:
    results: list[EnrollmentResult] = field(default_factory=list)
    instances_created: list[InstanceRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    stopped_by: KprovError | None = None
    elapsed: float = 0.0

    def counts(self) -> Counter[str]:
        return Counter(r.outcome.value for r in self.results)

    @property
    def failed(self) -> int:
        return sum(
            1 for r in self.results if r.outcome in (RegOutcome.FAILED, RegOutcome.NOT_ATTEMPTED)
        )


@dataclass(frozen=True)
class InstanceSpec:
    """What to create when a roster names an instance kprov does not know yet."""

    graph_id: str
    name: str
    start_date: str = ""
    end_date: str = ""


def looks_like_instance_id(value: str) -> bool:
    return bool(_UUID.match(value))


def resolve_instances(
    refs: Sequence[str],
    registry: Registry,
    specs: dict[str, InstanceSpec],
) -> tuple[dict[str, str], list[str]]:
    """Instance ref -> API id for the known ones, plus the refs to create (in *specs*).

    Unknown refs without a spec are an input error (exit 2) naming each and the fix.
    """
    known: dict[str, str] = {}
    to_create: list[str] = []
    unknown: list[str] = []
    for ref in dict.fromkeys(refs):
        record = registry.instance_index.find(ref)
        if record is not None:
            known[ref] = record.instance_id
        elif ref in specs:
            to_create.append(ref)
        elif looks_like_instance_id(ref):
            known[ref] = ref  # an instance made outside kprov, named by its API id
        else:
            unknown.append(ref)
    if unknown:
        raise InputError(
            f"{len(unknown)} learning instance(s) are not known to kprov; nothing was sent:",
            problems=[repr(u) for u in unknown[:50]],
            hint="Create them first (kprov instances create --key KEY --graph-id G --name N), "
            "pass --graph-id G to create them on the way, or give the instance's API id.",
        )
    return known, to_create


def check_entity_limits(lines: Sequence[tuple[Person, str]]) -> None:
    """Refused up front: more than 500 registrations for one instance or one account, and an
    instance key longer than a character field may be (it may become the instance's name)."""
    per_instance: dict[str, list[Person]] = defaultdict(list)
    per_account: dict[str, list[Person]] = defaultdict(list)
    problems: list[Problem] = []
    for person, ref in lines:
        per_instance[ref].append(person)
        per_account[person.external_id].append(person)
        if len(ref) > MAX_FIELD and len(per_instance[ref]) == 1:
            problems.append(
                Problem(
                    person.origin.file,
                    person.origin.line,
                    f"instance {ref[:40]!r}... is {len(ref)} characters; the "
                    f"API allows {MAX_FIELD}: use a shorter key",
                )
            )

    for label, groups in (("learning instance", per_instance), ("account", per_account)):
        for name, people in groups.items():
            if len(people) > MAX_REGISTRATIONS:
                first_over = people[MAX_REGISTRATIONS].origin
                problems.append(
                    Problem(
                        first_over.file,
                        first_over.line,
                        f"{label} {name!r} would have {len(people)} registrations; the API "
                        f"allows {MAX_REGISTRATIONS} (this line is the first over); split it",
                    )
                )
    if problems:
        raise problems_error(problems)


class Registrar:
    """Creates instances on demand, and registrations with the right tokens, durably."""

    def __init__(
        self,
        client: KnewtonClient | None,
        registry: Registry,
        mapping: MappingIndex,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.registry = registry
        self.mapping = mapping
        self._progress = progress or (lambda n: None)
        self._lock = threading.Lock()
        self._learner_token_user: dict[str, str] = {}

    # -------------------------------------------------------------- instances

    def create_instances(
        self, refs: Sequence[str], specs: dict[str, InstanceSpec], result: RegisterResult
    ) -> dict[str, str]:
        """Create each instance and record it under its key; returns ref -> API id."""
        assert self.client is not None
        created: dict[str, str] = {}
        for ref in refs:
            spec = specs[ref]
            try:
                instance = self.client.create_learning_instance(
                    graph_id=spec.graph_id,
                    name=spec.name,
                    start_date=spec.start_date or None,
                    end_date=spec.end_date or None,
                )
            except RUN_STOPPERS as exc:
                result.stopped_by = exc
                break
            except ApiError as exc:
                raise KprovError(f"cannot create learning instance {ref!r}: {exc}") from None
            record = InstanceRecord(
                ref,
                instance.id,
                spec.graph_id,
                spec.name,
                spec.start_date,
                spec.end_date,
                now_iso(),
            )
            self.registry.instances.record(record, self.registry.instance_index)
            result.instances_created.append(record)
            if instance.possible_duplicate:
                result.warnings.append(
                    f"learning instance {ref!r} ({instance.id}) was created on a resend after an "
                    f"answer was lost: an earlier attempt may have left an empty duplicate named "
                    f"{spec.name!r} that the API cannot list; kprov uses {instance.id} only"
                )

            created[ref] = instance.id
        return created

    # ---------------------------------------------------------- registrations

    def run(
        self,
        enrollments: Sequence[Enrollment],
        *,
        concurrency: int,
        dry_run: bool = False,
        result: RegisterResult | None = None,
    ) -> RegisterResult:
        """Register every enrollment not yet recorded; instructors first, then learners."""
        started = time.monotonic()
        result = result or RegisterResult()
        todo: list[Enrollment] = []
        active = self.registry.registration_index.active
        for enrollment in enrollments:
            existing = active.get((enrollment.account_id, enrollment.instance_id))
            if existing is None:
                todo.append(enrollment)
                if dry_run:
                    result.results.append(EnrollmentResult(enrollment, RegOutcome.WOULD_REGISTER))
            elif existing.type != enrollment.role:
                result.results.append(
                    EnrollmentResult(
                        enrollment,
                        RegOutcome.FAILED,
                        existing.registration_id,
                        f"already registered as {existing.type}; to change the role, remove that "
                        "registration first (kprov unregister, or kprov sync --prune)",
                    )
                )
            else:
                result.results.append(
                    EnrollmentResult(
                        enrollment, RegOutcome.ALREADY_REGISTERED, existing.registration_id
                    )
                )
        if dry_run or not todo or result.stopped_by is not None:
            for enrollment in todo if not dry_run else []:
                result.results.append(
                    EnrollmentResult(
                        enrollment, RegOutcome.NOT_ATTEMPTED, reason="run stopped earlier"
                    )
                )
            result.elapsed = time.monotonic() - started
            return result
        instructors = [e for e in todo if e.role == INSTRUCTOR]
        learners = [e for e in todo if e.role == LEARNER]
        stop = self._run_phase(instructors, concurrency, result)
        if stop is None:
            self._learner_token_user = self._instructor_per_instance()
            stop = self._run_phase(self._interleaved(learners), concurrency, result)
        if stop is not None:
            result.stopped_by = result.stopped_by or stop
        if result.stopped_by is not None:
            settled = {id(r.enrollment) for r in result.results}
            for enrollment in todo:
                if id(enrollment) not in settled:
                    result.results.append(
                        EnrollmentResult(
                            enrollment, RegOutcome.NOT_ATTEMPTED, reason="run stopped before it"
                        )
                    )
        result.elapsed = time.monotonic() - started
        return result

    @staticmethod
    def _interleaved(learners: Sequence[Enrollment]) -> list[Enrollment]:
        """Round-robin across instances, so each instructor's quota is spent in parallel."""
        queues: dict[str, list[Enrollment]] = defaultdict(list)
        for enrollment in learners:
            queues[enrollment.instance_id].append(enrollment)
        ordered: list[Enrollment] = []
        columns = list(queues.values())
        for depth in range(max((len(q) for q in columns), default=0)):
            ordered.extend(q[depth] for q in columns if depth < len(q))
        return ordered

    def _run_phase(
        self, enrollments: Sequence[Enrollment], concurrency: int, result: RegisterResult
    ) -> KprovError | None:
        def done(_e: Enrollment, outcome: EnrollmentResult) -> None:
            with self._lock:
                result.results.append(outcome)
            self._progress(1)

        def stopped(enrollment: Enrollment, stop: StopRun) -> None:
            done(
                enrollment,
                EnrollmentResult(
                    enrollment,
                    RegOutcome.NOT_ATTEMPTED,
                    reason=f"outcome unknown ({stop.cause}); rerun",
                ),
            )

        def skipped(enrollment: Enrollment) -> None:
            done(
                enrollment,
                EnrollmentResult(
                    enrollment, RegOutcome.NOT_ATTEMPTED, reason="run stopped before it was sent"
                ),
            )

        pool: Pool[Enrollment, EnrollmentResult] = Pool(
            self._register_one,
            concurrency=concurrency,
            on_done=done,
            on_stopped=stopped,
            on_skipped=skipped,
            name="kprov-reg",
        )
        return pool.run(enrollments)

    def _instructor_per_instance(self) -> dict[str, str]:
        """One instructor (external id) per instance, whose token registers its learners.

        Always the same one (the smallest id), so one token per instance is minted, not more.
        """
        chosen: dict[str, str] = {}
        for record in self.registry.registration_index.active.values():
            if record.type == INSTRUCTOR and record.external_user_id:
                current = chosen.get(record.instance_id)
                if current is None or record.external_user_id < current:
                    chosen[record.instance_id] = record.external_user_id
        return chosen

    def _token_user_for(self, enrollment: Enrollment) -> str | None:
        """Whose token registers this line: the admin for instructors, else an instructor."""
        if enrollment.role == INSTRUCTOR:
            return None
        return self._learner_token_user.get(enrollment.instance_id)

    def _register_one(self, enrollment: Enrollment) -> EnrollmentResult:
        assert self.client is not None
        as_user = self._token_user_for(enrollment)
        try:
            registration = self.client.create_registration(
                registration_type=enrollment.role,
                account_id=enrollment.account_id,
                learning_instance_id=enrollment.instance_id,
                as_user=as_user,
            )
        except Unprocessable as exc:
            message = exc.api_message.lower()
            if exc.status == 409 or any(word in message for word in _CONFLICT_WORDS):
                return self._record(
                    enrollment,
                    "",
                    RegOutcome.CONFIRMED_WITHOUT_ID,
                    "the API says it already exists; its id is unknown",
                )
            return EnrollmentResult(enrollment, RegOutcome.FAILED, reason=str(exc))
        except PermissionDenied as exc:
            if enrollment.role == LEARNER and as_user is None:
                reason = (
                    f"{exc}; this instance has no instructor kprov knows of: add its "
                    "instructor to the roster (learners are registered with an "
                    "instructor's token)"
                )
            else:
                reason = str(exc)
            return EnrollmentResult(enrollment, RegOutcome.FAILED, reason=reason)
        except RUN_STOPPERS as exc:
            raise StopRun(exc) from None
        except ApiError as exc:
            return EnrollmentResult(enrollment, RegOutcome.FAILED, reason=str(exc))
        return self._record(enrollment, registration.id, RegOutcome.REGISTERED)

    def _record(
        self, enrollment: Enrollment, registration_id: str, outcome: RegOutcome, reason: str = ""
    ) -> EnrollmentResult:
        record = RegistrationRecord(
            enrollment.account_id,
            enrollment.instance_id,
            enrollment.role,
            registration_id,
            enrollment.person.external_id,
            now_iso(),
        )
        with self._lock:
            self.registry.registrations.record(record, self.registry.registration_index)
        return EnrollmentResult(enrollment, outcome, registration_id, reason)


# ---------------------------------------------------------------- unregistering


@dataclass(frozen=True, slots=True)
class Removal:
    external_user_id: str
    record: RegistrationRecord | None
    reason: str = ""


@dataclass
class UnregisterResult:
    removed: list[Removal] = field(default_factory=list)
    failed: list[Removal] = field(default_factory=list)
    stopped_by: KprovError | None = None


def plan_removals(
    external_ids: Sequence[str],
    instance_id: str,
    registry: Registry,
    mapping: MappingIndex,
) -> tuple[list[Removal], list[Removal]]:
    """(removable, not removable with the reason) for these ids in one instance."""
    removable: list[Removal] = []
    refused: list[Removal] = []
    active = registry.registration_index.active
    for ext in dict.fromkeys(external_ids):
        account_id = mapping.account_of.get(ext)
        record = active.get((account_id, instance_id)) if account_id else None
        if record is None:
            refused.append(Removal(ext, None, "not registered in this instance (local state)"))
        elif not record.registration_id:
            refused.append(
                Removal(
                    ext,
                    record,
                    "its registration id is unknown (the API "
                    "confirmed it without one), so it cannot be deleted",
                )
            )
        else:
            removable.append(Removal(ext, record))
    return removable, refused


def check_max_removals(count: int, limit: int | None) -> None:
    if limit is not None and count > limit:
        raise SafetyLimitError(
            f"{count} registrations would be removed, more than --max-removals {limit}; "
            "nothing was removed.",
            hint="Check the roster (a broken export reads as 'everyone left'), then raise "
            "--max-removals if this is really meant.",
        )


def unregister(
    client: KnewtonClient,
    registry: Registry,
    removals: Sequence[Removal],
    *,
    concurrency: int = 4,
) -> UnregisterResult:
    """DELETE each registration (partner admin token) and record it as removed."""
    result = UnregisterResult()
    lock = threading.Lock()

    def remove(removal: Removal) -> Removal:
        record = removal.record
        assert record is not None
        try:
            client.delete_registration(record.registration_id)
        except NotFound:
            pass  # already gone: the goal is reached
        except RUN_STOPPERS as exc:
            raise StopRun(exc) from None
        except ApiError as exc:
            return Removal(removal.external_user_id, record, str(exc))
        with lock:
            registry.registrations.record_removed(record, registry.registration_index)
        return removal

    def done(_r: Removal, outcome: Removal) -> None:
        (result.failed if outcome.reason else result.removed).append(outcome)

    def not_done(removal: Removal, *_: object) -> None:
        result.failed.append(
            Removal(removal.external_user_id, removal.record, "run stopped before it")
        )

    pool: Pool[Removal, Removal] = Pool(
        remove,
        concurrency=concurrency,
        on_done=done,
        on_stopped=not_done,
        on_skipped=not_done,
        name="kprov-unreg",
    )
    result.stopped_by = pool.run(removals)
    return result
