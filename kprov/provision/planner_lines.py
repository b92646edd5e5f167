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
from collections.abc import Callable, Sequence
from heapq import merge
from itertools import chain, compress, repeat
from operator import eq, is_, not_
from typing import TYPE_CHECKING, NamedTuple, cast

from kprov.api_facts import MAX_FIELD
from kprov.provision.limits import MAX_REGISTRATIONS
from kprov.provision.plan import KEPT_REGISTRATION, Action
from kprov.rosters.people import People
from kprov.rosters.people_columns import enrolment_columns, people_at, positions
from kprov.state.registry_index import KIND_MASK, KIND_OF, NOWHERE

if TYPE_CHECKING:
    from kprov.provision.plan import Item
    from kprov.provision.request import Request
    from kprov.rosters.model import Person
    from kprov.state.mapping import MappingIndex
    from kprov.state.mapping_index import Account
    from kprov.state.registry import Registry


# a slot's flags -> its kind as a line's; 0xFD for what no line asks (another type, slot 0),
# never a line's kind (0xFE is a role that is neither)
_KINDS = bytes(f & KIND_MASK if (f & KIND_MASK) in KIND_OF.values() else 0xFD for f in range(256))


class Lines(NamedTuple):
    """A chunk's enrolment lines (its account-only rows left out), by column."""

    at: range | list[int]  # their positions in the roster
    ids: list[str]
    kinds: bytes  # a registry kind a line (``KIND_OF``; 0xFE: no registration has it)
    instances: Sequence[int]  # a code a line: an index into keys
    keys: list[str | None]  # instance keys, by code
    used: dict[int, None]  # the codes the lines use, in the order they first appear


