"""Guards for what cannot be undone (docs/holds.md): judged on the plan, before anything is
sent, from the request, local state and what the ledger says about earlier runs.

An account can never be deleted nor its external id reused; unregistering discards a
learner's analytics for the class. So, in this order:

1. the **source guard**: a source whose export is not the one kprov knows (re-keyed ids, a
   new id shape, a sharp shrink: ``guards_sources``) has everything it affects withheld,
   whatever the limits and the grace: what it would send, and its removals that wait out
   their grace or need --prune (a held export must be a hold a person sees, not 179
   removals "waiting" night after night while its nights do not count);
2. the **creation brake** (``--max-creations``, default 10 % of the people the mapping
   holds, no limit while it holds fewer than 100): past it, every account creation is
   withheld, with every registration that needs one;
3. the **removal brake** (``--max-removals``, judged by the planner): past it, every removal
   is withheld, with the role changes that need one.

A withheld item keeps its action and is tagged with its guard (``Item.guard``); the
executor sends none of them, and the run saves them as a hold that a person approves
exactly, or dismisses (``kprov holds``). Removals inside their grace are WAIT items
(``guards_grace``), counted after the sources are judged and before the brakes. Pure: the
ledger's history comes in as plain data (``GuardHistory``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from operator import attrgetter

from kprov.provision.class_shape import still_taught
from kprov.provision.guards_grace import Absence, AbsenceUpdate
from kprov.provision.guards_judge import Thresholds, judge
from kprov.provision.guards_sources import (
    Observation,
    SourceFingerprint,
    observe,
    source_key,
    stable_key,
)
from kprov.provision.limits import removal_limit
from kprov.provision.plan import Action, Brake, Item
from kprov.rosters.model import INSTRUCTOR, Person, SourceReading
from kprov.run_settings import DEFAULT_MAX_CREATIONS, DEFAULT_REMOVAL_GRACE
from kprov.state.registry import RegistrationRecord

SOURCE = "source"
CREATIONS = "creations"
REMOVALS = "removals"
GUARD_ORDER = (SOURCE, CREATIONS, REMOVALS)
CREATION_FLOOR = 100  # no creation limit while the mapping holds fewer people (a first term)


@dataclass(frozen=True)
class GuardSettings:
    """The operator's limits (options, manifest, profile; docs/holds.md)."""

    max_creations: str | None = DEFAULT_MAX_CREATIONS  # N or P% of the mapping; None: none
    grace: int = DEFAULT_REMOVAL_GRACE  # runs a person must be absent before removal
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class GuardAsk:
    """What the command line, else the input file, asks of the guards (None: not said; the
    profile's setting, then the default, apply: ``cli.guarded.with_guard_settings``)."""

    max_creations: str | None = None
    grace: int | None = None


@dataclass(frozen=True)
class GuardHistory:
    """What the ledger says about earlier runs, read before planning."""

    references: Mapping[str, SourceFingerprint] = field(default_factory=dict)  # last applied
    absences: Mapping[tuple[str, str], Absence] = field(default_factory=dict)
    # accounts the last run of this job allowed but did not create (killed, stopped): its
    # rerun resumes them, so the creation brake does not count them again
    resumed: frozenset[str] = frozenset()


NO_HISTORY = GuardHistory()


@dataclass(frozen=True)
class GuardTrip:
    """One guard that tripped: which, about what, why, how many items it withheld."""

    guard: str
    why: str
    items: int
    source: str = ""  # the source guard's source


@dataclass(frozen=True)
class GuardVerdict:
    """What the guards decided, for the run's record: the trips (saved in its hold), the
    fingerprint of every source read (the reference of the next run, unless held), the
    absence counts the run leaves, and those it keeps with its hold (a held source's)."""

    trips: tuple[GuardTrip, ...] = ()
    fingerprints: tuple[SourceFingerprint, ...] = ()
    held_sources: frozenset[str] = frozenset()
    absences: AbsenceUpdate = field(default_factory=AbsenceUpdate)
    # the counts the held sources' classes would have had: written if the hold is approved
    held_absences: AbsenceUpdate = field(default_factory=AbsenceUpdate)


# ------------------------------------------------------------------ the source guard


@dataclass(frozen=True)
class SourceVerdicts:
    """The source guard's judgment of every source a request read, made before the grace
    is counted (a held source's removals are frozen, not waiting)."""

    trips: list[GuardTrip] = field(default_factory=list)
    seen: dict[str, Observation] = field(default_factory=dict)  # by stable key
    held: dict[str, str] = field(default_factory=dict)  # stable key -> why, in two words


