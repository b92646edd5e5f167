"""The planner's guard steps (``provision.guards``, ``provision.guards_grace``), as a base of
``planner._Planner``: where in the plan they run, and with which of its indexes.

Order matters: remembered delta removals join the removals; the grace turns those still
inside it into WAIT items (before moves are named, classes judged and removals braked: a
waiting removal is no removal); then the source guard, the removal brake's judgment, and
the creation and removal brakes with everything that depends on what they withheld.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kprov.provision.guards import finish_guards, hold_changed_sources
from kprov.provision.guards_grace import AbsenceUpdate, remembered, wait_out_grace
from kprov.provision.guards_sources import stable_key
from kprov.provision.limits import removal_limit
from kprov.provision.plan import Action, Brake
from kprov.rosters.model import Origin, Person

if TYPE_CHECKING:
    from kprov.provision.guards import GuardHistory, GuardVerdict
    from kprov.provision.plan import Item
    from kprov.provision.planner import Request
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

    def _removal_or_hold(self, record: Any, ref: str, person: Person | None, why: str) -> Item:
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
        return {(account_of.get(ext, ""), inst) for ext, inst in self.desired}

    def _wait_out_grace(self) -> AbsenceUpdate:
        request = self.request
        if request.command != "sync":
            return AbsenceUpdate()
        read = {self.instance_ids.get(ref, "") for ref in request.authoritative} - {""}
        return wait_out_grace(
            self.items, self.removal_items, self.explicit_items, grace=request.guards.grace,
            absences=self.history.absences, read_instances=read,
            read_sources=request.reading.sources,
            instance_sources=request.reading.instance_sources,
        )  # fmt: skip

    def _guard(self, absences: AbsenceUpdate) -> None:
        request = self.request
        sources = hold_changed_sources(
            self.items, request.people, request.removals, request.reading, self.history,
            self.mapping.account_of, request.guards.thresholds,
        )  # fmt: skip
        self._judge_brake()
        stated = request.reading.instance_sources
        held = {ref for ref, names in stated.items() if {stable_key(n) for n in names} & sources[2]}
        self.verdict = finish_guards(
            self.items, request.guards, mapped=len(self.mapping.account_of), brake=self.brake,
            active=self.registry.registration_index.active.values(), sources=sources,
            absences=absences, held_instances={self.instance_ids.get(r, "") for r in held},
            resumed=self.history.resumed,
        )  # fmt: skip

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
        managed = sum(
            1
            for r in self.registry.registration_index.active.values()
            if r.instance_id in managed_ids
        )
        limit = removal_limit(request.max_removals, managed)
        self.brake = Brake(removals, limit, managed, request.max_removals)
