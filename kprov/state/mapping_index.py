"""The mapping in memory: external id -> account id, compactly, read from the journal fast.

A statewide mapping has millions of lines. As a dict of strings it cost ~200 bytes a person
(the account id alone is an 85-byte string) and as much CPU to read. Here an account id
that is a UUID -- every id kprov records; ids are canonical lower case since 0.3 -- is kept
as its 16 bytes (a 49-byte object); anything else is kept as the text it is. ``account_of``
reads as the same ``MutableMapping[str, str]`` as before (canonical lower-case text).

Reading: blocks of whole lines are split with string methods (C speed) when they are plain:
no quote, no CR, five fields on every line, no empty id or account, a known status. The
first block that is not plain, and everything after it, is read row by row by the journal's
own parser, which names the damaged line exactly as before. The last row of an id wins.
The CSV stays the record: nothing here is written anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping
from itertools import chain, repeat
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    from kprov.state.journal import CsvJournal

BLOCK = 1 << 22  # characters read at a time
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")

Account = bytes | str  # 16 bytes of a UUID, or an id that is not one (as written, lower case)


def account_text(value: Account) -> str:
    """The canonical text of a stored account id."""
    if isinstance(value, str):
        return value
    h = value.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def stored(account_id: str) -> Account:
    """What is kept for *account_id*: its 16 bytes when it is a UUID."""
    if _UUID.match(account_id):
        return bytes.fromhex(account_id.replace("-", ""))
    return account_id


class AccountIds(MutableMapping[str, str]):
    """external id -> account id (canonical text), over compact values."""

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

    def owner_of(self, account_id: str) -> str | None:
        """The external id the mapping gives *account_id* (any case), if any. The reverse
        index is made on first use (a run that creates accounts asks), then kept up to date."""
        if self._owners is None:
            self._owners = {value: external for external, value in self.compact.items()}
        value = stored(account_id.lower())
        return self._owners.get(value)


def load_blocks(
    journal: CsvJournal,
    account_of: AccountIds,
    sis_of: dict[str, str],
    disabled: set[str],
) -> None:
    """Read *journal* (a mapping) into the three, plain blocks at C speed, the rest by row."""
    with journal.text() as handle:
        if handle is None:
            return
        handle.readline()  # the header, checked already
        line = 2  # of the first row
        while True:
            lines = handle.readlines(BLOCK)  # whole lines, as the csv module would see them
            if not lines:
                return
            if not _plain_block(lines, account_of, sis_of, disabled):
                break
            line += len(lines)
        rows = journal.parse(chain(lines, handle), header=False, first_line=line)
        for _line, row in rows:
            _apply_row(row, account_of, sis_of, disabled)


_STATUSES = frozenset({"created", "recovered", "disabled"})


def _plain_block(
    lines: list[str], account_of: AccountIds, sis_of: dict[str, str], disabled: set[str]
) -> bool:
    """Apply *lines* when they are plain; False, applying nothing, when not."""
    block = "".join(lines)
    if (
        '"' in block
        or "\r" in block
        or not block.endswith("\n")
        or set(map(str.count, lines, repeat(","))) != {4}  # five fields on every line
    ):
        return False
    fields = block.replace("\n", ",").split(",")
    ids, accounts, sis_ids, statuses = fields[0::5], fields[1::5], fields[3::5], fields[4::5]
    del ids[len(lines) :], fields  # the split's trailing "" starts a sixth "row"
    if "" in ids or "" in accounts or not _STATUSES.issuperset(statuses):
        return False
    if all(map(_UUID.match, accounts)):
        joined = ",".join(accounts).replace("-", "")
        values: list[Account] = list(map(bytes.fromhex, joined.split(",")))
    else:
        values = [stored(account.lower()) for account in accounts]
    owners = account_of._owners
    if owners is not None:  # keep the reverse index (rarely made before a load)
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