def judge_sources(
    people: Iterable[Person],
    removals: Iterable[Person],
    reading: SourceReading,
    history: GuardHistory,
    known: Collection[str],
    thresholds: Thresholds,
) -> SourceVerdicts:
    """Fingerprint every source and judge each against its last applied export."""
    seen = observe(
        people, reading.sources, removals=removals, deltas=reading.deltas, headers=reading.headers
    )
    trips: list[GuardTrip] = []
    held: dict[str, str] = {}
    for key, observation in seen.items():
        verdict = judge(history.references.get(key), observation, known, thresholds)
        if verdict.held:
            held[key] = verdict.short
            trips.append(GuardTrip(SOURCE, f"{key}: {verdict.words}", 0, key))
    return SourceVerdicts(trips, seen, held)


def withhold_held_sources(
    items: list[Item], reading: SourceReading, judged: SourceVerdicts
) -> list[GuardTrip]:
    """Withhold (in place) everything a held source affects: what it would send, and the
    removals it would not send tonight (inside their grace, or without --prune), so that a
    held export is a hold a person sees whatever the grace. Returns the trips, counted."""
    held = judged.held
    if not held:
        return list(judged.trips)
    raw = set(reading.sources)
    counts = dict.fromkeys(held, 0)
    keys: dict[str, str] = {}  # origin file -> stable source key (looked up once a file)
    for index, item in enumerate(items):
        if item.action not in AFFECTS or item.guard:
            continue
        source = _item_source(item, raw, reading.instance_sources, held, keys)
        if source:
            items[index] = _withhold(item, SOURCE, f"its export {source} is held: {held[source]}")
            counts[source] += 1
    return [replace(t, items=counts.get(t.source, 0)) for t in judged.trips]


SENDS = (Action.CREATE_ACCOUNT, Action.CREATE_INSTANCE, Action.REGISTER, Action.UNREGISTER)
# what a held source withholds: what it sends, and the removals it does not send tonight
AFFECTS = (*SENDS, Action.WAIT, Action.HOLD)


def _item_source(
    item: Item,
    raw: Collection[str],
    stated: Mapping[str, Sequence[str]],
    held: Collection[str],
    keys: dict[str, str],
) -> str:
    """The held source this item comes from, or "": its line's source, or (a removal, a
    class's creation) a source that states its class's membership."""

    def key_of(file: str) -> str:
        if file not in keys:
            keys[file] = stable_key(source_key(file, raw))
        return keys[file]

    if item.action in _BY_CLASS:
        for source in stated.get(item.instance, ()):
            if key_of(source) in held:
                return key_of(source)
    if item.origin is not None and key_of(item.origin.file) in held:
        return key_of(item.origin.file)
    return ""


_BY_CLASS = (Action.UNREGISTER, Action.WAIT, Action.HOLD, Action.CREATE_INSTANCE)


WITHHELD = "withheld: "  # how a withheld item's reason begins (ledger rows keep it so)


def _withhold(item: Item, guard: str, why: str) -> Item:
    return item._replace(guard=guard, reason=f"{WITHHELD}{why}; {item.reason}".rstrip("; "))


def withheld_parts(reason: str) -> tuple[str, str]:
    """(why a guard withheld an item, the item's own reason), from its reason; ("", reason)
    for an item no guard withheld. Views that already say "withheld" show the two apart."""
    if not reason.startswith(WITHHELD):
        return "", reason
    why, _sep, own = reason.removeprefix(WITHHELD).partition("; ")
    return why, own


# ---------------------------------------------------------------- the brakes


def creation_limit(spec: str, people: int) -> int | None:
    """The most accounts one run may create. A share (the default 10%) sets no limit while
    the mapping holds fewer than CREATION_FLOOR people: a share of a first term's empty
    mapping would hold the first import. A number is a limit someone chose, and always is."""
    if spec.strip().endswith("%") and people < CREATION_FLOOR:
        return None
    return removal_limit(spec, people, option="--max-creations")


