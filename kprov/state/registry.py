"""Local records of learning instances and registrations.

The API lists neither, and a registration can only be deleted by its id, so whatever kprov
creates it records here (append-only journals, durable per result, last row per key wins).

Two records exist for what the API cannot tell us afterwards:
- an instance *intent*, written before the create request, so that after a kill -9 between the
  request and its recorded answer the next run warns that an empty duplicate may exist;
- a registration confirmed without its id (*unresolved*): kprov cannot remove it, so the
  operator is told once (a ``noted`` row remembers that), then resolves or forgets it.

The instances are ``state.registry_instances``; the registrations' index, by column,
``state.registry_index`` (read a block at a time by ``state.registry_blocks``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from kprov.gc_pause import gc_paused
from kprov.state.blocks import read_journal_lines
from kprov.state.index_snapshots import (
    REGISTRATIONS,
    registrations_data,
    restore_registrations,
)
from kprov.state.journal import CsvJournal, now_iso
from kprov.state.registry_blocks import take_block
from kprov.state.registry_index import (
    FORGOTTEN,
    NOTED,
    REGISTERED,
    REGISTRATION_HEADER,
    REMOVED,
    SENT,
    RegistrationIndex,
    RegistrationRecord,
)
from kprov.state.registry_instances import (
    INSTANCE_ABANDONED,
    INSTANCE_CREATED,
    INSTANCE_DELETED,
    INSTANCE_FORGOTTEN,
    INSTANCE_HEADER,
    INSTANCE_INTENT,
    InstanceIndex,
    InstanceJournal,
    InstanceRecord,
)
from kprov.state.registry_requests import journal_size, requests_pending
from kprov.state.snapshot import Covered, read_snapshot, worth_rewriting, write_snapshot

__all__ = [
    "FORGOTTEN", "INSTANCE_ABANDONED", "INSTANCE_CREATED", "INSTANCE_DELETED",
    "INSTANCE_FORGOTTEN", "INSTANCE_HEADER", "INSTANCE_INTENT", "NOTED", "REGISTERED",
    "REGISTRATION_HEADER", "REGISTRY_FILES", "REMOVED", "SENT", "IdHeldElsewhere",
    "InstanceIndex", "InstanceJournal", "InstanceRecord", "RegistrationIndex",
    "RegistrationJournal", "RegistrationRecord", "Registry",
]  # fmt: skip


class IdHeldElsewhere(Exception):
    """A server id kprov already holds for another record: recording it again would let a
    later removal or deletion of one reach the other. Nothing was recorded."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder  # who holds it, in words


class RegistrationJournal(CsvJournal):
    header = REGISTRATION_HEADER
    statuses = (REGISTERED, REMOVED, NOTED, FORGOTTEN, SENT)
    what = "registration registry"
    _snapshot_due: int | None = None  # bytes a locked load read cleanly (``save_snapshot``)

    def valid(self, row: list[str]) -> bool:
        return (
            bool(row[0])
            and bool(row[1])
            and row[2] in ("learner", "instructor")
            and (row[-1] in self.statuses)
        )

    def load(self, *, repair: bool = False) -> RegistrationIndex:
        """Read the journal into an index: after its snapshot's bytes when the snapshot is
        sound (``state.snapshot``), else in full. With *repair* (only under the state lock)
        a torn last line is mended first, and a snapshot is due after a clean load
        (``save_snapshot``)."""
        repairs = self.repair_tail() if repair else self.torn_notice()
        index, covered = self._from_snapshot()
        index.repairs.extend(repairs)
        statuses = frozenset(self.statuses)
        size = journal_size(self.path)

        def take_lines(lines: list[str]) -> bool:  # plain rows, by column
            return take_block(index, lines, statuses)

        def take_row(row: list[str]) -> None:  # ids canonical (lower case), whatever wrote them
            account, instance, registration = row[0].lower(), row[1].lower(), row[3].lower()
            index.apply(RegistrationRecord(account, instance, row[2], registration, *row[4:]))

        read_journal_lines(self, take_lines, take_row, covered)
        read = journal_size(self.path)
        due = repair and not index.repairs and read == size > 0 and worth_rewriting(covered, read)
        self._snapshot_due = read if due else None
        index.pending_source = partial(  # "sent" rows: read again when first asked for
            requests_pending, self.path, read
        )
        return index

    def save_snapshot(self, index: RegistrationIndex) -> None:
        """Write the snapshot of *index* a locked load found due (``state.snapshot``): call
        once the state is known sound, before anything is recorded; nothing is written if
        the journal has grown since (the index is no longer what its first bytes say)."""
        due, self._snapshot_due = self._snapshot_due, None
        if due is None or journal_size(self.path) != due:
            return
        data = registrations_data(index)
        if data is not None:
            write_snapshot(self.path, REGISTRATIONS, due, data)

    def _from_snapshot(self) -> tuple[RegistrationIndex, Covered | None]:
        """The index as the snapshot has it, and the bytes it covers; a new index and None
        when there is no sound snapshot."""
        with gc_paused():  # millions of objects, no cycle
            found = read_snapshot(self.path, REGISTRATIONS)
            if found is not None:
                index = RegistrationIndex()
                try:
                    restore_registrations(index, found[1])
                except (ValueError, TypeError, IndexError, KeyError):  # not as written
                    pass
                else:
                    return index, found[0]
        return RegistrationIndex(), None

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

    def save_snapshots(self) -> None:
        """Write the registrations' snapshot if a locked load found one due: call once the
        state is known sound, before anything is recorded."""
        self.registrations.save_snapshot(self.registration_index)

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
        and claimed in one step, so two answers with one id cannot both be recorded.

        Confirmed without its id ("already registered" as the same type), a registration
        kprov holds with its id keeps that id: it was asked twice (one class named by its key
        and by its id), and recording "" would make it unremovable."""
        if not record.registration_id:
            with self._index_lock:
                known = self.registration_index.active.get((record.account_id, record.instance_id))
            if known is not None and known.registration_id and known.type == record.type:
                record = record._replace(registration_id=known.registration_id)
        key = record.registration_id.lower()
        if key:
            with self._index_lock:
                holder = self.registration_index.claim(key, record)
            if (holder.account_id, holder.instance_id, holder.type) != (
                record.account_id,
                record.instance_id,
                record.type,
            ):
                raise IdHeldElsewhere(f"{holder.external_user_id} as {holder.type}")
        try:
            self._append_registrations([record])
        except BaseException:
            if key:
                with self._index_lock:  # not recorded: the claim goes too
                    self.registration_index.release(key, record)
            raise

    def record_registration_sent(self, record: RegistrationRecord) -> str | None:
        """Record, durably, that *record* is about to be requested; returns the type an
        earlier request for the same account and instance asked for, if its answer was never
        recorded (a crash, or an answer that was lost)."""
        with self._index_lock:
            earlier = self.registration_index.sent_type(record.account_id, record.instance_id)
        self._append_registrations([record._replace(created_at=now_iso(), status=SENT)])
        return earlier

    def record_registration_removed(self, record: RegistrationRecord) -> None:
        """Record that kprov deleted *record* on the server -- unless its key now holds
        another registration (another id, or another type: a role change's new registration,
        recorded first): that one stays, or it would be lost to kprov while it lives on the
        server."""
        with self._index_lock:
            now = self.registration_index.active.get((record.account_id, record.instance_id))
        held = now.registration_id.lower() if now is not None else ""
        if held and record.registration_id and held != record.registration_id.lower():
            return
        if now is not None and now.type != record.type:
            return
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
