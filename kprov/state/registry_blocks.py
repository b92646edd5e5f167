"""A block of registration rows applied to the index at C speed, with the same result as
applying them one by one (``RegistrationIndex.apply``).

Row by row, each row was a record, a key and three dict operations: a registry of a million
registrations (two rows each: "sent", then "registered") took 6-8 s to load. Here "sent"
rows are checked (each line at C speed) and set aside: only a run that sends a registration
asks which requests are pending (``state.registry_requests``). The other rows' columns
become keys in C (account ids as numbers, instances as codes). When they are new
registrations, each key once, their lines go into the index as they are, with one dict
update (records are made when asked for). Otherwise only a key's last row decides, and those
rows are applied one by one, in their order -- and when an id the block names is named twice
or held already, which record keeps it depends on every row in turn: the whole block is
applied row by row.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from itertools import compress, repeat
from operator import lshift, not_, or_
from typing import TYPE_CHECKING

from kprov.state.blocks import Columns, split_columns
from kprov.state.mapping_index import Account

if TYPE_CHECKING:
    pass
from kprov.state.registry_index import (
    HAS_ID,
    KIND_OF,
    NO_ID,
    REGISTERED,
    REGISTRATION_HEADER,
    SENT,
    Key,
    RegistrationIndex,
    RegistrationRecord,
    account_value,
)

_TYPES = frozenset(KIND_OF)
_TYPE_STARTS = tuple(f"{kind}," for kind in KIND_OF)
_SENT_END = f",{SENT}\n"
_FLAGS = {  # (type, has an id) -> flags of a registered row
    (kind, has_id): code | (0 if has_id else NO_ID)
    for kind, code in KIND_OF.items()
    for has_id in (False, True)
}


def take_block(index: RegistrationIndex, lines: list[str], statuses: frozenset[str]) -> bool:
    """Apply a plain block (its *lines* as written) to *index*, exactly as applying each
    row's record would; False, applying nothing, when a row is not valid (the caller reads
    it, and every row after it, one by one). "sent" rows are checked, not applied: the
    requests still pending are read again when first asked for (``requests_pending``)."""
    is_sent = list(map(str.endswith, lines, repeat(_SENT_END)))
    if any(is_sent):
        if not _requests_valid(list(compress(lines, is_sent))):
            return False
        lines = list(compress(lines, map(not_, is_sent)))
        if not lines:
            return True
    columns = split_columns(lines, len(REGISTRATION_HEADER))
    account, instance, kinds, registration, external, _created, status = columns
    if "" in account or "" in instance or not _TYPES.issuperset(kinds):
        return False
    given = set(status)
    if not statuses.issuperset(given):
        return False
    keys = _keys(index, account, instance)
    fresh = given <= {REGISTERED} and index.slot_of.keys().isdisjoint(keys)
    if fresh and index.id_holders is None:
        before, start = len(index.slot_of), len(index.rows)
        _add_new(index, keys, lines, external, _flags(kinds, registration))  # ids: when asked
        if len(index.slot_of) - before == len(keys):
            return True  # each key once in the block (a night's answers): as row by row
        _take_back(index, keys, start)  # a key twice: only its last row decides, moved last
    last = dict(zip(keys, range(len(keys)), strict=True))
    rows: list[int] | None = None
    if len(last) != len(keys):
        rows = sorted(last.values())  # only a key's last row decides
        keys = list(map(keys.__getitem__, rows))
        status, lines, external, kinds, registration = (
            list(map(column.__getitem__, rows))
            for column in (status, lines, external, kinds, registration)
        )
        fresh = set(status) <= {REGISTERED} and index.slot_of.keys().isdisjoint(keys)
    # which record keeps an id depends on the rows' order unless every id is new and once
    named = _lower(list(filter(None, columns[3])))
    if index.id_holders is None:
        index._make_id_holders()
    assert index.id_holders is not None
    if len(set(named)) != len(named) or not index.id_holders.keys().isdisjoint(named):
        _by_rows(index, columns)
    elif fresh:
        _add_new(index, keys, lines, external, _flags(kinds, registration))
    else:
        for at in range(len(lines)) if rows is None else rows:
            index.apply(_record(columns, at))
    return True


def _take_back(index: RegistrationIndex, keys: list[Key], start: int) -> None:
    """Undo ``_add_new`` of *keys*, none of which was active before."""
    index.version += 1
    for key in dict.fromkeys(keys):
        del index.slot_of[key]
    del index.rows[start:], index.flags[start:], index.externals[start:]


def _flags(kinds: list[str], registration: list[str]) -> bytes:
    """The flags of registered rows: their type, and whether they hold no id."""
    if "" not in registration:  # every one with its id (as the API answers)
        return bytes(map(KIND_OF.__getitem__, kinds))
    return bytes(map(_FLAGS.__getitem__, zip(kinds, map(bool, registration), strict=True)))


def _requests_valid(lines: list[str]) -> bool:
    """Whether "sent" lines are valid rows: an account and an instance, a known type. At C
    speed, line by line, when they start as kprov writes them (two ids of 36 characters:
    the first comma the 37th character, the second the 74th); else by their columns."""
    if set(map(str.find, lines, repeat(","))) == {36} and set(
        map(str.find, lines, repeat(","), repeat(37))
    ) == {73}:
        return all(map(str.startswith, lines, repeat(_TYPE_STARTS), repeat(74)))
    account, instance, kinds, *_rest = split_columns(lines, len(REGISTRATION_HEADER))
    return "" not in account and "" not in instance and _TYPES.issuperset(kinds)


def _add_new(
    index: RegistrationIndex, keys: list[Key], lines: list[str], externals: list[str], flags: bytes
) -> None:
    """Registrations no key of which is active: their lines go in as they are."""
    index.version += 1
    start = len(index.rows)
    index.rows.extend(lines)
    index.externals.extend(externals)
    index.flags.extend(flags)
    index.slot_of.update(zip(keys, range(start, len(index.rows)), strict=True))
    if index.pending:  # answered now: no longer pending
        for key in [k for k in index.pending if index.slot_of.get(k, 0) >= start]:
            del index.pending[key]
    holders = index.id_holders
    if holders is not None:  # ids read from the lines in C
        held = list(compress(range(start, len(index.rows)), map(HAS_ID.__getitem__, flags)))
        holders.update(zip(index.ids_of(held), held, strict=True))


def _keys(index: RegistrationIndex, accounts: list[str], instances: list[str]) -> list[Key]:
    """The index's keys of these ids (as written; their lower-case forms are the keys'):
    UUIDs' numbers computed in C, each distinct instance lowered once."""
    numbers = uuid_numbers(accounts)
    values: Sequence[Account] = (
        list(map(account_value, map(str.lower, accounts))) if numbers is None else numbers
    )
    code_of = {text: index.code(text.lower()) for text in dict.fromkeys(instances)}
    return list(zip(values, map(code_of.__getitem__, instances), strict=True))


def _lower(texts: list[str]) -> list[str]:
    """*texts* in lower case: the list itself when it is already (most journals)."""
    joined = "\n".join(texts)
    lowered = joined.lower()
    return texts if lowered == joined else lowered.split("\n")


def _record(columns: Columns, at: int) -> RegistrationRecord:
    account, instance, kind, registration, *rest = (column[at] for column in columns)
    return RegistrationRecord(account.lower(), instance.lower(), kind, registration.lower(), *rest)


def _by_rows(index: RegistrationIndex, columns: Columns) -> None:
    for at in range(len(columns[0])):
        index.apply(_record(columns, at))


def uuid_numbers(accounts: list[str]) -> list[int] | None:
    """Every account id's number when each is a UUID in the 8-4-4-4-12 form (either case);
    else None. Checked on the joined text at C speed: 36 characters each between commas,
    dashes where they belong, and 32 hex digits that ``bytes.fromhex`` reads as exactly 16
    bytes; each number is made from its own two 8-byte halves, in C."""
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
    halves = array("Q", raw)  # each id's two 64-bit halves, big-endian in the bytes
    if sys.byteorder == "little":
        halves.byteswap()
    return list(map(or_, map(lshift, halves[0::2], repeat(64)), halves[1::2]))
