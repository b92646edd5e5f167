"""What a snapshot holds of each index (``state.snapshot``), and how each is made again.

Plain types only (``marshal``): lists of ints and strings, bytes, tuples of them. Each index
is rebuilt from its columns at C speed (a dict from two zipped lists), exactly as the load
left it: the registrations' slots, lines (a record where a row was read one by one), flags,
external ids, instance codes, ids' holders when the load made them, and pending requests;
the mapping's account ids (UUIDs as numbers), SIS ids and disabled people.
"""

from __future__ import annotations

from itertools import compress
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

from kprov.state.registry_rows import RegistrationRecord

if TYPE_CHECKING:
    from kprov.state.mapping import MappingIndex
    from kprov.state.registry_index import RegistrationIndex

REGISTRATIONS = "registrations"
MAPPING = "mapping"
_FIRST, _SECOND = itemgetter(0), itemgetter(1)


# ---------------------------------------------------------------- registrations


def registrations_data(index: RegistrationIndex) -> tuple[Any, ...] | None:
    """*index* as plain data; None when it holds what a snapshot does not keep (claims)."""
    if index.pending_log:
        return None  # rows applied since the load (its caches are made again when asked)
    rows = index.rows
    is_record = [type(row) is RegistrationRecord for row in rows]
    record_slots = list(compress(range(len(rows)), is_record))
    plain_rows: list[Any] = list(rows)
    for slot in record_slots:
        plain_rows[slot] = tuple(cast(RegistrationRecord, rows[slot]))
    holders: tuple[list[str], list[int], list[str]] | None = None
    if index.id_holders is not None:
        slot_of_record = {id(rows[slot]): slot for slot in record_slots}
        ids: list[str] = []
        slots: list[int] = []
        as_records: list[str] = []
        for registration_id, holder in index.id_holders.items():
            if isinstance(holder, int):
                slots.append(holder)
                ids.append(registration_id)
                continue
            record_slot = slot_of_record.get(id(holder))
            if record_slot is None:
                return None  # a record no slot holds: not as a load leaves it
            slots.append(record_slot)
            as_records.append(registration_id)
            ids.append(registration_id)
        holders = (ids, slots, as_records)
    keys = list(index.slot_of)
    pending = list(index.pending)
    return (
        index.version,
        list(map(_FIRST, keys)),
        list(map(_SECOND, keys)),
        list(index.slot_of.values()),
        plain_rows,
        record_slots,
        bytes(index.flags),
        index.externals,
        index.instances,
        list(map(_FIRST, pending)),
        list(map(_SECOND, pending)),
        list(index.pending.values()),
        holders,
    )


def restore_registrations(index: RegistrationIndex, data: Any) -> None:
    """Make *index* (new) what ``registrations_data`` was made from."""
    (
        version,
        accounts,
        codes,
        slots,
        rows,
        record_slots,
        flags,
        externals,
        instances,
        pending_accounts,
        pending_codes,
        pending_types,
        holders,
    ) = data
    index.version = version
    index.slot_of = dict(zip(zip(accounts, codes, strict=True), slots, strict=True))
    for slot in record_slots:
        rows[slot] = RegistrationRecord(*rows[slot])
    index.rows = rows
    index.flags = bytearray(flags)
    index.externals = externals
    index.instances = instances
    index.codes = dict(zip(instances, range(len(instances)), strict=True))
    index.pending = dict(
        zip(zip(pending_accounts, pending_codes, strict=True), pending_types, strict=True)
    )
    if holders is not None:
        ids, holder_slots, as_records = holders
        id_holders: dict[str, int | RegistrationRecord] = dict(zip(ids, holder_slots, strict=True))
        for registration_id in as_records:  # held by the record itself, as applied
            id_holders[registration_id] = index.record_at(cast(int, id_holders[registration_id]))
        index.id_holders = id_holders


# ---------------------------------------------------------------- mapping


def mapping_data(index: MappingIndex) -> tuple[Any, ...]:
    compact = index.account_of.compact
    return (
        list(compact),
        list(compact.values()),
        list(index.sis_of),
        list(index.sis_of.values()),
        list(index.disabled),
    )


def restore_mapping(index: MappingIndex, data: Any) -> None:
    externals, accounts, sis_externals, sis_ids, disabled = data
    index.account_of.compact = dict(zip(externals, accounts, strict=True))
    index.sis_of = dict(zip(sis_externals, sis_ids, strict=True))
    index.disabled = set(disabled)
