"""`register`: from roster lines to registrations, creating what is missing on the way.

Order: validate everything (exit 2 before any request) -> create missing accounts (batch
path) -> create missing instances (with --graph-id) -> instructors -> learners. The API client
is built only if something must be sent, so a run with nothing to do sends nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
from kprov.rosters.model import Person
from kprov.state.mapping import MappingIndex, MappingJournal
from kprov.state.registry import Registry


@dataclass(frozen=True)
class EnrollOptions:
    concurrency: int = 4
    dry_run: bool = False
    create_accounts: bool = True
    graph_id: str | None = None  # create unknown instances with this knowledge graph
    start_date: str = ""
    end_date: str = ""


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
    class_titles: dict[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> EnrollResult:
    lines = enrollment_lines(people, default_instance)
    check_entity_limits(lines)
    refs = [ref for _p, ref in lines]
    specs: dict[str, InstanceSpec] = {}
    if options.graph_id:
        titles = class_titles or {}
        specs = {
            ref: InstanceSpec(
                options.graph_id, titles.get(ref, ref), options.start_date, options.end_date
            )
            for ref in dict.fromkeys(refs)
            if registry.instance_index.find(ref) is None
        }
    instance_ids, to_create = resolve_instances(refs, registry, specs)

    client: KnewtonClient | None = None

    def get_client() -> KnewtonClient:
        nonlocal client
        if client is None:
            client = client_factory()
        return client

    result = RegisterResult()
    accounts: ImportResult | None = None
    unmapped = [p for p, _r in lines if p.external_id not in mapping.account_of]
    missing_people: list[Person] = []
    try:
        if unmapped and options.create_accounts:
            importer = AccountImporter(
                None if options.dry_run else get_client(), journal, mapping, progress=progress
            )
            accounts = importer.run(
                unmapped, ImportOptions(concurrency=options.concurrency, dry_run=options.dry_run)
            )
            result.stopped_by = accounts.stopped_by
        elif unmapped:
            missing_people = unmapped
        if to_create and not options.dry_run and result.stopped_by is None:
            registrar = Registrar(get_client(), registry, mapping)
            instance_ids.update(registrar.create_instances(to_create, specs, result))
        enrollments: list[Enrollment] = []
        for person, ref in lines:
            account_id = mapping.account_of.get(person.external_id, "")
            instance_id = instance_ids.get(ref, "")
            if not options.dry_run and (not account_id or not instance_id):
                reason = (
                    "not in the mapping (run `kprov accounts import`, or drop --no-create)"
                    if not account_id
                    else "its instance was not created"
                )
                if accounts is not None and not account_id:
                    fate = accounts.by_id.get(person.external_id)
                    reason = f"no account: {fate.reason}" if fate and fate.reason else reason
                outcome = (
                    RegOutcome.NOT_ATTEMPTED if result.stopped_by is not None else RegOutcome.FAILED
                )
                result.results.append(
                    EnrollmentResult(
                        Enrollment(person, ref, instance_id, account_id), outcome, reason=reason
                    )
                )
                continue
            enrollments.append(Enrollment(person, ref, instance_id or ref, account_id))
        needs_sending = any(
            (e.account_id, e.instance_id) not in registry.registration_index.active
            for e in enrollments
        )
        registrar = Registrar(
            get_client() if needs_sending and not options.dry_run else None,
            registry,
            mapping,
            progress=progress,
        )
        registrar.run(
            enrollments, concurrency=options.concurrency, dry_run=options.dry_run, result=result
        )
    finally:
        if client is not None:
            client.close()
    return EnrollResult(
        accounts=accounts,
        registrations=result,
        unmapped=missing_people,
        rate_limited=client.pacer.rate_limited_count if client else 0,
        requests=client.request_count if client else 0,
    )
