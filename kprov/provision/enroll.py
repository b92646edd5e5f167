"""`register`: from roster lines to registrations, creating what is missing on the way.

Order: validate everything (exit 2 before any request) -> create missing accounts (batch
path) -> create missing instances (with --graph-id) -> instructors -> learners. The API client
is built only if something must be sent, so a run with nothing to do sends nothing at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from kprov.api.client import KnewtonClient
from kprov.errors import InputError
from kprov.provision.accounts import AccountImporter, ImportOptions, ImportResult
from kprov.provision.registrations import (
    Enrollment,
    EnrollmentResult,
    InstanceSpec,
    RegisterResult,
    Registrar,
    RegOutcome,
    check_entity_limits,
    resolve_instances,
)
from kprov.rosters import Problem, problems_error
from kprov.rosters.model import INSTRUCTOR, LEARNER, Person
from kprov.state.mapping import MappingIndex, MappingJournal
from kprov.state.registry import Registry


@dataclass(frozen=True)
class EnrollOptions:
    concurrency: int = 4
    dry_run: bool = False
    create_accounts: bool = True


def specs_for_unknown(
    people: Sequence[Person],
    default_instance: str | None,
    registry: Registry,
    graph_id: str | None,
    titles: dict[str, str],
) -> dict[str, InstanceSpec]:
    """With --graph-id: how to create each instance the roster names and kprov lacks."""
    if not graph_id:
        return {}
    refs = {p.instance_key or default_instance for p in people if not p.account_only}
    return {
        ref: InstanceSpec(graph_id, titles.get(ref, ref))
        for ref in sorted(r for r in refs if r)
        if registry.instance_index.find(ref) is None
    }


def enrollment_lines(
    people: Sequence[Person], default_instance: str | None
) -> list[tuple[Person, str]]:
    """(person, instance ref) for every line; a line with no instance at all is an error."""
    lines: list[tuple[Person, str]] = []
    problems: list[Problem] = []
    for person in people:
        if person.account_only:
            continue
        ref = person.instance_key or default_instance
        if not ref:
            problems.append(
                Problem(
                    person.origin.file,
                    person.origin.line,
                    "no learning instance for this line: add an 'instance' "
                    "column or pass --instance ID|KEY",
                )
            )
            continue
        lines.append((person, ref))
    if problems:
        raise problems_error(problems)
    if not lines:
        raise InputError(
            "the roster names nobody to register",
            hint="Give a roster with learners or instructors.",
        )
    return lines


@dataclass
class EnrollResult:
    accounts: ImportResult | None
    registrations: RegisterResult
    unmapped: list[Person]  # lines whose account is missing and was not to be created
    rate_limited: int = 0
    requests: int = 0


def register_roster(
    people: Sequence[Person],
    *,
    default_instance: str | None,
    registry: Registry,
    journal: MappingJournal,
    mapping: MappingIndex,
    client_factory: Callable[[], KnewtonClient],
    options: EnrollOptions,
    specs: dict[str, InstanceSpec] | None = None,
    progress: Callable[[int], None] | None = None,
    close_client: bool = True,
) -> EnrollResult:
    """Register every line; *specs* say how to create instances kprov does not know yet."""
    lines = enrollment_lines(people, default_instance)
    check_entity_limits(lines)
    refs = [ref for _p, ref in lines]
    specs = specs or {}
    instance_ids, to_create = resolve_instances(refs, registry, specs)

    client: KnewtonClient | None = None
    client_lock = threading.Lock()

    def get_client() -> KnewtonClient:
        nonlocal client
        with client_lock:
            if client is None:
                client = client_factory()
            return client

    started = time.monotonic()
    result = RegisterResult()
    unmapped = [p for p, _r in lines if p.external_id not in mapping.account_of]
    missing_people = [] if options.create_accounts else unmapped
    to_import = unmapped if options.create_accounts else []
    importer = AccountImporter(
        None if options.dry_run or not to_import else get_client(),
        journal,
        mapping,
        progress=progress,
    )
    import_options = ImportOptions(concurrency=options.concurrency, dry_run=options.dry_run)
    accounts = ImportResult()

    def import_accounts(people: list[Person]) -> None:
        if people:
            done = importer.run(people, import_options)
            accounts.by_id.update(done.by_id)
            accounts.batches_sent += done.batches_sent
            accounts.stopped_by = accounts.stopped_by or done.stopped_by

    def create_instances() -> None:
        if to_create and not options.dry_run:
            registrar = Registrar(get_client(), registry, mapping)
            instance_ids.update(registrar.create_instances(to_create, specs, result))

    def enrollments_for(role: str) -> list[Enrollment]:
        chosen: list[Enrollment] = []
        for person, ref in lines:
            if person.role != role:
                continue
            account_id = mapping.account_of.get(person.external_id, "")
            instance_id = instance_ids.get(ref, "")
            if options.dry_run or (account_id and instance_id):
                chosen.append(Enrollment(person, ref, instance_id or ref, account_id))
                continue
            reason = (
                "not in the mapping (run `kprov accounts import`, or drop --no-create)"
                if not account_id
                else "its instance was not created"
            )
            fate = accounts.by_id.get(person.external_id)
            if not account_id and fate is not None and fate.reason:
                reason = f"no account: {fate.reason}"
            stopped = result.stopped_by is not None or accounts.stopped_by is not None
            result.results.append(
                EnrollmentResult(
                    Enrollment(person, ref, instance_id, account_id),
                    RegOutcome.NOT_ATTEMPTED if stopped else RegOutcome.FAILED,
                    reason=reason,
                )
            )
        return chosen

    def not_attempted(enrollments: list[Enrollment]) -> None:
        """Every line keeps a fate, even when the run stopped before reaching it."""
        active = registry.registration_index.active
        for e in enrollments:
            existing = active.get((e.account_id, e.instance_id))
            if existing is not None and existing.type == e.role:
                result.results.append(
                    EnrollmentResult(e, RegOutcome.ALREADY_REGISTERED, existing.registration_id)
                )
            else:
                result.results.append(
                    EnrollmentResult(e, RegOutcome.NOT_ATTEMPTED, reason="run stopped before it")
                )

    def register(enrollments: list[Enrollment]) -> None:

        needs_sending = not options.dry_run and any(
            (e.account_id, e.instance_id) not in registry.registration_index.active
            for e in enrollments
        )
        registrar = Registrar(
            get_client() if needs_sending else None, registry, mapping, progress=progress
        )
        registrar.run(
            enrollments, concurrency=options.concurrency, dry_run=options.dry_run, result=result
        )

    try:
        # Pipelined to spend each quota in parallel: instructors' accounts and the instances
        # first; then the learners' accounts while the instructors are registered; then the
        # learners (under their instructors' tokens).
        instructors = [p for p in to_import if p.role == INSTRUCTOR]
        instructor_ids = {p.external_id for p in instructors}
        learners = [p for p in to_import if p.external_id not in instructor_ids]
        with ThreadPoolExecutor(1, thread_name_prefix="kprov-side") as side:
            instances_done = side.submit(create_instances)
            import_accounts(instructors)
            instances_done.result()
            learners_done = side.submit(import_accounts, learners)
            instructor_enrollments = enrollments_for(INSTRUCTOR)
            if accounts.stopped_by is None and result.stopped_by is None:
                register(instructor_enrollments)
            else:
                not_attempted(instructor_enrollments)
            learners_done.result()
        result.stopped_by = result.stopped_by or accounts.stopped_by
        learner_enrollments = enrollments_for(LEARNER)
        if result.stopped_by is None:
            register(learner_enrollments)
        else:
            not_attempted(learner_enrollments)

        result.elapsed = time.monotonic() - started
    finally:
        if client is not None and close_client:
            client.close()
    return EnrollResult(
        accounts=accounts if to_import else None,
        registrations=result,
        unmapped=missing_people,
        rate_limited=client.pacer.rate_limited_count if client else 0,
        requests=client.request_count if client else 0,
    )
