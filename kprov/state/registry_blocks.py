"""A block of registration rows applied to the index at C speed, with the same result as
applying them one by one (``RegistrationIndex.apply``).

Row by row, each row is a tuple key, three dict operations and a record: a registry of a
million registrations (two rows each: "sent", then "registered") took 5 s to load. Only the
last row of a key that is not "sent" decides whether and how it is active, and only a "sent"
row after it leaves a request pending; so those rows are applied, in their order, when every
registration id the block names is new and named once (otherwise which record keeps an id
depends on every row in turn, and every row is applied). When they are all new
registrations (no key active yet) they go in with ``dict.update``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from itertools import compress, repeat
from operator import not_
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kprov.state.registry import RegistrationIndex, RegistrationRecord

Key = tuple[str, str]


def apply_block(
    index: RegistrationIndex,
    columns: list[list[str]],
    make: Callable[[tuple[str, ...]], RegistrationRecord],
    *,
    sent: str,
    registered: str,
) -> None:
    """Apply a block of rows, by column (journal order, ids canonical), to *index*, exactly
    as ``index.apply`` of each row's record would. Records are made for the rows that
    decide only."""
    statuses = columns[-1]
    count = len(statuses)
    keys = list(zip(columns[0], columns[1], strict=True))
    is_sent = [status == sent for status in statuses]
    decided = list(compress(range(count), map(not_, is_sent)))  # rows that are not "sent"
    asked = list(compress(range(count), is_sent))
    every_id = [i for i in map(columns[3].__getitem__, decided) if i]
    if len(set(every_id)) != len(every_id) or not index.by_id.keys().isdisjoint(every_id):
        # an id given to two records: which one the index keeps depends on every row in turn
        for record in map(make, zip(*columns, strict=True)):
            index.apply(record)
        return
    last_decided = dict(zip(map(keys.__getitem__, decided), decided, strict=True))
    last_asked = dict(zip(map(keys.__getitem__, asked), asked, strict=True))
    rows = sorted(last_decided.values())
    picked = [list(map(column.__getitem__, rows)) for column in columns]
    final = list(map(make, zip(*picked, strict=True)))
    final_keys = list(map(keys.__getitem__, rows))
    if set(picked[-1]) <= {registered} and index.active.keys().isdisjoint(final_keys):
        deque(map(index.sent.pop, final_keys, repeat(None)), maxlen=0)
        index.active.update(zip(final_keys, final, strict=True))
        index.by_id.update((r.registration_id, r) for r in final if r.registration_id)
    else:
        for record in final:
            index.apply(record)
    types = columns[2]
    index.sent.update(
        (key, types[at])
        for key, at in last_asked.items()
        if at > last_decided.get(key, -1)  # asked again after the last answer
    )
