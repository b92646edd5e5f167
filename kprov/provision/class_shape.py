"""The shape of each class, judged on the plan before anything is sent.

Two shapes cannot work: learners without an instructor (the API registers learners with an
instructor's token, so every learner line would fail with 403 after its account and an empty
class were made), and more registrations than the API's 500 per learning instance. Such a
class is a `cannot` (BLOCK) item for each of its lines, with the fix named: nothing is sent
for it (its instance is not created, no account is made only for it, no role change is
half-done), and the rest of the plan goes on. A class that only loses its last instructor
is not blocked (the export says so): ``losing_last_instructor`` warns.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from kprov.provision.limits import MAX_REGISTRATIONS
from kprov.provision.plan import Action, Item
from kprov.rosters.model import INSTRUCTOR
from kprov.state.registry import RegistrationRecord

NO_INSTRUCTOR = (
    "class {ref!r} has learners but no instructor (none in the roster, none registered): "
    "learners are registered with an instructor's token, so nothing is sent for this class; "
    "add its teacher to the roster (or register one first: kprov register --instance {ref} "
    "--instructor ID) and run again"
)
TOO_MANY = (
    "class {ref!r} would have {count} registrations; the API allows {limit} per learning "
    "instance, so nothing is sent for this class: split it into smaller classes in the SIS"
)

LOSES_INSTRUCTOR = (
    "class {ref!r} loses its last instructor in this run ({who}) and keeps {count} "
    "learner(s): they stay registered, but no learner can be added to it until it has an "
    "instructor again; add its teacher to the export (or `kprov register --instance {ref} "
    "--instructor ID`)"
)


def losing_last_instructor(items: list[Item], active: Iterable[RegistrationRecord]) -> list[str]:
    """A warning for each class this plan leaves with learners and no instructor: a section
    whose teacher left the export while its students stayed. Nothing is blocked (the export
    says so, and the learners keep their analytics), but every learner added later would
    fail until a teacher is registered, so a person hears of it tonight."""
    leaving: dict[str, list[str]] = defaultdict(list)
    refs: dict[str, str] = {}
    for item in items:
        if item.action is Action.UNREGISTER and item.role == INSTRUCTOR and not item.guard:
            leaving[item.instance_id].append(item.external_id)
            refs[item.instance_id] = item.instance
    if not leaving:
        return []
    gone = {
        (i.account_id, i.instance_id)
        for i in items
        if i.action is Action.UNREGISTER and not i.guard
    }
    joining = {  # an instructor whose registration a guard withheld does not join tonight
        i.instance_id
        for i in items
        if i.action is Action.REGISTER and i.role == INSTRUCTOR and not i.guard
    }
    taught: set[str] = set()
    learners: Counter[str] = Counter()
    for record in active:
        if record.instance_id not in leaving or (record.account_id, record.instance_id) in gone:
            continue
        if record.type == INSTRUCTOR:
            taught.add(record.instance_id)
        else:
            learners[record.instance_id] += 1
    return [
        LOSES_INSTRUCTOR.format(ref=refs[iid], who=", ".join(sorted(who)), count=learners[iid])
        for iid, who in leaving.items()
        if iid not in taught and iid not in joining and learners[iid]
    ]


def still_taught(items: Iterable[Item], active: Iterable[RegistrationRecord]) -> set[str]:
    """The instance ids that keep a recorded instructor after this plan: one whose
    registration no removal of the plan (none a guard withheld) takes away. Learners are
    registered with an instructor's token: the class judgments (here, and the guards'
    ``_withhold_untaught``) ask this one question."""
    leaving = {
        (i.account_id, i.instance_id)
        for i in items
        if i.action is Action.UNREGISTER and not i.guard
    }
    return {
        r.instance_id
        for r in active
        if r.type == INSTRUCTOR and (r.account_id, r.instance_id) not in leaving
    }


def block_misshapen_classes(
    items: list[Item], active: Iterable[RegistrationRecord], kept: Counter[str]
) -> None:
    """Turn every item of a class that cannot work into a BLOCK naming why (in place).

    *kept* counts, per instance ref, the lines already registered as asked."""
    reasons = _misshapen(items, active, kept)
    if not reasons:
        return
    # (account, instance id) -> why, of blocked role changes: by the registration, not the
    # ref (one class named by its key on one line and by its id on another is one class)
    blocked_pairs: dict[tuple[str, str], str] = {}
    blocked_people: set[str] = set()
    for n, item in enumerate(items):
        reason = reasons.get(item.instance)
        if reason is None or item.action not in (Action.REGISTER, Action.CREATE_INSTANCE):
            continue
        items[n] = item._replace(action=Action.BLOCK, reason=reason, change="")
        if item.action is Action.REGISTER:
            blocked_people.add(item.external_id)
            if item.role_change:
                blocked_pairs[(item.account_id, item.instance_id)] = reason
    for n, item in enumerate(items):  # a role change is both halves or neither
        pair = (item.account_id, item.instance_id)
        halves = item.action is Action.UNREGISTER or (
            item.action is Action.REGISTER and item.role_change
        )
        if halves and pair in blocked_pairs:
            items[n] = item._replace(action=Action.BLOCK, reason=blocked_pairs[pair], change="")
    still_needed = {i.external_id for i in items if i.action is Action.REGISTER}
    unneeded = blocked_people - still_needed
    items[:] = [
        i for i in items if not (i.action is Action.CREATE_ACCOUNT and i.external_id in unneeded)
    ]


def _misshapen(
    items: list[Item], active: Iterable[RegistrationRecord], kept: Counter[str]
) -> dict[str, str]:
    """Instance ref -> why its class cannot work, for the classes this plan adds people to."""
    taught = still_taught(items, active)
    adds: dict[str, int] = defaultdict(int)
    teachers: Counter[str] = Counter()
    instance_ids: dict[str, str] = {}
    for item in items:
        if item.action is not Action.REGISTER:
            continue
        adds[item.instance] += 1
        teachers[item.instance] += item.role == INSTRUCTOR
        if item.instance_id:
            instance_ids[item.instance] = item.instance_id
    reasons: dict[str, str] = {}
    for ref, count in adds.items():
        total = count + kept[ref]
        if total > MAX_REGISTRATIONS:
            reasons[ref] = TOO_MANY.format(ref=ref, count=total, limit=MAX_REGISTRATIONS)
        elif not teachers[ref] and instance_ids.get(ref, "") not in taught:
            reasons[ref] = NO_INSTRUCTOR.format(ref=ref)
    return reasons
