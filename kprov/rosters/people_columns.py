"""What plans read of a roster's people a column at a time, without making anyone.

Each function takes any ``Sequence[Person]`` (a list, in tests and small readers) and, when
it is ``rosters.people.People``, reads its columns directly: a million already-registered
lines must cost no ``Person`` (issue 24). They read ``People``'s columns, which are private
to this package.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from kprov.rosters.model import Person
from kprov.rosters.people import People


def without_accounts_only(people: Sequence[Person]) -> Sequence[Person]:
    """*people* without OneRoster users.csv rows (accounts, not enrolments): *people* itself
    when there are none (a roster's ``People`` says so without making anyone)."""
    if isinstance(people, People) and not any(rare[2] for rare in people._rare.values()):
        return people
    return [person for person in people if not person.account_only]


def id_chunks(people: Sequence[Person]) -> Iterator[tuple[int, list[str]]]:
    """(position of the first, ids) of *people*, a chunk at a time, without making them."""
    if not isinstance(people, People):
        yield 0, [person.external_id for person in people]
        return
    base = 0
    for chunk in people._all_chunks():
        ids = chunk
        if people._rare:
            ids = [people._rare[base + at][0] if base + at in people._rare else ext
                   for at, ext in enumerate(chunk)]  # fmt: skip
        yield base, ids
        base += len(chunk)


class LineColumns(NamedTuple):
    """A chunk of people by column, as codes: what a plan matches lines by."""

    base: int  # position of the first
    ids: list[str]
    roles: bytes  # a code a row: an index into role_names
    role_names: list[str]
    instances: Sequence[int]  # a code a row: an index into instance_keys
    instance_keys: list[str | None]
    only: set[int]  # positions of account-only rows (no enrolment)


def enrolment_columns(people: Sequence[Person]) -> Iterator[LineColumns]:
    """*people* a chunk at a time, by column, without making them."""
    if not isinstance(people, People):
        roles: dict[str, int] = {}
        keys: dict[str | None, int] = {}
        yield LineColumns(
            0, [p.external_id for p in people],
            bytes(roles.setdefault(p.role, len(roles)) for p in people), list(roles),
            array("I", (keys.setdefault(p.instance_key, len(keys)) for p in people)), list(keys),
            {at for at, p in enumerate(people) if p.account_only},
        )  # fmt: skip
        return
    only = {at for at, rare in people._rare.items() if rare[2]}
    for base, ids in id_chunks(people):
        end = base + len(ids)
        instances = array("I", bytes(4 * len(ids))) if people._instances is None else (
            people._instances[base:end]
        )  # fmt: skip
        yield LineColumns(
            base, ids, bytes(people._roles[base:end]), people._role_names, instances,
            people._keys, {at for at in only if base <= at < end} if only else set(),
        )  # fmt: skip


def people_at(people: Sequence[Person], at: Iterable[int]) -> Iterator[Person]:
    """The people of *people* at positions *at* (increasing), in order."""
    if isinstance(people, People):
        return people.at_positions(at)
    return (people[position] for position in at)


def instance_counts(people: Sequence[Person], at: Sequence[int]) -> Counter[str | None]:
    """How many of the people at positions *at* name each instance key (None: none), from
    the instance column when they are ``People`` (a million kept lines make no one)."""
    if not isinstance(people, People):
        return Counter(people[position].instance_key for position in at)
    if people._instances is None:
        return Counter({None: len(at)}) if len(at) else Counter()
    codes = Counter(map(people._instances.__getitem__, at))
    return Counter({people._keys[code]: n for code, n in codes.items()})


def external_ids(people: Iterable[Person]) -> Iterator[str]:
    """The ids of *people* in order (without making them, when they are ``People``)."""
    if isinstance(people, People):
        return people.external_ids()
    return (person.external_id for person in people)


def positions() -> array[int]:
    """An empty list of positions, 4 bytes each (``Selection``)."""
    return array("I")
