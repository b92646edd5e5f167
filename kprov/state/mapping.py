"""The mapping journal: external_user_id -> account_id, the partner's source of truth.

The API offers no lookup by external id, so a lost line is lost data. The file is a plain CSV
that is only ever appended to; every batch of rows is flushed and fsync'ed before the caller
counts it as done. The last row for an id wins (a later ``disabled`` row supersedes
``created``). A torn last line left by a crash is repaired on the next load: completed when it
is a whole row, otherwise moved aside to a ``.torn-*`` file and reported, never silently
dropped (the accounts it named are then recovered from the API on the next import). A file
without the mapping header is refused before anything else, and never modified.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from kprov.gc_pause import gc_paused
from kprov.state.index_snapshots import MAPPING, mapping_data, restore_mapping
from kprov.state.journal import CsvJournal, now_iso
from kprov.state.mapping_index import AccountIds, load_blocks
from kprov.state.registry_requests import journal_size
from kprov.state.snapshot import Covered, read_snapshot, worth_rewriting, write_snapshot

__all__ = ["HEADER", "MappingEntry", "MappingIndex", "MappingJournal", "now_iso"]

HEADER = ("external_user_id", "account_id", "created_at", "sis_id", "status")
STATUS_CREATED = "created"
STATUS_RECOVERED = "recovered"
STATUS_DISABLED = "disabled"
STATUSES = (STATUS_CREATED, STATUS_RECOVERED, STATUS_DISABLED)


class MappingEntry(NamedTuple):
    """One row of the mapping file, in its column order (a tuple: cheap to make by the
    fifty, and already the row to write)."""

    external_user_id: str
    account_id: str
    created_at: str
    sis_id: str = ""
    status: str = STATUS_CREATED

    def row(self) -> tuple[str, str, str, str, str]:
        return self


@dataclass
class MappingIndex:
    """What the journal says now, held compactly (``state.mapping_index``: five million people
    in about 700 MB)."""

    account_of: AccountIds = field(default_factory=AccountIds)
    sis_of: dict[str, str] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)
    repairs: list[str] = field(default_factory=list)  # what load() had to mend, to tell users

    def __contains__(self, external_user_id: object) -> bool:
        return external_user_id in self.account_of

    def __len__(self) -> int:
        return len(self.account_of)

    def apply_all(self, entries: Sequence[MappingEntry]) -> None:
        """``apply`` each of *entries*, in order (a batch's fifty in one call)."""
        account_of, sis_of, disabled = self.account_of, self.sis_of, self.disabled
        for external_id, account_id, _created_at, sis_id, status in entries:
            account_of[external_id] = account_id
            if sis_id:
                sis_of[external_id] = sis_id
            if status == STATUS_DISABLED:
                disabled.add(external_id)
            elif disabled:
                disabled.discard(external_id)

    def apply(self, entry: MappingEntry) -> None:
        self.account_of[entry.external_user_id] = entry.account_id
        if entry.sis_id:
            self.sis_of[entry.external_user_id] = entry.sis_id
        if entry.status == STATUS_DISABLED:
            self.disabled.add(entry.external_user_id)
        else:
            self.disabled.discard(entry.external_user_id)


class MappingJournal(CsvJournal):
    """The mapping file: external_user_id -> account_id, with history."""

    header = HEADER
    statuses = STATUSES
    what = "mapping file"
    _snapshot_due: int | None = None  # bytes a locked load read cleanly (``save_snapshot``)

    def valid(self, row: list[str]) -> bool:
        return bool(row[0]) and bool(row[1]) and row[-1] in STATUSES

    def load(self, *, repair: bool = False) -> MappingIndex:
        """Read the journal into an index.

        With *repair* (only under the state lock) a torn last line is mended first; without,
        it is skipped and reported, and the file is not touched (a run may be writing it).
        A sound snapshot (``state.snapshot``) stands for the bytes it covers; after a clean
        load with *repair*, one is due (``save_snapshot``).
        """
        repairs = self.repair_tail() if repair else self.torn_notice()
        index, covered = self._from_snapshot()
        index.repairs.extend(repairs)
        size = journal_size(self.path)
        load_blocks(self, index.account_of, index.sis_of, index.disabled, covered)
        read = journal_size(self.path)
        due = repair and not index.repairs and read == size > 0 and worth_rewriting(covered, read)
        self._snapshot_due = read if due else None
        return index

    def save_snapshot(self, index: MappingIndex) -> None:
        """Write the snapshot of *index* a locked load found due: call once the state is
        known sound, before anything is recorded; nothing is written if the journal has
        grown since."""
        due, self._snapshot_due = self._snapshot_due, None
        if due is not None and journal_size(self.path) == due:
            write_snapshot(self.path, MAPPING, due, mapping_data(index))

    def _from_snapshot(self) -> tuple[MappingIndex, Covered | None]:
        with gc_paused():  # millions of objects, no cycle
            found = read_snapshot(self.path, MAPPING)
            if found is not None:
                index = MappingIndex()
                try:
                    restore_mapping(index, found[1])
                except (ValueError, TypeError):  # not as written: ignore it
                    pass
                else:
                    return index, found[0]
        return MappingIndex(), None

    def entries(self) -> Iterator[MappingEntry]:
        """Every row as written (history included), for export and show; account ids in
        canonical lower case, as sent (older versions stored the server's spelling)."""
        for _line, row in self.rows():
            yield MappingEntry(row[0], row[1].lower(), *row[2:])

    def append(self, entries: Sequence[MappingEntry]) -> None:
        """Write *entries* and return once they are durable; concurrent callers share one fsync.

        Apply them to the index only after this returns: the index never shows a row the file
        does not hold. Raises StorageError (exit 9) when the disk refuses; nothing is recorded.
        """
        self.append_rows(entries)  # each entry is its row already (a tuple of five)
