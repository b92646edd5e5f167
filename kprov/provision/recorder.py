"""Durable first, then visible: the one way a result becomes local state.

Every result goes to its journal (written and fsync'ed; concurrent appends share one fsync)
before the in-memory indexes show it and before the executor counts it or releases the work
that depends on it. A crash in between loses nothing: the rerun finds the work on the server
and reconciles (duplicate account -> recovered, "already registered" -> confirmed).
"""

from __future__ import annotations

import threading
from dataclasses import replace

from kprov.provision.plan import InstanceSpec
from kprov.state.journal import now_iso
from kprov.state.local import LocalState
from kprov.state.mapping import MappingEntry
from kprov.state.registry import REMOVED, InstanceRecord, RegistrationRecord


class Recorder:
    def __init__(self, state: LocalState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._taken: set[str] | None = None  # account ids already mapped, built when needed

    def account_taken(self, account_id: str, external_id: str) -> bool:
        """Whether *account_id* is already mapped to ANOTHER external id (a wrong answer)."""
        with self._lock:
            if self._taken is None:
                self._taken = set(self.state.mapping.account_of.values())
            if account_id not in self._taken:
                return False
        return self.state.mapping.account_of.get(external_id) != account_id

    def accounts(self, entries: list[MappingEntry]) -> None:
        if not entries:
            return
        self.state.journal.append(entries)
        with self._lock:
            for entry in entries:
                self.state.mapping.apply(entry)
                if self._taken is not None:
                    self._taken.add(entry.account_id)

    def instance_intent(self, key: str, spec: InstanceSpec) -> None:
        """Before a create is sent: after a crash the rerun can warn of a possible duplicate."""
        record = getattr(self.state.registry, "record_instance_intent", None)
        if record is not None:
            record(key, spec.graph_id, spec.name, spec.start_date, spec.end_date)

    def instance(self, key: str, instance_id: str, spec: InstanceSpec) -> InstanceRecord:
        record = InstanceRecord(
            key, instance_id, spec.graph_id, spec.name, spec.start_date, spec.end_date, now_iso()
        )
        registry = self.state.registry
        with self._lock:
            registry.instances.record(record, registry.instance_index)
        return record

    def registration(
        self, account_id: str, instance_id: str, role: str, registration_id: str, external_id: str
    ) -> None:
        record = RegistrationRecord(
            account_id, instance_id, role, registration_id, external_id, now_iso()
        )
        registry = self.state.registry
        registry.registrations.append_rows([record.row()])
        with self._lock:
            registry.registration_index.apply(record)

    def removal(self, record: RegistrationRecord) -> None:
        removed = replace(record, created_at=now_iso(), status=REMOVED)
        registry = self.state.registry
        registry.registrations.append_rows([removed.row()])
        with self._lock:
            registry.registration_index.apply(removed)
