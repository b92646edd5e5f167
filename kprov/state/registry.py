"""Local records of learning instances and registrations.

The API lists neither, and a registration can only be deleted by its id, so whatever kprov
creates it records here (append-only journals, durable per result, last row per key wins).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from kprov.state.journal import CsvJournal, now_iso

INSTANCE_HEADER = (
    "key", "instance_id", "graph_id", "name", "start_date", "end_date", "created_at", "status"
)  # fmt: skip
INSTANCE_CREATED = "created"
INSTANCE_DELETED = "deleted"

REGISTRATION_HEADER = (
    "account_id", "instance_id", "type", "registration_id", "external_user_id", "created_at",
    "status",
)  # fmt: skip
REGISTERED = "registered"
REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    key: str
    instance_id: str
    graph_id: str
    name: str
    start_date: str = ""
    end_date: str = ""
    created_at: str = ""
    status: str = INSTANCE_CREATED

    def row(self) -> tuple[str, ...]:
        return (self.key, self.instance_id, self.graph_id, self.name, self.start_date,
                self.end_date, self.created_at, self.status)  # fmt: skip


@dataclass
class InstanceIndex:
    by_key: dict[str, InstanceRecord] = field(default_factory=dict)
    by_id: dict[str, InstanceRecord] = field(default_factory=dict)
    repairs: list[str] = field(default_factory=list)

    def apply(self, record: InstanceRecord) -> None:
        if record.status == INSTANCE_DELETED:
            self.by_key.pop(record.key, None)
            self.by_id.pop(record.instance_id, None)
            return
        self.by_key[record.key] = record
        self.by_id[record.instance_id] = record

    def find(self, key_or_id: str) -> InstanceRecord | None:
        return self.by_key.get(key_or_id) or self.by_id.get(key_or_id)


class InstanceJournal(CsvJournal):
    header = INSTANCE_HEADER
    statuses = (INSTANCE_CREATED, INSTANCE_DELETED)
    what = "instance registry"

    def valid(self, row: list[str]) -> bool:
        return bool(row[0]) and bool(row[1]) and row[-1] in self.statuses

    def load(self) -> InstanceIndex:
        index = InstanceIndex()
        index.repairs.extend(self.repair_tail())
        for _line, row in self.rows():
            index.apply(InstanceRecord(*row))
        return index

    def record(self, record: InstanceRecord, index: InstanceIndex) -> None:
        self.append_rows([record.row()])
        index.apply(record)


@dataclass(frozen=True, slots=True)
class RegistrationRecord:
    account_id: str
    instance_id: str
    type: str
    registration_id: str  # "" when the API confirmed the registration without its id
    external_user_id: str
    created_at: str = ""
    status: str = REGISTERED

    def row(self) -> tuple[str, ...]:
        return (self.account_id, self.instance_id, self.type, self.registration_id,
                self.external_user_id, self.created_at, self.status)  # fmt: skip


@dataclass
class RegistrationIndex:
    active: dict[tuple[str, str], RegistrationRecord] = field(default_factory=dict)
    repairs: list[str] = field(default_factory=list)

    def apply(self, record: RegistrationRecord) -> None:
        key = (record.account_id, record.instance_id)
        if record.status == REMOVED:
            self.active.pop(key, None)
        else:
            self.active[key] = record

    def in_instance(self, instance_id: str) -> Iterator[RegistrationRecord]:
        return (r for r in self.active.values() if r.instance_id == instance_id)


class RegistrationJournal(CsvJournal):
    header = REGISTRATION_HEADER
    statuses = (REGISTERED, REMOVED)
    what = "registration registry"

    def valid(self, row: list[str]) -> bool:
        return (
            bool(row[0])
            and bool(row[1])
            and row[2] in ("learner", "instructor")
            and (row[-1] in self.statuses)
        )

    def load(self) -> RegistrationIndex:
        index = RegistrationIndex()
        index.repairs.extend(self.repair_tail())
        for _line, row in self.rows():
            index.apply(RegistrationRecord(*row))
        return index

    def record(self, record: RegistrationRecord, index: RegistrationIndex) -> None:
        """Durable first, then visible in the index."""
        self.append_rows([record.row()])
        index.apply(record)

    def record_removed(self, record: RegistrationRecord, index: RegistrationIndex) -> None:
        self.record(replace(record, created_at=now_iso(), status=REMOVED), index)


@dataclass
class Registry:
    """The instance and registration journals of one state directory, loaded together."""

    instances: InstanceJournal
    registrations: RegistrationJournal
    instance_index: InstanceIndex
    registration_index: RegistrationIndex

    @classmethod
    def open(cls, state_dir: Path) -> Registry:
        instances = InstanceJournal(state_dir / "instances.csv")
        registrations = RegistrationJournal(state_dir / "registrations.csv")
        return cls(instances, registrations, instances.load(), registrations.load())

    @property
    def repairs(self) -> list[str]:
        return self.instance_index.repairs + self.registration_index.repairs

    def close(self) -> None:
        self.instances.close()
        self.registrations.close()
