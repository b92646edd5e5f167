"""The mapping in memory: external id -> account id, compactly, read from the journal fast.

A statewide mapping has millions of lines. As a dict of strings it cost ~200 bytes a person
(the account id alone is an 85-byte string) and as much CPU to read. Here an account id
that is a UUID -- every id kprov records -- is kept as its 128-bit number (a 48-byte object);
anything else as the text it is. ``account_of`` reads as the same ``MutableMapping[str,
str]`` as before (canonical lower-case text). A Python dict is still what it costs most
(~35 bytes an entry, and the id's own string): on this project's machine a look-up in any
structure of five million entries is bound by memory latency, and the dict's is done in C.

Reading: blocks of whole lines are split with string methods (C speed) when they are plain:
no quote, no CR, five fields on every line, no empty id or account, a known status, UUID
account ids. The first block that is not plain, and everything after it, is read row by row
by the journal's own parser, which names a damaged line exactly as before. The last row of
an id wins. The CSV stays the record: nothing here is written anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, KeysView, MutableMapping
from typing import TYPE_CHECKING, overload

from kprov.api_facts import UUID_TEXT
from kprov.state.blocks import Columns, read_journal

if TYPE_CHECKING:
    from kprov.state.journal import CsvJournal
    from kprov.state.snapshot import Covered

_UUID = UUID_TEXT

Account = int | str  # a UUID as its 128-bit number, or an id that is not one (as written)


def account_text(value: Account) -> str:
    """The canonical text of a stored account id."""
    if isinstance(value, str):
        return value
    h = value.to_bytes(16, "big").hex()  # a third cheaper than f"{value:032x}" (a million a plan)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def stored(account_id: str) -> Account:
    """What is kept for *account_id*: its number when it is a UUID (48 bytes, not 85)."""
    if _UUID.match(account_id):
        return int(account_id.replace("-", ""), 16)
    return account_id


class AccountIds(MutableMapping[str, str]):
    """external id -> account id (canonical text), over compact values (``stored``)."""

    def __init__(self) -> None:
        self.compact: dict[str, Account] = {}
        self._owners: dict[Account, str] | None = None  # account -> external id, when asked

    def __getitem__(self, external_id: str) -> str:
        return account_text(self.compact[external_id])

    @overload  # type: ignore[override]
    def get(self, external_id: str) -> str | None: ...
    @overload
    def get(self, external_id: str, default: str) -> str: ...
    def get(self, external_id: str, default: str | None = None) -> str | None:
        value = self.compact.get(external_id)
        return default if value is None else account_text(value)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self.compact

    def __setitem__(self, external_id: str, account_id: str) -> None:
        value = stored(account_id)
        previous = self.compact.get(external_id)
        self.compact[external_id] = value
        if self._owners is not None:
            if previous is not None and self._owners.get(previous) == external_id:
                del self._owners[previous]
            self._owners[value] = external_id

    def __delitem__(self, external_id: str) -> None:
        value = self.compact.pop(external_id)
        if self._owners is not None and self._owners.get(value) == external_id:
            del self._owners[value]

    def __iter__(self) -> Iterator[str]:
        return iter(self.compact)

    def __len__(self) -> int:
        return len(self.compact)

    def keys(self) -> KeysView[str]:
        """The external ids (a dict's own view: ``in`` it costs no Python call)."""
        return self.compact.keys()

    def owner_of(self, account_id: str) -> str | None:
        """The external id the mapping gives *account_id* (any case), if any. The reverse
        index is made on first use (a run that creates accounts asks), then kept up to date;
        it shares the ids and values of the forward one (~35 bytes a person)."""
        if self._owners is None:
            self._owners = {value: external for external, value in self.compact.items()}
        return self._owners.get(stored(account_id.lower()))


def load_blocks(
    journal: CsvJournal,
    account_of: AccountIds,
    sis_of: dict[str, str],
    disabled: set[str],
    after: Covered | None = None,
) -> None:
    """Read *journal* (a mapping) into the three: plain blocks at C speed, the rest by row
    (only the rows after a snapshot's bytes, with *after*: ``state.snapshot``)."""

    def take_block(columns: Columns) -> bool:
        return _plain_block(columns, account_of, sis_of, disabled)

    def take_row(row: list[str]) -> None:
        _apply_row(row, account_of, sis_of, disabled)

    read_journal(journal, take_block, take_row, after)


_STATUSES = frozenset({"created", "recovered", "disabled"})


def _plain_block(
    columns: Columns, account_of: AccountIds, sis_of: dict[str, str], disabled: set[str]
) -> bool:
    """Apply a plain block (valid rows, UUID account ids); False, applying nothing, if not."""
    ids, accounts, _created, sis_ids, statuses = columns
    if "" in ids or "" in accounts or not _STATUSES.issuperset(statuses):
        return False
    values = _uuids(accounts)
    if values is None:  # not all UUIDs: read row by row (odd ids are kept as they are)
        return False
    if account_of._owners is not None:  # keep the reverse index (never made before a load)
        for external, value in zip(ids, values, strict=True):
            account_of[external] = account_text(value)
    else:
        account_of.compact.update(zip(ids, values, strict=True))
    if any(sis_ids):
        sis_of.update((i, s) for i, s in zip(ids, sis_ids, strict=True) if s)
    if disabled or "disabled" in statuses:
        for external, status in zip(ids, statuses, strict=True):
            if status == "disabled":
                disabled.add(external)
            else:
                disabled.discard(external)
    return True


def _uuids(accounts: list[str]) -> list[int] | None:
    """Every account id's number when each is a UUID in the 8-4-4-4-12 form; else None.
    Checked on the joined text at C speed: 36 characters each between commas, dashes where
    they belong, and 32 hex digits that ``bytes.fromhex`` reads as exactly 16 bytes; each
    number is then made from its own 16 bytes."""
    count = len(accounts)
    joined = ",".join(accounts)
    if (
        len(joined) != 37 * count - 1
        or joined[36::37].count(",") != count - 1  # each id its 36 characters, none shifted
        or any(joined[at::37].count("-") != count for at in (8, 13, 18, 23))
    ):
        return None
    digits = joined.replace("-", "")
    try:
        raw = bytes.fromhex(digits.replace(",", ""))
    except ValueError:
        return None
    if len(raw) != 16 * count or len(digits) != 33 * count - 1:  # fromhex skips spaces
        return None
    ends = range(16, 16 * count + 1, 16)
    return list(map(int.from_bytes, map(raw.__getitem__, map(slice, range(0, 16 * count, 16),
                                                             ends))))  # fmt: skip


def _apply_row(
    row: list[str], account_of: AccountIds, sis_of: dict[str, str], disabled: set[str]
) -> None:
    external = row[0]
    account_of[external] = row[1].lower()  # canonical
    if row[3]:
        sis_of[external] = row[3]
    if row[4] == "disabled":
        disabled.add(external)
    elif disabled:
        disabled.discard(external)
