"""Local records of learning instances and registrations.

The API lists neither, and a registration can only be deleted by its id, so whatever kprov
creates it records here (append-only journals, durable per result, last row per key wins).

Two records exist for what the API cannot tell us afterwards:
- an instance *intent*, written before the create request, so that after a kill -9 between the
  request and its recorded answer the next run warns that an empty duplicate may exist;
- a registration confirmed without its id (*unresolved*): kprov cannot remove it, so the
  operator is told once (a ``noted`` row remembers that), then resolves or forgets it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

from kprov.outside_text import from_journal_cell, journal_cell
from kprov.state.blocks import Columns, read_journal
from kprov.state.journal import CsvJournal, now_iso
from kprov.state.registry_blocks import apply_block


class IdHeldElsewhere(Exception):
    """A server id kprov already holds for another record: recording it again would let a
    later removal or deletion of one reach the other. Nothing was recorded."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder  # who holds it, in words


INSTANCE_HEADER = (
    "key", "instance_id", "graph_id", "name", "start_date", "end_date", "created_at", "status"
)  # fmt: skip
INSTANCE_CREATED = "created"
INSTANCE_DELETED = "deleted"
INSTANCE_INTENT = "intent"  # about to be created; no answer recorded yet
INSTANCE_ABANDONED = "abandoned"  # the intent ended without creating anything
INSTANCE_FORGOTTEN = "forgotten"  # dropped by the operator (the API says it does not exist)

REGISTRATION_HEADER = (
    "account_id", "instance_id", "type", "registration_id", "external_user_id", "created_at",
    "status",
)  # fmt: skip
REGISTERED = "registered"
REMOVED = "removed"  # kprov deleted it on the server
NOTED = "noted"  # registered, id unknown, and the operator has been told so once
FORGOTTEN = "forgotten"  # dropped from local state by the operator; still on the server
SENT = "sent"  # a registration request is about to be sent (its answer not recorded yet)


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    key: str
    instance_id: str  # "" in an intent
    graph_id: str
    name: str
    start_date: str = ""
    end_date: str = ""
    created_at: str = ""
    status: str = INSTANCE_CREATED

    def row(self) -> tuple[str, ...]:
        # a name that would start a formula is written with a leading ' (read back exactly):
        # an administrator may open instances.csv in a spreadsheet
        return (self.key, self.instance_id, self.graph_id, journal_cell(self.name),
                self.start_date, self.end_date, self.created_at, self.status)  # fmt: skip


@dataclass
class InstanceIndex:
    by_key: dict[str, InstanceRecord] = field(default_factory=dict)
    by_id: dict[str, InstanceRecord] = field(default_factory=dict)
    intents: dict[str, InstanceRecord] = field(default_factory=dict)  # key -> open intent
    repairs: list[str] = field(default_factory=list)

    def apply(self, record: InstanceRecord) -> None:
        if record.status == INSTANCE_INTENT:
            self.intents[record.key] = record
            return
        if record.status == INSTANCE_ABANDONED:
            self.intents.pop(record.key, None)
            return
        if record.status in (INSTANCE_DELETED, INSTANCE_FORGOTTEN):
            self.by_key.pop(record.key, None)
            self.by_id.pop(record.instance_id, None)
            return
        self.intents.pop(record.key, None)
        self.by_key[record.key] = record
        self.by_id[record.instance_id] = record

    def find(self, key_or_id: str) -> InstanceRecord | None:
        return self.by_key.get(key_or_id) or self.by_id.get(key_or_id.lower())

    def intent_warnings(self) -> list[str]:
        """One warning per intent with no recorded outcome (a run stopped mid-create)."""
        return [
            f"learning instance {r.key!r} (graph {r.graph_id}, name {r.name!r}) was being "
            f"created at {r.created_at} when kprov stopped before recording the answer: an "
            f"empty duplicate instance named {r.name!r} may exist on the server, which the API "
            "cannot list; kprov will use only the instance it records for this key"
            for r in self.intents.values()
        ]


