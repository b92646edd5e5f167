"""Local records of learning instances (the API cannot list them).

An instance *intent* is written before the create request, so that after a kill -9 between
the request and its recorded answer the next run warns that an empty duplicate may exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kprov.outside_text import from_journal_cell, journal_cell
from kprov.state.journal import CsvJournal

INSTANCE_HEADER = (
    "key", "instance_id", "graph_id", "name", "start_date", "end_date", "created_at", "status"
)  # fmt: skip
INSTANCE_CREATED = "created"
INSTANCE_DELETED = "deleted"
INSTANCE_INTENT = "intent"  # about to be created; no answer recorded yet
INSTANCE_ABANDONED = "abandoned"  # the intent ended without creating anything
INSTANCE_FORGOTTEN = "forgotten"  # dropped by the operator (the API says it does not exist)


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
