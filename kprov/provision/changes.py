"""A plan's removals: how one is made, and what removals and additions mean together (a
move, a new instructor).

A student who moves from P2 to P3 shows in a diff as a removal and an addition; a class whose
teacher changes, likewise. Said that way ("no longer in the manifest") a move reads as a
leaver, and a person reviewing a plan at night cannot tell the two apart. This pass only
renames: it never adds, drops or reorders an item, and the removal side of a move stays a
removal (or a hold without --prune), under the removal brake exactly as before.

With a removal grace (``--grace 2``) the two halves fall on different nights: the addition
is made at once, the removal once the grace is over, when nothing in that night's plan pairs
with it. So a removal whose person has been absent since an earlier run is also a move when
the person is registered, since that run began, in another class of the same source; and a
class's instructor removal is an instructor change when another instructor has been
registered there since (``Earlier``). A class someone was in all along is no move.

Pure, like the planner that calls it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from kprov.provision.plan import MOVED, NEW_INSTRUCTOR, Action, Item
from kprov.rosters.model import INSTRUCTOR, Origin, Person
from kprov.state.registry import RegistrationRecord


class Stay(NamedTuple):
    """A registration that stays tonight (its line is kept), as an earlier night made it."""

    external_id: str
    role: str
    instance: str  # the class's key
    origin: Origin | None  # the line that lists it tonight
    registered_at: str  # when kprov recorded it (ISO 8601, UTC: the registry's created_at)


@dataclass(frozen=True)
class Earlier:
    """What earlier nights began: when each absent registration's person was first found
    absent ((account id, instance id) -> ISO 8601 time), and the registrations that stay
    tonight of those people and of the classes whose instructors leave."""

    absent_since: Mapping[tuple[str, str], str] = field(default_factory=dict)
    stays: Sequence[Stay] = ()


def name_changes(
    items: list[Item],
    removals: Sequence[int],
    additions: Sequence[int],
    origins: Mapping[str, Origin],
    earlier: Earlier | None = None,
) -> None:
    """Rename, in *items*, the removals (indexes *removals*: UNREGISTER, or their HOLD or
    WAIT) and additions (REGISTER) that are moves between two classes of one source, or a
    change of a class's instructor; then the removals whose addition an earlier night made
    (*earlier*).

    A class's source is the file its definition comes from (*origins*: the manifest for the
    classes it lists, a bundle's classes.csv for a bundle's): a person leaving a class of one
    export and joining a class of another is not called a move.
    """
    taken: set[int] = set()
    joining: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index in additions:
        item = items[index]
        joining[(item.external_id, item.role)].append(index)
    for index in removals:
        old = items[index]
        source = _source(origins, old.instance)
        if not old.external_id or source is None:
            continue
        for candidate in joining.get((old.external_id, old.role), ()):
            new = items[candidate]
            if candidate in taken or new.instance == old.instance:
                continue
            if _source(origins, new.instance) != source:
                continue
            taken.update((index, candidate))
            words = f"moved {old.instance} → {new.instance}"
            items[index] = old._replace(
                change=MOVED, reason=_with_tail(words, old.reason), origin=new.origin
            )
            items[candidate] = new._replace(change=MOVED, reason=words)
            break
    _name_new_instructors(items, removals, additions, taken)
    if earlier is not None and earlier.stays:
        _name_earlier_changes(items, removals, origins, earlier)


def _name_new_instructors(
    items: list[Item], removals: Sequence[int], additions: Sequence[int], taken: set[int]
) -> None:
    """Per class: the instructors leaving and joining it in one plan."""
    leaving: dict[str, list[int]] = defaultdict(list)
    joining: dict[str, list[int]] = defaultdict(list)
    for index in removals:
        if index not in taken and items[index].role == INSTRUCTOR:
            leaving[items[index].instance].append(index)
    for index in additions:
        if index not in taken and items[index].role == INSTRUCTOR:
            joining[items[index].instance].append(index)
    for instance, old in leaving.items():
        new = joining.get(instance)
        if not new:
            continue
        before = ", ".join(items[i].external_id for i in old)
        after = ", ".join(items[i].external_id for i in new)
        words = f"instructor changed: {before} → {after}"
        for index in old:
            item = items[index]
            origin = item.origin or items[new[0]].origin
            items[index] = item._replace(
                change=NEW_INSTRUCTOR, reason=_with_tail(words, item.reason), origin=origin
            )
        for index in new:
            items[index] = items[index]._replace(change=NEW_INSTRUCTOR, reason=words)


def _name_earlier_changes(
    items: list[Item], removals: Sequence[int], origins: Mapping[str, Origin], earlier: Earlier
) -> None:
    """The removals still unnamed whose other half is a registration made since their person
    was first found absent: in another class of the same source (a move), or, for an
    instructor, in the same class by another instructor (an instructor change)."""
    classes: dict[tuple[str, str], list[Stay]] = defaultdict(list)  # (person, role) -> stays
    teachers: dict[str, list[Stay]] = defaultdict(list)  # class -> its instructors' stays
    for stay in earlier.stays:
        classes[(stay.external_id, stay.role)].append(stay)
        if stay.role == INSTRUCTOR:
            teachers[stay.instance].append(stay)
    for index in removals:
        old = items[index]
        since = earlier.absent_since.get((old.account_id, old.instance_id), "")
        if old.change or not since:
            continue
        source = _source(origins, old.instance)
        joined = [
            s for s in classes.get((old.external_id, old.role), ())
            if s.instance != old.instance and s.registered_at >= since
            and source is not None and _source(origins, s.instance) == source
        ]  # fmt: skip
        if joined:
            words = f"moved {old.instance} → {joined[0].instance}"
            items[index] = old._replace(
                change=MOVED, reason=_with_tail(words, old.reason), origin=joined[0].origin
            )
            continue
        if old.role != INSTRUCTOR:
            continue
        new = [s for s in teachers.get(old.instance, ())
               if s.external_id != old.external_id and s.registered_at >= since]  # fmt: skip
        if new:
            words = (
                f"instructor changed: {old.external_id} → {', '.join(s.external_id for s in new)}"
            )
            items[index] = old._replace(
                change=NEW_INSTRUCTOR, reason=_with_tail(words, old.reason),
                origin=old.origin or new[0].origin,
            )  # fmt: skip


def _source(origins: Mapping[str, Origin], instance: str) -> str | None:
    origin = origins.get(instance)
    return origin.file if origin is not None else None


def _with_tail(words: str, reason: str) -> str:
    """*words*, then what the removal's reason adds after its first clause (`pass --prune to
    remove it`, an unknown registration id): the hold still says why it holds."""
    _head, sep, tail = reason.partition("; ")
    return f"{words}; {tail}" if sep else words


def removal_item(
    record: RegistrationRecord,
    ref: str,
    person: Person | None,
    reason: str,
    role_change: bool = False,
) -> Item:
    """The UNREGISTER item of a registration kprov recorded (the planner makes it a HOLD
    when it may not be sent)."""
    return Item(
        Action.UNREGISTER,
        external_id=record.external_user_id,
        role=record.type,
        instance=ref,
        instance_id=record.instance_id,
        account_id=record.account_id,
        registration_id=record.registration_id,
        sis_id=person.sis_id or "" if person is not None else "",
        origin=person.origin if person is not None else None,
        reason=reason,
        role_change=role_change,
    )