class InstanceJournal(CsvJournal):
    header = INSTANCE_HEADER
    statuses = (
        INSTANCE_CREATED,
        INSTANCE_DELETED,
        INSTANCE_INTENT,
        INSTANCE_ABANDONED,
        INSTANCE_FORGOTTEN,
    )
    what = "instance registry"

    def valid(self, row: list[str]) -> bool:
        if row[-1] in (INSTANCE_INTENT, INSTANCE_ABANDONED):
            return bool(row[0])
        return bool(row[0]) and bool(row[1]) and row[-1] in self.statuses

    def load(self, *, repair: bool = False) -> InstanceIndex:
        index = InstanceIndex()
        index.repairs.extend(self.repair_tail() if repair else self.torn_notice())
        for _line, row in self.rows():
            key, instance_id, graph_id, name, *rest = row
            index.apply(  # ids in canonical form; the name as it was before journal_cell
                InstanceRecord(key, instance_id.lower(), graph_id, from_journal_cell(name), *rest)
            )
        return index

    def record(self, record: InstanceRecord, index: InstanceIndex) -> None:
        """Durable first, then visible in the index."""
        self.append_rows([record.row()])
        index.apply(record)


class RegistrationRecord(NamedTuple):
    """One registration row (a tuple, in the journal's column order: a statewide registry
    holds millions, and a frozen dataclass cost three times as much to make; change one with
    ``_replace``)."""

    account_id: str
    instance_id: str
    type: str
    registration_id: str  # "" when the API confirmed the registration without its id
    external_user_id: str
    created_at: str = ""
    status: str = REGISTERED

    def row(self) -> tuple[str, ...]:
        return self

    @property
    def unresolved(self) -> bool:
        """Registered, but kprov does not know its id, so it can never remove it."""
        return not self.registration_id

    @property
    def noted(self) -> bool:
        """An unresolved registration the operator has already been told about."""
        return self.status == NOTED


@dataclass
class RegistrationIndex:
    active: dict[tuple[str, str], RegistrationRecord] = field(default_factory=dict)
    # (account, instance) -> the type kprov last asked for, while no answer is recorded: an
    # "already registered" that does not name a type is kprov's own only if it matches.
    sent: dict[tuple[str, str], str] = field(default_factory=dict)
    repairs: list[str] = field(default_factory=list)
    # registration id (lower case) -> the active record holding it: one id, one registration
    by_id: dict[str, RegistrationRecord] = field(default_factory=dict)

    def apply(self, record: RegistrationRecord) -> None:
        key = (record.account_id, record.instance_id)
        if record.status == SENT:
            self.sent[key] = record.type
            return
        self.sent.pop(key, None)
        previous = self.active.pop(key, None)
        if previous is not None and previous.registration_id:
            self.by_id.pop(previous.registration_id.lower(), None)
        if record.status not in (REMOVED, FORGOTTEN):
            self.active[key] = record
            if record.registration_id:
                self.by_id[record.registration_id.lower()] = record

    def holder_of(self, registration_id: str) -> RegistrationRecord | None:
        """The active registration recorded with this id, if any."""
        return self.by_id.get(registration_id.lower())

    def in_instance(self, instance_id: str) -> Iterator[RegistrationRecord]:
        return (r for r in self.active.values() if r.instance_id == instance_id)

    def unresolved(self, *, include_noted: bool = True) -> list[RegistrationRecord]:
        """Active registrations without an id; with include_noted=False only the untold ones."""
        return [
            r for r in list(self.active.values()) if r.unresolved and (include_noted or not r.noted)
        ]


_TYPES = frozenset({"learner", "instructor"})
_make_record = partial(tuple.__new__, RegistrationRecord)  # from a row: no NamedTuple __new__


