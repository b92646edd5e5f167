"""The plain stretches of a CSV roster, read a block of lines at a time with string methods.

A statewide roster is millions of rows that all look alike: an id, a role, perhaps an
instance, no quotes. Row by row (csv module, then every check in Python) that cost ~3 µs a
row here. A block of such lines is checked as a whole instead -- every line has the
header's number of fields and no quote; every id is a plain id (``FAST_ID``, one regex over
the block); every role is a known spelling; every instance key was checked already or passes
``key_problems`` -- and split into columns at C speed. It yields exactly the people, the
digests and the line numbers the row-by-row reading would. The first block with anything
else in it (a blank or ragged row, a quote, a bad id, an unknown role...) is given back,
and from there ``csv_reader`` reads row by row, as before, so every problem is named the same.
"""

from __future__ import annotations

import re
from itertools import repeat

from kprov.rosters.collect import Collector
from kprov.rosters.model import LEARNER, Origin, Person
from kprov.rosters.people import People
from kprov.rosters.roles import FAST_ROLE_OF
from kprov.rosters.text import TextLines
from kprov.rosters.validate import FAST_ID, key_problems

# FAST_ID for many ids at once, each ended by a line break ("\Z" in FAST_ID is the id's end)
_FAST_IDS = re.compile("(?:" + FAST_ID.pattern.replace(r"\Z", "\n") + ")*")
_ROLES = {spelled: role for spelled, role in FAST_ROLE_OF.items() if role}


def read_blocks(
    lines: TextLines,
    delimiter: str,
    width: int,
    collector: Collector,
    name: str,
    first_line: int,
    columns: tuple[int, int | None, int | None],
) -> int:
    """Take the plain blocks ahead; returns how many lines they held (the next line is
    ``first_line`` plus that). *columns*: the id's, the role's and the instance's index."""
    taken = 0
    for block in lines.blocks():
        if not take_block(block, delimiter, width, collector, name, first_line + taken, columns):
            lines.unread(block)
            lines.number -= len(block)
            break
        taken += len(block)
    return taken


def take_block(
    block: list[str],
    delimiter: str,
    width: int,
    collector: Collector,
    name: str,
    first_line: int,
    columns: tuple[int, int | None, int | None],
) -> bool:
    """Read *block* into *collector* when it is plain; False, touching nothing, when not."""
    id_at, role_at, inst_at = columns
    text = "".join(block)
    if "\r" in text:
        text = text.replace("\r\n", "\n")  # TextLines.blocks: every CR is a CRLF's
    if '"' in text:
        return False
    count = len(block)
    if width == 1:  # a lone id column: the text is the ids, one a line (C passes)
        if delimiter in text:
            return False
        cells = text.split("\n")
        ids, id_text = cells[:count], text
    elif set(map(str.count, block, repeat(delimiter))) != {width - 1}:
        return False
    else:
        cells = text.replace("\n", delimiter).split(delimiter)
        ids = cells[id_at::width][:count]
        id_text = "\n".join(ids) + "\n"
    if not _FAST_IDS.fullmatch(id_text):
        return False
    roles: list[str] = [LEARNER] * count
    if role_at is not None:
        spelled = cells[role_at::width][:count]
        if not _ROLES.keys() >= set(spelled):
            return False
        roles = list(map(_ROLES.__getitem__, spelled))
    instances: list[str | None] = [collector.force_instance] * count
    if collector.force_instance is None and inst_at is not None:
        instances = [key or None for key in map(str.strip, cells[inst_at::width][:count])]
        fresh = set(instances).difference(collector.good_keys)
        fresh.discard(None)
        if any(key_problems(key) for key in fresh):  # type: ignore[arg-type]
            return False  # read row by row, which names each row of a bad key
        collector.good_keys.update(fresh)  # type: ignore[arg-type]
    if collector.force_role is not None:
        roles = [collector.force_role] * count
    appends = collector.digest_appends
    for digest in map(hash, zip(ids, instances, strict=True)):
        appends[digest & 0xFF](digest)
    collector.rows += count
    if collector.still_keeping():
        people = collector.roster.people
        numbers = range(first_line, first_line + count)
        if isinstance(people, People):
            people.add_rows(name, ids, roles, numbers, instances)
        else:
            people.extend(
                Person(ext, role, Origin(name, line), instance)
                for ext, role, line, instance in zip(ids, roles, numbers, instances, strict=True)
            )
    return True
