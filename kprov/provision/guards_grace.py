"""Removals after a grace (``--grace N``, ``removal_grace:``): a registration is removed only
once its person has been absent from N consecutive runs that read its class's source.

Unregistering discards the learner's analytics for that class, and a student missing from
one night's export (an SIS hiccup, a half-written file) is usually back the next night.
The ledger keeps, per (account, instance), how many consecutive runs found the person
absent (docs/holds.md); the planner reads those counts before planning and this pass turns
a removal still inside its grace into a WAIT item ("waiting 1 of 2"). The counts the run
leaves (``AbsenceUpdate``) are written when an applied run ends:

- only classes whose membership the run read are counted (a run that did not read the
  source, or a plan, or a run refused before reading, counts nothing), and a class held by
  the source guard is not counted either (its export is not trusted tonight): its removals
  are *frozen* (withheld with the source, "frozen at 0 of 2"), and the counts its night
  would leave are kept with the hold, written only if a person approves it (``only``);
- someone back before N is never removed, and their count starts again;
- a delta's ``tobedeleted`` removal is remembered the same way, so a removal that was not
  sent (no --prune, a grace, a failure) is planned again on every later run that reads its
  source, until it is applied or the person is enrolled again: the delta that named it is
  never read again, and its cursor moves on.

The addition side of a move is never delayed: only removals wait. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from kprov.provision.guards_sources import source_key, stable_key
from kprov.provision.plan import Action, Item


@dataclass(frozen=True)
class Absence:
    """One registration whose person the source no longer lists (or a delta removed)."""

    account_id: str
    instance_id: str
    person: str  # external id
    instance: str  # the class's key as the manifest names it
    role: str
    source: str  # the source that states the class's membership (stable key)
    count: int  # consecutive runs that read the source without them
    explicit: bool = False  # a `tobedeleted` row: remembered until applied or re-enrolled
    registration_id: str = ""
    file: str = ""  # the row that removed them (explicit)
    line: int = 0
    reason: str = ""
    since: str = ""  # the run that first found them absent ("": this one)
    since_at: str = ""  # when that run began (ISO 8601, UTC; read from the ledger)

    @property
    def key(self) -> tuple[str, str]:
        return (self.account_id, self.instance_id)


@dataclass(frozen=True)
class AbsenceUpdate:
    """The counts after this run: records of the classes (implicit) and sources (explicit)
    it read replace the ledger's; every other record stays as it was."""

    instances: frozenset[str] = frozenset()  # instance ids whose implicit counts are replaced
    sources: frozenset[str] = frozenset()  # sources whose explicit removals are replaced
    records: tuple[Absence, ...] = ()

    def without(self, instances: Collection[str], sources: Collection[str]) -> AbsenceUpdate:
        """Leave the counts of held classes and sources as they were."""
        return AbsenceUpdate(
            self.instances - set(instances),
            self.sources - set(sources),
            tuple(r for r in self.records if not _held(r, instances, sources)),
        )

    def only(self, instances: Collection[str], sources: Collection[str]) -> AbsenceUpdate:
        """The counts of held classes and sources alone: what approving their hold writes."""
        return AbsenceUpdate(
            self.instances & set(instances),
            self.sources & set(sources),
            tuple(r for r in self.records if _held(r, instances, sources)),
        )

    def __bool__(self) -> bool:
        return bool(self.instances or self.sources or self.records)


def _held(record: Absence, instances: Collection[str], sources: Collection[str]) -> bool:
    if record.explicit:
        return record.source in sources
    return record.instance_id in instances


def waiting_reason(reason: str, count: int, grace: int) -> str:
    runs = "run" if count == 1 else "runs"
    return f"{reason}; waiting {count} of {grace} (absent from {count} {runs}; --grace {grace})"


_FROZEN = re.compile(r"; frozen at (\d+) of (\d+): held nights do not count \(--grace \d+\)$")


def frozen_reason(reason: str, before: int, grace: int) -> str:
    """A removal inside its grace whose class's export is held: the night does not count
    (unless a person approves the hold), so its count stays where it was."""
    return f"{reason}; frozen at {before} of {grace}: held nights do not count (--grace {grace})"


def counted_reason(reason: str) -> str:
    """The reason of a frozen removal once its hold is approved (the night counts)."""
    found = _FROZEN.search(reason)
    if found is None:
        return reason
    count, grace = int(found[1]) + 1, int(found[2])
    return waiting_reason(reason[: found.start()], count, grace)


def remembered(
    absences: Mapping[tuple[str, str], Absence],
    delta_sources: Collection[str],
    active: Collection[tuple[str, str]],
    handled: Collection[tuple[str, str]],
) -> list[Absence]:
    """The explicit removals of earlier runs to plan again tonight: from a delta source read
    tonight, still registered, not already planned by tonight's own rows (*handled*). A
    person enrolled again tonight is in *handled* (the planner adds them to it)."""
    return [
        record
        for record in absences.values()
        if record.explicit
        and record.source in delta_sources
        and record.key in active
        and record.key not in handled
    ]


def wait_out_grace(
    items: list[Item],
    removals: Sequence[int],
    explicit: Collection[int],
    *,
    grace: int,
    absences: Mapping[tuple[str, str], Absence],
    read_instances: Collection[str],
    read_sources: Collection[str],
    instance_sources: Mapping[str, Sequence[str]],
    frozen: Collection[str] = (),
    frozen_sources: Collection[str] = (),
) -> AbsenceUpdate:
    """Count tonight's absences and turn each removal inside its grace into a WAIT item (in
    place). *removals* are the indexes of every removal the planner made for an absence
    (UNREGISTER, or HOLD without --prune); *explicit* those of them a row asked for.
    *frozen* (instance ids) and *frozen_sources* (stable keys) are what the source guard
    holds tonight: a removal there inside its grace says it is frozen, not "waiting 1 of 2"
    (the source guard withholds it; the night counts only if its hold is approved)."""
    known = set(read_sources)
    records: list[Absence] = []
    for index in removals:
        item = items[index]
        if item.role_change or not item.account_id or not item.instance_id:
            continue
        before = absences.get((item.account_id, item.instance_id))
        count = (before.count if before is not None else 0) + 1
        is_explicit = index in explicit
        if is_explicit and item.origin is not None:
            source = stable_key(source_key(item.origin.file, known))
        else:
            stated = instance_sources.get(item.instance) or ("",)
            source = stable_key(stated[0]) if stated[0] else ""
        row = item.origin if (is_explicit and item.origin) else None
        records.append(
            Absence(
                item.account_id, item.instance_id, item.external_id, item.instance, item.role,
                source, count, is_explicit, item.registration_id, row.file if row else "",
                row.line if row else 0, item.reason.partition("; ")[0] if row else "",
                before.since if before is not None else "",
            )
        )  # fmt: skip
        if item.action is Action.UNREGISTER and count < grace:
            held = source in frozen_sources if is_explicit else item.instance_id in frozen
            reason = (
                frozen_reason(item.reason, count - 1, grace) if held
                else waiting_reason(item.reason, count, grace)
            )  # fmt: skip
            items[index] = item._replace(action=Action.WAIT, reason=reason)
    return AbsenceUpdate(
        frozenset(read_instances), frozenset(stable_key(s) for s in read_sources), tuple(records)
    )