class RegistrationJournal(CsvJournal):
    header = REGISTRATION_HEADER
    statuses = (REGISTERED, REMOVED, NOTED, FORGOTTEN, SENT)
    what = "registration registry"

    def valid(self, row: list[str]) -> bool:
        return (
            bool(row[0])
            and bool(row[1])
            and row[2] in ("learner", "instructor")
            and (row[-1] in self.statuses)
        )

    def load(self, *, repair: bool = False) -> RegistrationIndex:
        index = RegistrationIndex()
        index.repairs.extend(self.repair_tail() if repair else self.torn_notice())
        statuses = frozenset(self.statuses)

        def take_block(columns: Columns) -> bool:  # plain rows: ids lowered a column at a time
            account, instance, kind, *_rest, status = columns
            if "" in account or "" in instance or not _TYPES.issuperset(kind):
                return False
            if not statuses.issuperset(status):
                return False
            for at in (0, 1, 3):
                columns[at] = "\n".join(columns[at]).lower().split("\n")
            apply_block(index, columns, _make_record, sent=SENT, registered=REGISTERED)
            return True

        def take_row(row: list[str]) -> None:  # ids canonical (lower case), whatever wrote them
            account, instance, registration = row[0].lower(), row[1].lower(), row[3].lower()
            index.apply(RegistrationRecord(account, instance, row[2], registration, *row[4:]))

        read_journal(self, take_block, take_row)
        return index

    def record(self, record: RegistrationRecord, index: RegistrationIndex) -> None:
        """Durable first, then visible in the index."""
        self.append_rows([record.row()])
        index.apply(record)


REGISTRY_FILES = ("instances.csv", "registrations.csv")  # the instance and registration journals


