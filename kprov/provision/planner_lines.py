"""The planner's enrolment lines by column, as a base of ``planner._Planner``.

A nightly sync of a statewide manifest lists a million lines, nearly all already registered
as they ask. One by one, each line was a ``Person``, its account's text, two tuples and three
dict look-ups (8 s). Here each chunk of a roster's ids (``rosters.people``) goes, in C, to
accounts through the mapping's own values, to registry keys (``state.registry_index``), to
slots, and to their type: a line whose registration is recorded with its role is kept
without making anything. Every other line -- not mapped, not registered, another role,
disabled, an instance not created yet -- goes through the one-by-one step
(``_register_line``) in its order, as before, so the plan is the same item for item.

The lines are walked by column only when nothing about them is wrong: a roster that names an
instance while --instance is given, a line without one, more than 500 lines for one account
or an instance key too long are all said, line by line, by the one-by-one path.
"""

from __future__ import annotations

from array import array
from collections import Counter, deque
from collections.abc import Callable
from heapq import merge
from itertools import compress, repeat
from operator import and_, eq, is_, not_
from typing import TYPE_CHECKING, cast

from kprov.api_facts import MAX_FIELD
from kprov.provision.limits import MAX_REGISTRATIONS
from kprov.provision.plan import KEPT_REGISTRATION
from kprov.rosters.people import People, enrolment_columns, people_at, positions
from kprov.state.registry_index import KIND_MASK, KIND_OF, NOWHERE

if TYPE_CHECKING:
    from kprov.provision.plan import Item
    from kprov.provision.request import Request
    from kprov.rosters.model import Person
    from kprov.state.mapping import MappingIndex
    from kprov.state.mapping_index import Account
    from kprov.state.registry import Registry

Chunk = tuple[range | list[int], list[str], list[str], list[str | None]]


class LineSteps:
    request: Request
    mapping: MappingIndex
    registry: Registry
    items: list[Item]
    kept_at: dict[str, array[int]]
    instance_ids: dict[str, str]
    desired: set[tuple[str, str]]
    matched: bytearray | None  # slots of registrations plain lines keep as their own

    def _account_for(self, person: Person, seen: set[str]) -> None:
        raise NotImplementedError

    def _instances(self, refs: list[str]) -> None:
        raise NotImplementedError

    def _register_line(self, person: Person, ref: str, position: int) -> None:
        raise NotImplementedError

    def _lines_by_column(self) -> bool:
        """Plan every enrolment line (accounts, instances, registrations) by column; False,
        having planned nothing, when the lines are not ``People`` or something about them
        must be said line by line."""
        request = self.request
        if not isinstance(request.people, People):
            return False
        chunks = self._line_chunks()
        if chunks is None:
            return False
        refs = dict.fromkeys(ref for _at, _ids, _roles, keys in chunks for ref in self._refs(keys))
        compact = self.mapping.account_of.compact
        accounts = [list(map(compact.get, ids)) for _at, ids, _roles, _keys in chunks]
        unmapped = positions()
        for (at, _ids, _roles, _keys), values in zip(chunks, accounts, strict=True):
            if None in values:
                unmapped.extend(compress(at, map(is_, values, repeat(None))))
        if unmapped and request.create_accounts:
            seen: set[str] = set()
            for person in people_at(request.people, unmapped):
                self._account_for(person, seen)
        if any(len(at) for at, *_rest in chunks) or request.removals or request.instances:
            self._instances([*request.instances, *refs])
        self._registrations_by_column(chunks, accounts, list(refs))
        return True

    def _refs(self, keys: list[str | None]) -> list[str]:
        default = self.request.default_instance
        if default:
            return [default] if keys else []
        return list(dict.fromkeys(keys))  # type: ignore[arg-type]  # all named (checked)

    def _line_chunks(self) -> list[Chunk] | None:
        """The enrolment lines (rows that are not accounts only) a chunk at a time, or None
        when the one-by-one path must name a line (no instance, two, limits)."""
        request = self.request
        default = request.default_instance
        chunks: list[Chunk] = []
        per_account: Counter[str] = Counter()
        for base, ids, roles, keys, only in enrolment_columns(request.people):
            at: range | list[int] = range(base, base + len(ids))
            if only:
                kept = [position not in only for position in at]
                at, ids = list(compress(at, kept)), list(compress(ids, kept))
                roles, keys = list(compress(roles, kept)), list(compress(keys, kept))
            if (any(keys) if default else not all(keys)) and ids:
                return None  # an instance named twice, or not at all: said where
            per_account.update(ids)
            chunks.append((at, ids, roles, keys))
        lines = sum(len(at) for at, *_rest in chunks)
        if not lines and not request.removals and not request.nobody_is_fine:
            return None  # "names nobody to register"
        refs = {ref for *_rest, keys in chunks for ref in self._refs(keys)}
        if any(len(ref) > MAX_FIELD for ref in refs):
            return None
        if per_account and max(per_account.values()) > MAX_REGISTRATIONS:
            return None
        return chunks

    def _registrations_by_column(
        self, chunks: list[Chunk], accounts: list[list[Account | None]], refs: list[str]
    ) -> None:
        """Lines registered as they ask are kept (their slots marked as matched); the rest
        go one by one, in order."""
        request = self.request
        index = self.registry.registration_index
        slot = cast("Callable[[tuple[Account | None, int], int], int]", index.slot_of.get)
        flags, externals = index.flags, index.externals
        codes = {ref: index.codes.get(self.instance_ids.get(ref, "") or "\0", -1) for ref in refs}
        default = request.default_instance or ""
        kept, rest, matched = positions(), positions(), bytearray(len(index.rows))
        for (at, ids, roles, keys), values in zip(chunks, accounts, strict=True):
            named = cast(list[str], keys)  # every line names its instance (checked)
            code = [codes[default]] * len(ids) if default else list(map(codes.__getitem__, named))
            slots = list(map(slot, zip(values, code, strict=True), repeat(NOWHERE)))
            kinds = map(and_, map(flags.__getitem__, slots), repeat(KIND_MASK))
            same = list(map(eq, kinds, map(KIND_OF.get, roles)))
            kept.extend(compress(at, same))
            if not all(same):
                rest.extend(compress(at, map(not_, same)))
            mine = list(compress(slots, same))
            theirs = map(eq, map(externals.__getitem__, mine), compress(ids, same))
            deque(map(matched.__setitem__, compress(mine, theirs), repeat(1)), maxlen=0)
        self.matched = matched
        for person, position in zip(people_at(request.people, rest), rest, strict=True):
            self._register_line(person, person.instance_key or default, position)
        one_by_one = self.kept_at[KEPT_REGISTRATION]
        self.kept_at[KEPT_REGISTRATION] = (
            array("I", merge(kept, one_by_one)) if one_by_one else kept
        )
        self._wanted_later = True

    _wanted_later = False

    def _wanted(self) -> set[tuple[str, str]]:
        """(external id, instance id or ref) of every line: made from the columns, when first
        asked, for lines planned by column (the one-by-one step adds its own)."""
        if self._wanted_later:
            self._wanted_later = False
            for _at, ids, _roles, keys in self._line_chunks() or []:
                where = {ref: self.instance_ids.get(ref, "") or ref for ref in self._refs(keys)}
                default = self.request.default_instance
                refs = [default] * len(ids) if default else cast(list[str], keys)
                self.desired.update(zip(ids, map(where.__getitem__, refs), strict=True))
        return self.desired
