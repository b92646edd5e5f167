"""The active registrations, indexed by column: a statewide registry holds millions.

A registration is found by its *key*: (its account as the mapping stores it -- a UUID's
128-bit number, any other id as its text -- and a small code for its instance). A plan looks
up a million lines with the mapping's own values, a chunk at a time in C, and never makes the
account's text. Per key the index keeps a *slot*: the journal line it was read from (a
``RegistrationRecord`` is made from it only when someone asks, then kept), a byte of flags
(learner or instructor, without an id, noted) and the external id. A nightly sync of a
million registrations that are all as the roster asks makes no record at all.

It reads as before: ``active`` is a ``Mapping`` (account id, instance id) -> record, in the
order rows were applied (last row per key wins; a replaced key moves to the end).

``by_id`` (registration id -> the record holding it) is made when first needed: while rows
only add registrations (or replace one without an id by one without), what applying each
row keeps is the last holder of each id among the active records, in order; a load, and a
run that records no id, never pay for it. Requests still pending ("sent" rows) are read
when first asked for (``state.registry_requests``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import compress, repeat
from operator import itemgetter
from typing import cast

from kprov.state.mapping_index import Account, account_text
from kprov.state.registry_rows import (
    FORGOTTEN,
    INSTRUCTOR_KIND,
    KIND_MASK,
    KIND_OF,
    NO_ID,
    NOTED,
    NOTED_FLAG,
    NOWHERE,
    REGISTERED,
    REGISTRATION_HEADER,
    REMOVED,
    SENT,
    Key,
    RegistrationRecord,
    account_value,
    flags_of,
    record_of_line,
)

__all__ = [
    "FORGOTTEN",
    "KIND_MASK",
    "KIND_OF",
    "NOTED",
    "NOWHERE",
    "NO_ID",
    "REGISTERED",
    "REGISTRATION_HEADER",
    "REMOVED",
    "SENT",
    "Key",
    "RegistrationIndex",
    "RegistrationRecord",
    "account_value",
]  # fmt: skip

_IS_INSTRUCTOR = bytes((f & KIND_MASK) == INSTRUCTOR_KIND for f in range(256))
HAS_ID = bytes(not f & NO_ID and f != 0xFF for f in range(256))
_UNRESOLVED = bytes(bool(f & NO_ID) and f != 0xFF for f in range(256))
_UNTOLD = bytes(bool(f & NO_ID) and not f & NOTED_FLAG and f != 0xFF for f in range(256))
_SECOND = itemgetter(1)
_FIRST = itemgetter(0)
_FOURTH = itemgetter(3)


class RegistrationIndex:
    """Active registrations by key, requests without a recorded answer, ids (when asked)."""

    def __init__(self) -> None:
        self.slot_of: dict[Key, int] = {}  # active key -> slot
        self.rows: list[str | RegistrationRecord | None] = [None]  # slot -> line or record
        self.flags = bytearray([0xFF])  # slot -> flags (slot 0: nothing)
        self.externals: list[str] = [""]  # slot -> external id
        self.codes: dict[str, int] = {}  # instance id (as recorded) -> code
        self.instances: list[str] = []  # code -> instance id
        # key -> the type kprov last asked for, while no answer is recorded: an "already
        # registered" that does not name a type is kprov's own only if it matches.
        self.pending: dict[Key, str] = {}
        # while set, ``pending`` is not kept: loading skips "sent" rows, and the requests
        # still pending are read from the journal again when first asked for
        # (``state.registry_requests``), then the rows applied since (logged) replayed
        self.pending_source: Callable[[], dict[tuple[str, str], str]] | None = None
        self.pending_log: list[tuple[Key, str | None]] = []
        self.repairs: list[str] = []
        # made when first needed: until a row replaces a record, or a block is applied row
        # by row, what applying each row keeps is the last holder of each id, in order
        # registration id (lower case) -> its holder: a slot (its record made when asked) or
        # a record (applied, or claimed before it is recorded)
        self.id_holders: dict[str, int | RegistrationRecord] | None = None
        self.version = 0  # changes with every change of the active registrations
        self._columns: tuple[int, list[Account], list[str]] | None = None
        self._teaching: tuple[int, list[RegistrationRecord]] | None = None

    # ------------------------------------------------------------------ keys

    def code(self, instance_id: str) -> int:
        """The code of *instance_id* (as recorded), given one if it has none."""
        code = self.codes.get(instance_id)
        if code is None:
            code = self.codes[instance_id] = len(self.instances)
            self.instances.append(instance_id)
        return code

    def key_of(self, account_id: str, instance_id: str) -> Key | None:
        """The key of a registration named by its texts; None when no registration can have
        it (an instance never recorded)."""
        code = self.codes.get(instance_id)
        return None if code is None else (account_value(account_id), code)

    def texts_of(self, key: Key) -> tuple[str, str]:
        value, code = key
        return (value if isinstance(value, str) else account_text(value)), self.instances[code]

    def record_at(self, slot: int) -> RegistrationRecord:
        row = self.rows[slot]
        if isinstance(row, str):
            row = self.rows[slot] = record_of_line(row)
        assert row is not None
        return row

    # ------------------------------------------------------------------ applying

    def apply(self, record: RegistrationRecord) -> None:
        """Apply one row, as the journal is read (last row per key wins)."""
        key = (account_value(record.account_id), self.code(record.instance_id))
        if self.pending_source is not None:
            self.pending_log.append((key, record.type if record.status == SENT else None))
        elif record.status == SENT:
            self.pending[key] = record.type
        else:
            self.pending.pop(key, None)
        if record.status == SENT:
            return
        self.version += 1
        previous = self.slot_of.get(key)
        replaced_id = previous is not None and not self.flags[previous] & NO_ID
        if self.id_holders is None and (record.registration_id or replaced_id):
            self._make_id_holders()  # as they are before this row
        if previous is not None:
            del self.slot_of[key]
            if self.id_holders is not None and replaced_id:
                self.id_holders.pop(self.record_at(previous).registration_id.lower(), None)
            self.rows[previous] = None  # replaced: its line is no longer needed
            self.externals[previous] = ""
        if record.status in (REMOVED, FORGOTTEN):
            return
        self.slot_of[key] = len(self.rows)
        self.rows.append(record)
        self.flags.append(flags_of(record))
        self.externals.append(record.external_user_id)
        if record.registration_id and self.id_holders is not None:
            self.id_holders[record.registration_id.lower()] = record

    def _make_id_holders(self) -> None:
        """The last holder of each id among the active records, in the order they were
        applied: what applying each row keeps while rows only added records, or replaced
        records without an id by records without one. Ids read from the lines in C."""
        slots = self.slot_of.values()
        held = list(compress(slots, map(HAS_ID.__getitem__, self._flags(slots))))
        self.id_holders = dict(zip(self.ids_of(held), held, strict=True))

    def ids_of(self, slots: list[int]) -> list[str]:
        """The registration ids (lower case) of these slots' records, split from their lines
        a column at a time where they are lines."""
        rows = list(map(self.rows.__getitem__, slots))
        if not all(map(str.__instancecheck__, rows)):
            return [self.record_at(slot).registration_id.lower() for slot in slots]
        fields = map(str.split, cast(list[str], rows), repeat(","), repeat(4))  # plain lines
        ids = list(map(_FOURTH, fields))
        joined = "\n".join(ids)
        return ids if joined == joined.lower() else joined.lower().split("\n")

    def claim(self, registration_id: str, record: RegistrationRecord) -> RegistrationRecord:
        """The record holding *registration_id* (lower case): *record*, now, if none did."""
        return self._held(self._holders().setdefault(registration_id, record))

    def release(self, registration_id: str, record: RegistrationRecord) -> None:
        """Let go of a claim *record* made (it was not recorded)."""
        holders = self._holders()
        if holders.get(registration_id) is record:
            del holders[registration_id]

    def _holders(self) -> dict[str, int | RegistrationRecord]:
        if self.id_holders is None:
            self._make_id_holders()
        assert self.id_holders is not None
        return self.id_holders

    # ------------------------------------------------------------------ reading

    @property
    def active(self) -> ActiveRegistrations:
        return ActiveRegistrations(self)

    @property
    def sent(self) -> dict[tuple[str, str], str]:
        """(account id, instance id) -> type, of requests whose answer is not recorded."""
        return {self.texts_of(key): kind for key, kind in self._pending().items()}

    def sent_type(self, account_id: str, instance_id: str) -> str | None:
        """The type of the request for this registration whose answer is not recorded."""
        pending = self._pending()
        key = self.key_of(account_id, instance_id)
        return None if key is None else pending.get(key)

    def _pending(self) -> dict[Key, str]:
        source = self.pending_source
        if source is not None:
            self.pending = {
                (account_value(account), self.code(instance)): kind
                for (account, instance), kind in source().items()
            }
            for key, kind in self.pending_log:  # what was applied since, in its order
                if kind is None:
                    self.pending.pop(key, None)
                else:
                    self.pending[key] = kind
            self.pending_source, self.pending_log = None, []
        return self.pending

    @property
    def by_id(self) -> dict[str, RegistrationRecord]:
        """Registration id (lower case) -> the record holding it: one id, one registration
        (a copy, every record made: to read, not to change)."""
        return {key: self._held(value) for key, value in self._holders().items()}

    def holder_of(self, registration_id: str) -> RegistrationRecord | None:
        """The active registration recorded with this id, if any."""
        held = self._holders().get(registration_id.lower())
        return None if held is None else self._held(held)

    def _held(self, holder: int | RegistrationRecord) -> RegistrationRecord:
        return self.record_at(holder) if isinstance(holder, int) else holder

    def records(self, slots: Iterable[int]) -> Iterator[RegistrationRecord]:
        return map(self.record_at, slots)

    def in_instance(self, instance_id: str) -> Iterator[RegistrationRecord]:
        code = self.codes.get(instance_id)
        if code is None:
            return iter(())
        keys = self.slot_of.keys()
        mine = map(code.__eq__, map(_SECOND, keys))
        return self.records(list(compress(self.slot_of.values(), mine)))

    def instructors(self) -> list[RegistrationRecord]:
        """The active instructor registrations, in order (the class judgments' question:
        which classes keep a teacher), made without making the learners' (and once while
        nothing changes: a plan and its run ask three times)."""
        if self._teaching is None or self._teaching[0] != self.version:
            slots = self.slot_of.values()
            teaching = map(_IS_INSTRUCTOR.__getitem__, self._flags(slots))
            self._teaching = (self.version, list(self.records(list(compress(slots, teaching)))))
        return list(self._teaching[1])

    def in_instances(self, instance_ids: Iterable[str]) -> list[RegistrationRecord]:
        """The active registrations of these instances, in order (only theirs are made)."""
        codes = {self.codes[i] for i in instance_ids if i in self.codes}
        if not codes:
            return []
        mine = map(codes.__contains__, map(_SECOND, self.slot_of))
        return list(self.records(list(compress(self.slot_of.values(), mine))))

    def count_in(self, instance_ids: Iterable[str]) -> int:
        """How many active registrations these instances hold, counted in C."""
        codes = {self.codes[i] for i in instance_ids if i in self.codes}
        return sum(map(codes.__contains__, map(_SECOND, self.slot_of))) if codes else 0

    def counts(self) -> tuple[Counter[str], dict[str, int]]:
        """How many active registrations each instance id and each account id holds (the
        API's limits), counted in C; an account is looked up by its recorded text."""
        by_code = Counter(map(_SECOND, self.slot_of))
        per_instance = Counter({self.instances[code]: n for code, n in by_code.items()})
        return per_instance, _AccountCounts(Counter(map(_FIRST, self.slot_of)))

    def unresolved(self, *, include_noted: bool = True) -> list[RegistrationRecord]:
        """Active registrations without an id; with include_noted=False only the untold ones."""
        table = _UNRESOLVED if include_noted else _UNTOLD
        slots = self.slot_of.values()
        return list(self.records(list(compress(slots, map(table.__getitem__, self._flags(slots))))))

    def _flags(self, slots: Iterable[int]) -> Iterator[int]:
        return map(self.flags.__getitem__, slots)

    def slots_by_external(self) -> dict[tuple[str, int], int]:
        """(external id, instance code) -> slot of the active registrations that name an
        external id (the last one, in order, where several do)."""
        slots = list(self.slot_of.values())
        externals = list(map(self.externals.__getitem__, slots))
        pairs = zip(externals, map(_SECOND, self.slot_of), strict=True)
        return dict(compress(zip(pairs, slots, strict=True), externals))

    def accounts_and_externals(self) -> tuple[list[Account], list[str]]:
        """Each active registration's account (as the mapping stores it) and external id, in
        order, as two columns (made once while nothing changes: the checks at open ask
        twice)."""
        if self._columns is None or self._columns[0] != self.version:
            accounts = list(map(_FIRST, self.slot_of))
            externals = list(map(self.externals.__getitem__, self.slot_of.values()))
            self._columns = (self.version, accounts, externals)
        return self._columns[1], self._columns[2]


class _AccountCounts(dict[str, int]):
    """Account id (text) -> registrations, read from the counts by key value when first
    asked (an account kprov has not recorded counts 0)."""

    def __init__(self, by_value: Counter[Account]) -> None:
        super().__init__()
        self._by_value = by_value

    def __missing__(self, account_id: str) -> int:
        return self._by_value.get(account_value(account_id), 0)


class ActiveRegistrations(Mapping[tuple[str, str], RegistrationRecord]):
    """(account id, instance id) -> the active record, as a dict of them read before; each
    record is made when it is read."""

    def __init__(self, index: RegistrationIndex) -> None:
        self._index = index

    def _slot(self, key: object) -> int | None:
        if not isinstance(key, tuple) or len(key) != 2:
            return None
        account, instance = key
        if not isinstance(account, str) or not isinstance(instance, str):
            return None
        compact = self._index.key_of(account, instance)
        return None if compact is None else self._index.slot_of.get(compact)

    def __getitem__(self, key: tuple[str, str]) -> RegistrationRecord:
        slot = self._slot(key)
        if slot is None:
            raise KeyError(key)
        return self._index.record_at(slot)

    def __contains__(self, key: object) -> bool:
        return self._slot(key) is not None

    def __len__(self) -> int:
        return len(self._index.slot_of)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return map(self._index.texts_of, list(self._index.slot_of))

    def values(self) -> _Records:  # type: ignore[override]
        return _Records(self._index)

    def items(self) -> Iterator[tuple[tuple[str, str], RegistrationRecord]]:  # type: ignore[override]
        index = self._index
        return zip(map(index.texts_of, list(index.slot_of)), self.values(), strict=True)


class _Records:
    """The active records, in order: an iterable that can be iterated again, and counted."""

    def __init__(self, index: RegistrationIndex) -> None:
        self._index = index

    def __iter__(self) -> Iterator[RegistrationRecord]:
        return self._index.records(list(self._index.slot_of.values()))

    def __len__(self) -> int:
        return len(self._index.slot_of)