def finish_guards(
    items: list[Item],
    settings: GuardSettings,
    *,
    mapped: int,
    brake: Brake | None,
    active: Iterable[RegistrationRecord],
    sources: SourceVerdicts,
    trips: list[GuardTrip],
    absences: AbsenceUpdate,
    held_instances: Collection[str],
    resumed: Collection[str] = frozenset(),
) -> GuardVerdict:
    """The creation brake, then the removal brake (in place); then every registration that
    needs something withheld is withheld with it. *sources* is the source guard's judgment
    and *trips* its trips as ``withhold_held_sources`` counted them; *held_instances* the
    instance ids its held sources state (their absences are not counted tonight: they are
    kept with the hold, for its approval); *resumed* the creations an earlier run of the
    job allowed and a rerun resumes (not counted, never withheld)."""
    held = set(sources.held)
    creations = [
        n
        for n, i in enumerate(items)
        if i.action is Action.CREATE_ACCOUNT and not i.guard and i.external_id not in resumed
    ]
    limit = creation_limit(settings.max_creations, mapped) if settings.max_creations else None
    if limit is not None and len(creations) > limit:
        spec = (settings.max_creations or "").strip()
        share = f" ({spec} of the {mapped:,} people in the mapping)" if spec.endswith("%") else ""
        why = (
            f"{len(creations):,} new accounts exceed the creation limit of {limit:,}{share}: "
            "an account can never be deleted"
        )
        for n in creations:
            items[n] = _withhold(items[n], CREATIONS, why)
        trips.append(GuardTrip(CREATIONS, why, len(creations)))
    if brake is not None and brake.engaged:
        why = (
            f"{brake.removals:,} removals exceed the limit of {brake.limit:,} ({brake.spec} of "
            f"{brake.managed:,} managed registrations): a broken export reads as 'everyone left'"
        )
        withheld = 0
        for n, item in enumerate(items):
            if (
                item.action in SENDS
                and not item.guard
                and (item.action is Action.UNREGISTER or item.role_change)
            ):
                items[n] = _withhold(item, REMOVALS, why)
                withheld += 1
        trips.append(GuardTrip(REMOVALS, why, withheld))
    added = _withhold_dependents(items, active)
    first = {t.guard: n for n, t in reversed(list(enumerate(trips)))}
    for guard, count in added.items():  # the source guard's dependents: its first trip's
        n = first[guard]
        trips[n] = replace(trips[n], items=trips[n].items + count)
    return GuardVerdict(
        trips=tuple(trips),
        fingerprints=tuple(o.fingerprint for o in sources.seen.values()),
        held_sources=frozenset(held),
        absences=absences.without(held_instances, held),
        held_absences=absences.only(held_instances, held),
    )


_GUARD = attrgetter("guard")


def _withhold_dependents(items: list[Item], active: Iterable[RegistrationRecord]) -> dict[str, int]:
    """Registrations that need a withheld item are withheld with it (the guard of what they
    need): an account or a class the run will not create, the other half of a role change,
    and the learners of a class left with no instructor to register them."""
    added: dict[str, int] = {}
    if not any(map(_GUARD, items)):  # nothing withheld, nothing depends on it (most nights)
        return added
    accounts = {i.external_id: i.guard for i in items
                if i.action is Action.CREATE_ACCOUNT and i.guard}  # fmt: skip
    classes = {i.instance: i.guard for i in items
               if i.action is Action.CREATE_INSTANCE and i.guard}  # fmt: skip
    halves = {(i.account_id, i.instance_id): i.guard for i in items if i.role_change and i.guard}

    def take(n: int, guard: str, why: str) -> None:
        items[n] = _withhold(items[n], guard, why)
        added[guard] = added.get(guard, 0) + 1

    for n, item in enumerate(items):
        if item.guard or item.action not in (Action.REGISTER, Action.UNREGISTER):
            continue
        if item.action is Action.REGISTER and not item.account_id and item.external_id in accounts:
            take(n, accounts[item.external_id], "its account is withheld")
        elif item.action is Action.REGISTER and not item.instance_id and item.instance in classes:
            take(n, classes[item.instance], "its class is withheld")
        elif item.role_change and (item.account_id, item.instance_id) in halves:
            take(n, halves[(item.account_id, item.instance_id)], "a role change is both halves")
    _withhold_untaught(items, active, take)
    return added


def _withhold_untaught(
    items: list[Item],
    active: Iterable[RegistrationRecord],
    take: Callable[[int, str, str], None],
) -> None:
    """Learners are registered with an instructor's token: a learner whose class keeps no
    instructor (none registered, every one of this plan withheld) is withheld too."""
    sent: set[str] = set()  # classes with an instructor registration that is sent
    withheld: dict[str, str] = {}  # class -> the guard of its withheld instructors
    for item in items:
        if item.action is Action.REGISTER and item.role == INSTRUCTOR:
            if item.guard:
                withheld.setdefault(item.instance, item.guard)
            else:
                sent.add(item.instance)
    if not withheld:
        return
    taught = still_taught(items, active)
    for n, item in enumerate(items):
        if item.guard or item.action is not Action.REGISTER or item.role == INSTRUCTOR:
            continue
        guard = withheld.get(item.instance)
        if guard and item.instance not in sent and item.instance_id not in taught:
            take(n, guard, "its class's instructor is withheld")