@dataclass
class Registry:
    """The instance and registration journals of one state directory, loaded together.

    The ``record_*`` methods are safe to call from worker threads at once: each blocks until
    its row is durable (rows arriving together share one fsync, so do not hold a lock of your
    own around them) and only then shows it in the index. They raise StorageError (exit 9)
    when the disk refuses, and nothing is recorded.
    """

    instances: InstanceJournal
    registrations: RegistrationJournal
    instance_index: InstanceIndex
    registration_index: RegistrationIndex
    _index_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, state_dir: Path, *, repair: bool = False) -> Registry:
        """Load both journals; *repair* torn tails only under the state lock."""
        instances = InstanceJournal(state_dir / REGISTRY_FILES[0])
        registrations = RegistrationJournal(state_dir / REGISTRY_FILES[1])
        return cls(
            instances,
            registrations,
            instances.load(repair=repair),
            registrations.load(repair=repair),
        )

    @property
    def repairs(self) -> list[str]:
        return self.instance_index.repairs + self.registration_index.repairs

    @property
    def warnings(self) -> list[str]:
        """What the operator must hear at load: repairs, then instances that may be duplicated."""
        return self.repairs + self.instance_index.intent_warnings()

    # ------------------------------------------------------------------ instances

    def record_instance_intent(
        self, key: str, graph_id: str, name: str, start_date: str = "", end_date: str = ""
    ) -> InstanceRecord:
        """Record, durably, that instance *key* is about to be created: call just before the
        create request. Until ``record_instance`` or ``record_instance_abandoned`` for the same
        key, every load warns that an empty duplicate may exist on the server."""
        intent = InstanceRecord(
            key, "", graph_id, name, start_date, end_date, now_iso(), INSTANCE_INTENT
        )
        self._append_instance(intent)
        return intent

    def record_instance(self, record: InstanceRecord) -> None:
        """Record a created instance (status ``created``); it closes the key's intent.

        Raises IdHeldElsewhere, recording nothing, when another key holds the same id."""
        if record.status == INSTANCE_CREATED:
            with self._index_lock:
                holder = self.instance_index.by_id.get(record.instance_id)
            if holder is not None and holder.key != record.key:
                raise IdHeldElsewhere(repr(holder.key))
        self._append_instance(record)

    def record_instance_abandoned(self, key: str) -> None:
        """Close the key's intent when the create request certainly created nothing (a refusal
        the server answered); never after an answer was lost."""
        intent = self.instance_index.intents.get(key)
        if intent is None:
            return
        self._append_instance(replace(intent, created_at=now_iso(), status=INSTANCE_ABANDONED))

    def forget_instance(self, record: InstanceRecord) -> int:
        """Drop a recorded instance and its registrations from local state (nothing is sent):
        for an instance the API says does not exist, which every run would otherwise ask
        about again. Registrations first, so a crash in between leaves the instance, not
        orphans. Returns how many registrations were forgotten."""
        registrations = list(self.registration_index.in_instance(record.instance_id))
        self._append_registrations(
            [r._replace(created_at=now_iso(), status=FORGOTTEN) for r in registrations]
        )  # one write, one fsync
        self._append_instance(replace(record, created_at=now_iso(), status=INSTANCE_FORGOTTEN))
        return len(registrations)

    def _append_instance(self, record: InstanceRecord) -> None:
        self.instances.append_rows([record.row()])
        with self._index_lock:
            self.instance_index.apply(record)

    # ------------------------------------------------------------------ registrations

    def record_registration(self, record: RegistrationRecord) -> None:
        """Record a registration (``registration_id`` "" when confirmed without its id).

        Raises IdHeldElsewhere, recording nothing, when the id is already held (by an earlier
        run, or a concurrent task of this one) for another account, instance or type: checked
        and claimed in one step, so two answers with one id cannot both be recorded."""
        key = record.registration_id.lower()
        if key:
            with self._index_lock:
                index = self.registration_index
                holder = index.by_id.setdefault(key, record)
            if (holder.account_id, holder.instance_id, holder.type) != (
                record.account_id,
                record.instance_id,
                record.type,
            ):
                raise IdHeldElsewhere(f"{holder.external_user_id} as {holder.type}")
        try:
            self._append_registrations([record])
        except BaseException:
            with self._index_lock:  # not recorded: the claim goes too
                if self.registration_index.by_id.get(key) is record:
                    del self.registration_index.by_id[key]
            raise

    def record_registration_sent(self, record: RegistrationRecord) -> str | None:
        """Record, durably, that *record* is about to be requested; returns the type an
        earlier request for the same account and instance asked for, if its answer was never
        recorded (a crash, or an answer that was lost)."""
        with self._index_lock:
            earlier = self.registration_index.sent.get((record.account_id, record.instance_id))
        self._append_registrations([record._replace(created_at=now_iso(), status=SENT)])
        return earlier

    def record_registration_removed(self, record: RegistrationRecord) -> None:
        """Record that kprov deleted *record* on the server."""
        self._append_registrations([record._replace(created_at=now_iso(), status=REMOVED)])

    def note_unresolved(self, records: Sequence[RegistrationRecord]) -> None:
        """Remember that the operator has been told about these unresolved registrations, so a
        nightly run reports each once, not for ever."""
        self._append_registrations(
            [r._replace(created_at=now_iso(), status=NOTED) for r in records if not r.noted]
        )

    def resolve_registration(self, record: RegistrationRecord, registration_id: str) -> None:
        """Attach the id found for an unresolved registration (validated by the caller)."""
        resolved = record._replace(
            registration_id=registration_id, created_at=now_iso(), status=REGISTERED
        )
        self._append_registrations([resolved])

    def forget_registration(self, record: RegistrationRecord) -> None:
        """Drop a registration from local state; it stays on the server, and kprov will never
        remove it."""
        self._append_registrations([record._replace(created_at=now_iso(), status=FORGOTTEN)])

    def _append_registrations(self, records: Sequence[RegistrationRecord]) -> None:
        if not records:
            return
        self.registrations.append_rows([r.row() for r in records])
        with self._index_lock:
            for record in records:
                self.registration_index.apply(record)

    def close(self) -> None:
        self.instances.close()
        self.registrations.close()
