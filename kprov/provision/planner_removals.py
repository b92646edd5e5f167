"""The planner's removal steps, as a base of ``planner._Planner``: removals someone named
(`unregister`, a delta's `tobedeleted` rows) and removals a manifest implies (a class whose
whole membership it states no longer lists someone), each a HOLD without `--prune` or
without a registration id, an UNREGISTER otherwise. Moves are named later
(``provision.changes``), and the brakes and the grace judge them after that."""

from __future__ import annotations

from itertools import compress
from operator import itemgetter, not_
from typing import TYPE_CHECKING

from kprov.provision.changes import removal_item
from kprov.provision.plan import Action

if TYPE_CHECKING:
    from kprov.provision.plan import Item
    from kprov.provision.request import Request
    from kprov.rosters.model import Person
    from kprov.state.mapping import MappingIndex
    from kprov.state.registry import RegistrationRecord, Registry

_CODE = itemgetter(1)  # a registry key's instance code

ID_UNKNOWN = (
    "its registration id is unknown (the API confirmed it without one), so kprov cannot "
    "remove it: find the id and run `kprov registrations resolve`, or `kprov registrations "
    "forget` to stop tracking it"
)


class RemovalSteps:
    request: Request
    mapping: MappingIndex
    registry: Registry
    items: list[Item]
    changed: set[tuple[str, str]]
    desired: set[tuple[str, str]]
    instance_ids: dict[str, str]
    removal_items: list[int]
    explicit_items: set[int]
    matched: bytearray | None  # slots kept by lines planned by column

    def _wanted(self) -> set[tuple[str, str]]:
        raise NotImplementedError

    def _add(
        self, action: Action, person: Person, ref: str, instance_id: str, account_id: str,
        reason: str, *, role_change: bool = False,
    ) -> None:  # fmt: skip
        raise NotImplementedError

    def _explicit_removals(self) -> None:
        """Removals someone named: `unregister` arguments, delta rows marked tobedeleted."""
        active = self.registry.registration_index.active
        account_of = self.mapping.account_of
        unregister = self.request.command == "unregister"
        for person in self.request.removals:
            ref = person.instance_key or self.request.default_instance or ""
            instance_id = self.instance_ids.get(ref, "")
            account_id = account_of.get(person.external_id, "")
            existing = active.get((account_id, instance_id)) if account_id and instance_id else None
            if existing is None:
                if unregister:
                    reason = "not registered in this instance (local state)"
                    self._add(Action.BLOCK, person, ref, instance_id, account_id, reason)
                continue  # a delta removing someone already gone: nothing to do
            key = (existing.account_id, existing.instance_id)
            if key in self.changed:
                continue
            self.changed.add(key)
            why = "named on the command line" if unregister else f"tobedeleted in {person.origin}"
            self.explicit_items.add(len(self.items))
            self.removal_items.append(len(self.items))
            self.items.append(self._removal_or_hold(existing, ref, person, why))

    def _implicit_removals(self) -> None:
        """With a manifest: registrations kprov made in instances whose full membership the
        manifest states, which it no longer lists. Only the registrations of those classes
        are read, in order, less those a line planned by column keeps as its own (the line's
        id is the one recorded: it is wanted)."""
        request = self.request
        if request.command != "sync":
            return
        index = self.registry.registration_index
        by_code: dict[int, str] = {}
        for ref in request.authoritative:
            code = index.codes.get(self.instance_ids.get(ref, "") or "\0")
            if code is not None:
                by_code[code] = ref
        mine = map(by_code.__contains__, map(_CODE, index.slot_of))
        slots = list(compress(index.slot_of.values(), mine))
        if self.matched is not None:
            slots = list(compress(slots, map(not_, map(self.matched.__getitem__, slots))))
        wanted = self._wanted() if slots else self.desired
        asked: set[tuple[str, str]] | None = None  # (account, instance) the lines ask for
        for record in index.records(slots):
            ref = by_code[index.codes[record.instance_id]]
            key = (record.account_id, record.instance_id)
            ext = record.external_user_id or self._external_of(record.account_id)
            if (ext, record.instance_id) in wanted or key in self.changed:
                continue
            if asked is None:  # a mapping giving two people one account: a line keeps it
                account_of = self.mapping.account_of
                asked = {(account_of.get(e, ""), i) for e, i in wanted}
            if key in asked:
                continue
            self.changed.add(key)
            self.removal_items.append(len(self.items))
            # where the class's whole membership is stated: the line that no longer lists them
            where = request.instance_origins.get(ref)
            bundle, bang, _member = where.file.partition("!") if where else ("", "", "")
            why = f"no longer in {bundle}" if bang else "no longer in the manifest"
            removal = self._removal_or_hold(record, ref, None, why)
            self.items.append(removal._replace(origin=where) if where else removal)

    def _removal_or_hold(
        self, record: RegistrationRecord, ref: str, person: Person | None, why: str
    ) -> Item:
        item = self._removal_or_hold_of(record, ref, person, why)
        if item.sis_id or not item.external_id:
            return item
        return item._replace(sis_id=self.mapping.sis_of.get(item.external_id, ""))

    def _removal_or_hold_of(
        self, record: RegistrationRecord, ref: str, person: Person | None, why: str
    ) -> Item:
        if not self.request.prune:
            hold = removal_item(record, ref, person, f"{why}; pass --prune to remove it")
            return hold._replace(action=Action.HOLD)
        if not record.registration_id:
            return removal_item(record, ref, person, f"{why}; {ID_UNKNOWN}")._replace(
                action=Action.HOLD
            )
        return removal_item(record, ref, person, why)

    def _external_of(self, account_id: str) -> str:
        return self.mapping.account_of.owner_of(account_id) or ""
