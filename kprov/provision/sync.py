"""`sync`: converge the platform to a semester manifest, safely, from cron.

The plan is the difference between what the manifest asks for and what kprov's local state
records. Applying it goes in dependency order: accounts -> instances -> instructors ->
learners -> removals. Removals happen only with --prune, only for registrations kprov
recorded in instances the manifest lists, and never beyond the removal limit (default 10% of
the registrations it manages): a broken export must not read as "everyone left".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kprov.api.client import KnewtonClient
from kprov.errors import InputError, KprovError, SafetyLimitError
from kprov.provision.enroll import EnrollOptions, EnrollResult, register_roster
from kprov.provision.manifest import Manifest
from kprov.provision.registrations import (
    InstanceSpec,
    Removal,
    UnregisterResult,
    unregister,
)
from kprov.rosters.model import INSTRUCTOR
from kprov.state.mapping import MappingIndex, MappingJournal
from kprov.state.registry import RegistrationRecord, Registry

DEFAULT_MAX_REMOVALS = "10%"


@dataclass(frozen=True, slots=True)
class PlannedRegistration:
    external_user_id: str
    instance_key: str
    role: str


@dataclass
class SyncPlan:
    accounts_to_create: list[str] = field(default_factory=list)
    instances_to_create: list[str] = field(default_factory=list)
    instructors_to_add: list[PlannedRegistration] = field(default_factory=list)
    learners_to_add: list[PlannedRegistration] = field(default_factory=list)
    role_changes: list[tuple[PlannedRegistration, RegistrationRecord]] = field(default_factory=list)
    removals: list[tuple[str, RegistrationRecord]] = field(default_factory=list)  # (key, rec)
    managed_registrations: int = 0
    removal_limit: int = 0
    prune: bool = False

    @property
    def removal_count(self) -> int:
        return len(self.removals) + (len(self.role_changes) if self.prune else 0)

    @property
    def over_limit(self) -> bool:
        return self.prune and self.removal_count > self.removal_limit

    @property
    def nothing_to_do(self) -> bool:
        return not (
            self.accounts_to_create or self.instances_to_create or self.instructors_to_add
            or self.learners_to_add or self.role_changes or (self.prune and self.removals)
        )  # fmt: skip

    def counts(self) -> dict[str, int]:
        return {
            "accounts_to_create": len(self.accounts_to_create),
            "instances_to_create": len(self.instances_to_create),
            "instructors_to_add": len(self.instructors_to_add),
            "learners_to_add": len(self.learners_to_add),
            "role_changes": len(self.role_changes),
            "registrations_to_remove": len(self.removals) if self.prune else 0,
            "removals_without_prune": 0 if self.prune else len(self.removals),
            "managed_registrations": self.managed_registrations,
            "removal_limit": self.removal_limit,
        }

    def as_json(self, detail_limit: int = 1000) -> dict[str, Any]:
        def rows(items: list[PlannedRegistration]) -> list[dict[str, str]]:
            return [
                {"external_user_id": i.external_user_id, "instance": i.instance_key, "role": i.role}
                for i in items[:detail_limit]
            ]

        return {
            **self.counts(),
            "accounts": self.accounts_to_create[:detail_limit],
            "instances": self.instances_to_create,
            "instructors": rows(self.instructors_to_add),
            "learners": rows(self.learners_to_add),
            "changes": [
                {
                    "external_user_id": p.external_user_id,
                    "instance": p.instance_key,
                    "from": r.type,
                    "to": p.role,
                }
                for p, r in self.role_changes
            ],
            "removals": [
                {"external_user_id": r.external_user_id, "instance": key, "role": r.type}
                for key, r in self.removals[:detail_limit]
            ],
        }


def removal_limit(spec: str | None, managed: int) -> int:
    """'12' -> 12; '5%' -> 5% of the managed registrations (rounded down)."""
    spec = (spec or DEFAULT_MAX_REMOVALS).strip()
    try:
        if spec.endswith("%"):
            share = float(spec[:-1])
            if not 0 <= share <= 100:
                raise ValueError
            return math.floor(managed * share / 100)
        value = int(spec)
        if value < 0:
            raise ValueError
        return value
    except ValueError:
        raise InputError(f"--max-removals {spec!r}: give a number (12) or a share (5%)") from None


def compute_plan(
    manifest: Manifest,
    mapping: MappingIndex,
    registry: Registry,
    *,
    prune: bool,
    max_removals: str | None,
) -> SyncPlan:
    plan = SyncPlan(prune=prune)
    instance_id_of = {
        key: record.instance_id
        for key in manifest.instances
        if (record := registry.instance_index.by_key.get(key)) is not None
    }
    plan.instances_to_create = [k for k in manifest.instances if k not in instance_id_of]
    active = registry.registration_index.active
    desired: set[tuple[str, str]] = set()
    seen_accounts: set[str] = set()
    for person in manifest.people:
        key = person.instance_key or ""
        desired.add((person.external_id, key))
        account_id = mapping.account_of.get(person.external_id)
        if account_id is None and person.external_id not in seen_accounts:
            plan.accounts_to_create.append(person.external_id)
        seen_accounts.add(person.external_id)
        instance_id = instance_id_of.get(key)
        planned = PlannedRegistration(person.external_id, key, person.role)
        existing = active.get((account_id, instance_id)) if account_id and instance_id else None
        if existing is None:
            (plan.instructors_to_add if person.role == INSTRUCTOR
             else plan.learners_to_add).append(planned)  # fmt: skip
        elif existing.type != person.role:
            plan.role_changes.append((planned, existing))
    external_of = {account: ext for ext, account in mapping.account_of.items()}
    key_of = {instance_id: key for key, instance_id in instance_id_of.items()}
    for registration in active.values():
        managed_key = key_of.get(registration.instance_id)
        if managed_key is None:
            continue  # not an instance this manifest manages
        plan.managed_registrations += 1
        ext = registration.external_user_id or external_of.get(registration.account_id, "")
        if (ext, managed_key) not in desired:
            plan.removals.append((managed_key, registration))

    plan.removal_limit = removal_limit(max_removals, plan.managed_registrations)
    return plan


@dataclass
class SyncResult:
    plan: SyncPlan
    enroll: EnrollResult | None = None
    removals: UnregisterResult | None = None
    role_change_removals: UnregisterResult | None = None
    stopped_by: KprovError | None = None
    failures: list[str] = field(default_factory=list)


def apply_plan(
    manifest: Manifest,
    plan: SyncPlan,
    *,
    registry: Registry,
    journal: MappingJournal,
    mapping: MappingIndex,
    client_factory: Callable[[], KnewtonClient],
    concurrency: int,
    progress: Callable[[int], None] | None = None,
) -> SyncResult:
    """Apply the plan; a removal limit breach still applies the additions, then stops (6)."""
    result = SyncResult(plan=plan)
    if plan.nothing_to_do:
        return result
    client_holder: list[KnewtonClient] = []

    def shared_client() -> KnewtonClient:
        if not client_holder:
            client_holder.append(client_factory())
        return client_holder[0]

    try:
        if plan.role_changes and plan.prune and not plan.over_limit:
            removals = [Removal(p.external_user_id, r) for p, r in plan.role_changes]
            result.role_change_removals = unregister(
                shared_client(), registry, removals, concurrency=concurrency
            )
            result.stopped_by = result.role_change_removals.stopped_by
        if result.stopped_by is None:
            specs = {
                key: InstanceSpec(spec.graph_id, spec.name, spec.start_date, spec.end_date)
                for key, spec in manifest.instances.items()
                if key in plan.instances_to_create
            }
            result.enroll = register_roster(
                manifest.people,
                default_instance=None,
                registry=registry,
                journal=journal,
                mapping=mapping,
                client_factory=shared_client,
                close_client=False,
                options=EnrollOptions(concurrency=concurrency),
                specs=specs,
                progress=progress,
            )
            result.stopped_by = result.enroll.registrations.stopped_by
        if result.stopped_by is None and plan.prune and plan.removals:
            if plan.over_limit:
                result.stopped_by = SafetyLimitError(
                    f"{plan.removal_count} registrations would be removed, more than the limit "
                    f"of {plan.removal_limit} ({plan.managed_registrations} managed); the "
                    "additions were applied, nothing was removed.",
                    hint="Check the rosters (a broken export reads as 'everyone left'); if the "
                    "removals are meant, rerun with a higher --max-removals (N or P%).",
                )
            else:
                removals = [
                    Removal(r.external_user_id, r) for _key, r in plan.removals if r.registration_id
                ]
                result.failures.extend(
                    f"{r.external_user_id} in {key}: registration id unknown (the API "
                    "confirmed it without one), cannot remove it"
                    for key, r in plan.removals
                    if not r.registration_id
                )
                result.removals = unregister(
                    shared_client(), registry, removals, concurrency=concurrency
                )
                result.stopped_by = result.removals.stopped_by
    finally:
        for client in client_holder:
            client.close()
    for removal_result in (result.role_change_removals, result.removals):
        if removal_result is not None:
            result.failures.extend(
                f"{r.external_user_id}: not removed: {r.reason}" for r in removal_result.failed
            )
    return result
