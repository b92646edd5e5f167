"""The planner's guard steps (``provision.guards``, ``provision.guards_grace``), as a base of
``planner._Planner``: where in the plan they run, and with which of its indexes.

Order matters: remembered delta removals join the removals; the sources are judged (a held
source's classes are frozen: their removals inside the grace say so); the grace turns the
removals still inside it into WAIT items (before moves are named, classes judged and
removals braked: a waiting removal is no removal); then the source guard withholds what
its held sources affect, the removal brake is judged, and the creation and removal brakes
withhold, with everything that depends on what they withheld.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kprov.provision.changes import Earlier, Stay
from kprov.provision.guards import (
    SourceVerdicts,
    finish_guards,
    judge_sources,
    withhold_held_sources,
)
from kprov.provision.guards_grace import AbsenceUpdate, remembered, wait_out_grace
from kprov.provision.guards_sources import stable_key
from kprov.provision.limits import removal_limit
from kprov.provision.plan import KEPT_REGISTRATION, Action, Brake
from kprov.rosters.model import INSTRUCTOR, Origin, Person

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from kprov.provision.guards import GuardHistory, GuardVerdict
    from kprov.provision.plan import Item
    from kprov.provision.request import Request
    from kprov.state.mapping import MappingIndex
    from kprov.state.registry import Registry


class GuardSteps:
    request: Request
    mapping: MappingIndex
    registry: Registry
    history: GuardHistory
    items: list[Item]
    brake: Brake | None
    verdict: GuardVerdict | None
    changed: set[tuple[str, str]]
    desired: set[tuple[str, str]]
    instance_ids: dict[str, str]
    removal_items: list[int]
    explicit_items: set[int]
    sources: SourceVerdicts
    frozen: set[str]  # the instance ids a held source states (their removals are frozen)

    @property
    def kept(self) -> Mapping[str, Sequence[Person]]:
        raise NotImplementedError

    def _removal_or_hold(self, record: Any, ref: str, person: Person | None, why: str) -> Item:
        raise NotImplementedError

    def _wanted(self) -> set[tuple[str, str]]:  # every line's (external id, instance)
        raise NotImplementedError

    def _remembered_removals(self) -> None:
        """`tobedeleted` rows of earlier deltas not applied yet (``guards_grace``)."""
        reading = self.request.reading
        deltas = {stable_key(s) for s in reading.deltas}
        if not deltas:
            return
        active = self.registry.registration_index.active
        handled = set(self.changed) | self._desired_keys()
        for record in remembered(self.history.absences, deltas, active, handled):
            self.changed.add(record.key)
            person = Person(record.person, record.role, Origin(record.file, record.line),
                            record.instance)  # fmt: skip
            self.explicit_items.add(len(self.items))
            self.removal_items.append(len(self.items))
            self.items.append(
                self._removal_or_hold(active[record.key], record.instance, person, record.reason)
            )

    def _desired_keys(self) -> set[tuple[str, str]]:
        account_of = self.mapping.account_of
        return {(account_of.get(ext, ""), inst) for ext, inst in self._wanted()}

    def _judge_sources(self) -> None:
        """The source guard's judgment, and the classes its held sources state."""
        request = self.request
        self.sources = judge_sources(
            request.people, request.removals, request.reading, self.history,
            self.mapping.account_of, request.guards.thresholds,
        )  # fmt: skip
        stated = request.reading.instance_sources
        held = self.sources.held
        refs = {
            ref for ref, names in stated.items() if {stable_key(n) for n in names} & held.keys()
        }
        self.frozen = {self.instance_ids.get(ref, "") for ref in refs} - {""}

    def _wait_out_grace(self) -> AbsenceUpdate:
        request = self.request
        if request.command != "sync":
            return AbsenceUpdate()
        read = {self.instance_ids.get(ref, "") for ref in request.authoritative} - {""}
        return wait_out_grace(
            self.items, self.removal_items, self.explicit_items, grace=request.guards.grace,
            absences=self.history.absences, read_instances=read,
            read_sources=request.reading.sources,
            instance_sources=request.reading.instance_sources, frozen=self.frozen,
            frozen_sources=self.sources.held.keys(),
        )  # fmt: skip

    def _guard(self, absences: AbsenceUpdate) -> None:
        request = self.request
        trips = withhold_held_sources(self.items, request.reading, self.sources)
        self._judge_brake()
        self.verdict = finish_guards(
            self.items, request.guards, mapped=len(self.mapping.account_of), brake=self.brake,
            active=self.registry.registration_index.instructors(), sources=self.sources,
            trips=trips, absences=absences, held_instances=self.frozen,
            resumed=self.history.resumed,
        )  # fmt: skip

    def _earlier(self) -> Earlier:
        """For naming moves whose addition an earlier night made: when each removal's person
        was first found absent (the ledger's absence counts), and the kept registrations of
        those people, and of the classes whose instructors leave."""
        absences = self.history.absences
        since: dict[tuple[str, str], str] = {}
        people: set[str] = set()
        classes: set[str] = set()
        for index in self.removal_items if absences else ():
            item = self.items[index]
            record = absences.get((item.account_id, item.instance_id))
            if record is None or not record.since_at:
                continue
            since[record.key] = record.since_at
            people.add(item.external_id)
            if item.role == INSTRUCTOR:
                classes.add(item.instance)
        if not since:
            return Earlier()
        active = self.registry.registration_index.active
        account_of = self.mapping.account_of
        default = self.request.default_instance or ""
        stays = []
        for person in self.kept[KEPT_REGISTRATION]:
            ref = person.instance_key or default
            if person.external_id not in people and not (
                person.role == INSTRUCTOR and ref in classes
            ):
                continue
            key = (account_of.get(person.external_id, ""), self.instance_ids.get(ref, ""))
            stay = active.get(key)
            if stay is not None:
                stays.append(Stay(person.external_id, person.role, ref, person.origin,
                                  stay.created_at))  # fmt: skip
        return Earlier(since, stays)

    def _judge_brake(self) -> None:
        """The removal brake's numbers: removals not withheld already, against the
        registrations of the classes the plan manages."""
        request = self.request
        if not request.prune or request.max_removals is None:
            return
        removals = sum(1 for i in self.items if i.action is Action.UNREGISTER and not i.guard)
        managed_ids = {self.instance_ids.get(ref, "") for ref in request.authoritative}
        managed_ids |= {i.instance_id for i in self.items if i.action is Action.UNREGISTER}
        managed_ids.discard("")
        managed = self.registry.registration_index.count_in(managed_ids)
        limit = removal_limit(request.max_removals, managed)
        self.brake = Brake(removals, limit, managed, request.max_removals)