class LineSteps:
    request: Request
    mapping: MappingIndex
    registry: Registry
    items: list[Item]
    kept_at: dict[str, array[int]]
    instance_ids: dict[str, str]
    desired: set[tuple[str, str]]
    matched: bytearray | None  # slots of registrations plain lines keep as their own
    _asked: dict[tuple[str, str], str]  # registrations lines ask for -> the ref asking

    def _account_for(self, person: Person, seen: set[str]) -> None:
        raise NotImplementedError

    def _instances(self, refs: list[str]) -> None:
        raise NotImplementedError

    def _register_line(self, person: Person, ref: str, position: int) -> None:
        raise NotImplementedError

    def _add(
        self, action: Action, person: Person, ref: str, instance_id: str, account_id: str,
        reason: str, *, role_change: bool = False,
    ) -> None:  # fmt: skip
        raise NotImplementedError

    def _asked_already(self, person: Person, ref: str, instance_id: str, account_id: str) -> bool:
        """Whether an earlier line asks for this registration by another name of its class
        (key, API id): sent twice, the second answer left it recorded without its id. The
        later line is then a BLOCK."""
        if not instance_id:
            return False
        key = (account_id or f"new:{person.external_id}", instance_id)
        first = self._asked.setdefault(key, ref)
        if first == ref:
            return False
        reason = (
            f"the same registration as the line in {first!r}, which names the same class: name "
            "each class one way (its key or its id) in the roster and the manifest"
        )
        self._add(Action.BLOCK, person, ref, instance_id, account_id, reason)
        return True

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
        refs = dict.fromkeys(ref for lines in chunks for ref in self._refs(lines))
        compact = self.mapping.account_of.compact
        accounts = [list(map(compact.get, lines.ids)) for lines in chunks]
        unmapped = positions()
        for lines, values in zip(chunks, accounts, strict=True):
            if None in values:
                unmapped.extend(compress(lines.at, map(is_, values, repeat(None))))
        if unmapped and request.create_accounts:
            seen: set[str] = set()
            for person in people_at(request.people, unmapped):
                self._account_for(person, seen)
        if any(lines.ids for lines in chunks) or request.removals or request.instances:
            self._instances([*request.instances, *refs])
        self._registrations_by_column(chunks, accounts)
        return True

    def _refs(self, lines: Lines) -> list[str]:
        """The instance refs of *lines*, in the order they first appear."""
        default = self.request.default_instance
        if default:
            return [default] if lines.ids else []
        return [cast(str, lines.keys[code]) for code in lines.used]  # all named (checked)

    def _line_chunks(self) -> list[Lines] | None:
        """The enrolment lines a chunk at a time, or None when the one-by-one path must name
        a line (no instance, two, limits)."""
        request = self.request
        default = request.default_instance
        chunks: list[Lines] = []
        distinct: set[str] = set()  # counted only when some id has two lines
        for base, ids, roles, names, instances, keys, only in enrolment_columns(request.people):
            table = bytes(KIND_OF.get(name, 0xFE) for name in names).ljust(256, b"\xfe")
            kinds = roles.translate(table)
            at: range | list[int] = range(base, base + len(ids))
            if only:
                kept = [position not in only for position in at]
                at, ids = list(compress(at, kept)), list(compress(ids, kept))
                kinds, instances = (
                    bytes(compress(kinds, kept)),
                    array("I", compress(instances, kept)),
                )
            used = dict.fromkeys(instances)
            named = [keys[code] for code in used]
            if ids and (any(named) if default else not all(named)):
                return None  # an instance named twice, or not at all: said where
            distinct.update(ids)
            chunks.append(Lines(at, ids, kinds, instances, keys, used))
        nobody = not any(lines.ids for lines in chunks)
        if nobody and not request.removals and not request.nobody_is_fine:
            return None  # "names nobody to register"
        refs = {ref for lines in chunks for ref in self._refs(lines)}
        if any(len(ref) > MAX_FIELD for ref in refs):
            return None
        count = sum(len(lines.ids) for lines in chunks)
        if len(distinct) < count and count > MAX_REGISTRATIONS:  # some id on two lines
            per_account = Counter(chain.from_iterable(lines.ids for lines in chunks))
            if max(per_account.values()) > MAX_REGISTRATIONS:
                return None
        return chunks

    def _registrations_by_column(
        self, chunks: list[Lines], accounts: list[list[Account | None]]
    ) -> None:
        """Lines registered as they ask are kept (their slots marked as matched); the rest
        go one by one, in order."""
        request = self.request
        index = self.registry.registration_index
        slot = cast("Callable[[tuple[Account | None, int], int], int]", index.slot_of.get)
        flags, externals = index.flags, index.externals
        default = request.default_instance or ""
        kept, rest, matched = positions(), positions(), bytearray(len(index.rows))
        for lines, values in zip(chunks, accounts, strict=True):
            codes = self._registry_codes(lines)
            slots = list(map(slot, zip(values, codes, strict=True), repeat(NOWHERE)))
            kinds = bytes(map(flags.__getitem__, slots)).translate(_KINDS)
            if kinds == lines.kinds:  # every line registered as it asks (most nights)
                kept.extend(lines.at)
                mine, ids = slots, lines.ids
            else:
                same = list(map(eq, kinds, lines.kinds))
                kept.extend(compress(lines.at, same))
                rest.extend(compress(lines.at, map(not_, same)))
                mine, ids = list(compress(slots, same)), list(compress(lines.ids, same))
            recorded = list(map(externals.__getitem__, mine))
            if recorded != ids:  # a registration recorded for another id: not this line's
                mine = list(compress(mine, map(eq, recorded, ids)))
            deque(map(matched.__setitem__, mine, repeat(1)), maxlen=0)
        self.matched = matched
        for person, position in zip(people_at(request.people, rest), rest, strict=True):
            self._register_line(person, person.instance_key or default, position)
        one_by_one = self.kept_at[KEPT_REGISTRATION]
        self.kept_at[KEPT_REGISTRATION] = (
            array("I", merge(kept, one_by_one)) if one_by_one else kept
        )
        self._wanted_later = True

    def _registry_codes(self, lines: Lines) -> list[int]:
        """Each line's instance as the registry's code (-1: none it records, or not created)."""
        codes = self.registry.registration_index.codes

        def code(ref: str | None) -> int:
            return codes.get(self.instance_ids.get(ref or "", "") or "\0", -1)

        default = self.request.default_instance
        if default:
            return [code(default)] * len(lines.ids)
        table = {used: code(lines.keys[used]) for used in lines.used}
        return list(map(table.__getitem__, lines.instances))

    _stated: dict[tuple[str, str], set[str]] | None = None

    def _roles_stated(self, ext: str, instance_id: str) -> set[str]:
        """The roles the lines give *ext* in the instance *instance_id*, by whatever name of
        the class each line uses (made when first asked: only a role change asks)."""
        if self._stated is None:
            stated: dict[tuple[str, str], set[str]] = {}
            default = self.request.default_instance or ""
            for base, ids, roles, names, instances, keys, only in enrolment_columns(
                self.request.people
            ):
                where = {c: self.instance_ids.get(keys[c] or default, "") for c in set(instances)}
                for at, (who, role, code) in enumerate(zip(ids, roles, instances, strict=True)):
                    if where[code] and base + at not in only:
                        stated.setdefault((who, where[code]), set()).add(names[role])
            self._stated = stated
        return self._stated.get((ext, instance_id), set())

    _wanted_later = False

    def _wanted(self) -> set[tuple[str, str]]:
        """(external id, instance id or ref) of every line: made from the columns, when first
        asked, for lines planned by column (the one-by-one step adds its own)."""
        if self._wanted_later:
            self._wanted_later = False
            default = self.request.default_instance
            for lines in self._line_chunks() or []:
                refs = [default] * len(lines.ids) if default else [
                    cast(str, lines.keys[code]) for code in lines.instances
                ]  # fmt: skip
                where = {ref: self.instance_ids.get(ref, "") or ref for ref in set(refs)}
                self.desired.update(zip(lines.ids, map(where.__getitem__, refs), strict=True))
        return self.desired
