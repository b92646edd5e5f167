"""Holds: what a run's guards withheld, saved for a person to approve exactly or dismiss
(docs/holds.md). Pure functions over plans, results and local state; the ledger's rows are
``state.ledger_guards``'s.

When may a hold be approved? Exactly when its items would still be planned the same way:

- it is still **open**: not approved (a hold is applied once), dismissed, or superseded -- a
  later run of the same job (the same command on the same manifest or roster) re-judges
  everything, so *its* hold is the one to approve (a later nightly run always changes the
  local state, so "the state changed since" cannot be the rule by itself);
- what local state says of the held items is what it said when the holding run ended
  (``held_facts``: each account, class and registration they touch), so an approval never
  creates an account that exists by now or removes a registration made since; other
  changes (another hold of the same night approved, a `kprov register` of other classes)
  do not stale it. The whole-state fingerprint (``saved_plan.state_fingerprint``) is kept
  too: `holds show` says whether anything changed at all.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kprov.errors import ConfigError, StalePlanError
from kprov.provision.guards import (
    GUARD_ORDER,
    GuardHistory,
    GuardTrip,
    GuardVerdict,
    withheld_parts,
)
from kprov.provision.guards_grace import Absence, AbsenceUpdate, counted_reason
from kprov.provision.guards_json import absence_json, trip_json
from kprov.provision.guards_sources import SourceFingerprint
from kprov.provision.plan import Action, Item, Plan
from kprov.provision.result import RunResult, Status
from kprov.provision.run_record import item_from_row
from kprov.state.ledger_guards import AbsenceRows, HoldRow, RunGuards
from kprov.state.mapping import MappingIndex
from kprov.state.registry import Registry

HOLD_PREFIX = "hold-"
APPROVE_COMMAND = "holds approve"


def hold_id_of(run_id: str) -> str:
    """A run saves at most one hold, named after it: hold-3f2a9c1b7d04."""
    return HOLD_PREFIX + run_id.removeprefix("kprov-")


def job_of(command: str, sources: Sequence[str]) -> str:
    """What a later run must repeat to supersede a hold: the command and its first input
    (the manifest of a sync, the first roster of a register), by its stable name."""
    from kprov.provision.guards_sources import stable_key

    return f"{command} {stable_key(sources[0])}" if sources else command


def held_facts(items: Iterable[Item], mapping: MappingIndex, registry: Registry) -> str:
    """A digest of what local state says of each item: its account, its class, the
    registration of the one in the other. Equal digests: the items would be planned alike."""
    digest = hashlib.sha256()
    index = registry.instance_index
    active = registry.registration_index.active
    account_of = mapping.account_of
    for item in items:
        account = item.account_id or account_of.get(item.external_id, "")
        found = index.find(item.instance) if item.instance else None
        instance = item.instance_id or (found.instance_id if found is not None else "")
        record = active.get((account, instance)) if account and instance else None
        facts = (
            item.action.value, item.external_id, item.instance, account, instance,
            record.registration_id if record else "-", record.type if record else "-",
            "disabled" if item.external_id in mapping.disabled else "",
        )  # fmt: skip
        digest.update("\x1f".join(facts).encode("utf-8", "surrogatepass") + b"\n")
    return "sha256:" + digest.hexdigest()


def withheld_items(result: RunResult) -> list[Item]:
    return [o.item for o in result.outcomes if o.item.guard and o.status is Status.HELD]


def trips_of(plan: Plan, withheld: Sequence[Item]) -> list[GuardTrip]:
    """The trips a hold names: the plan's, or (a plan saved before guards named their
    trips) one per guard, in the words of its first item."""
    if plan.guards is not None and plan.guards.trips:
        return list(plan.guards.trips)
    counts = Counter(item.guard for item in withheld)
    first = {item.guard: item.reason for item in reversed(withheld)}
    return [GuardTrip(g, first[g], counts[g]) for g in GUARD_ORDER if g in counts]


def run_guards(
    plan: Plan,
    result: RunResult | None,
    *,
    run_id: str,
    job: str,
    profile: str,
    base_url: str,
    facts: tuple[str, str] | None,
    cursors: Mapping[str, str],
    now: float,
) -> RunGuards:
    """What the run's end writes: its hold (when it withheld anything; *facts* is the
    (state fingerprint, held facts) pair taken as the run left local state), its sources'
    fingerprints and absence counts, and the delta cursors that may move."""
    withheld = withheld_items(result) if result is not None else []
    verdict = plan.guards or GuardVerdict()
    hold = None
    if withheld:
        state_print, items_print = facts or ("", "")
        held = verdict.held_absences
        hold = HoldRow(
            hold_id_of(run_id), plan.command, profile, base_url, now,
            [trip_json(t) for t in trips_of(plan, withheld)], len(withheld), state_print,
            items_print, absence_rows(held).__dict__ if held else None,
        )  # fmt: skip
    fingerprints = [
        (f.source, f.source not in verdict.held_sources, f.delta, f.to_json(), list(f.sample))
        for f in verdict.fingerprints
    ]
    absences = absence_rows(verdict.absences)
    return RunGuards(run_id, job, hold, fingerprints, absences, dict(cursors), now)


def absence_rows(update: AbsenceUpdate) -> AbsenceRows:
    """An update of the counts, as the ledger's rows."""
    return AbsenceRows(
        sorted(update.instances),
        sorted(update.sources),
        [{**absence_json(r), "first_run": r.since} for r in update.records],
    )


def approval_plan(
    hold: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], registry: Registry
) -> Plan:
    """The plan that applies exactly the held items: each as its row recorded it, no longer
    withheld, its class's id filled in when the holding run created the class. Refused (exit
    8, nothing sent) when a class they need does not exist and the hold does not create it."""
    index = registry.instance_index
    creates = {str(r["instance"]) for r in rows if r["action"] == Action.CREATE_INSTANCE.value}
    items: list[Item] = []
    for row in rows:
        try:
            item = item_from_row(row)
        except (KeyError, TypeError, ValueError):
            raise ConfigError(
                f"the run ledger's record of hold {hold['hold_id']} is damaged (an item it "
                "holds cannot be read); nothing was sent",
                hint="Dismiss it (kprov holds dismiss) and run the job again.",
            ) from None
        reason = withheld_parts(item.reason)[1]
        if item.action is Action.WAIT:  # approving a held export counts its night
            reason = counted_reason(reason)
        instance_id = item.instance_id
        if not instance_id and item.action in (Action.REGISTER, Action.UNREGISTER):
            found = index.find(item.instance)
            instance_id = found.instance_id if found is not None else ""
            if not instance_id and item.instance not in creates:
                raise StalePlanError(
                    f"hold {hold['hold_id']} registers people in class {item.instance!r}, "
                    "which does not exist (its creation failed in the holding run); nothing "
                    "was sent",
                    hint="Run the job again: its next hold, if any, includes the class.",
                )
        items.append(item._replace(guard="", reason=reason, instance_id=instance_id))
    return Plan(
        command=APPROVE_COMMAND,  # the approving run's own name (its title, its envelope)
        items=tuple(items),
        profile=str(hold["profile"]),
        base_url=str(hold["base_url"]),
        planned_in=str(hold["run_id"]),
    )


def source_fingerprint(raw: tuple[Mapping[str, Any], Sequence[int]]) -> SourceFingerprint:
    data, sample = raw
    return SourceFingerprint.from_json(data, sample)


def history_from(
    references: Mapping[str, tuple[Mapping[str, Any], Sequence[int]]],
    absences: Iterable[Mapping[str, Any]],
    resumed: Iterable[str] = (),
) -> GuardHistory:
    """The guards' history from the ledger's rows (``state.ledger_guards``)."""
    from kprov.state.ledger_queries import iso

    counts = {}
    for row in absences:
        record = Absence(
            str(row["account_id"]), str(row["instance_id"]), str(row["person"]),
            str(row["instance"]), str(row["role"]), str(row["source"]), int(row["count"]),
            bool(row["explicit"]), str(row["registration_id"]), str(row["file"]),
            int(row["line"]), str(row["reason"]), str(row["first_run"]),
            iso(row.get("first_started")) or "",
        )  # fmt: skip
        counts[record.key] = record
    references_now = {k: source_fingerprint(v) for k, v in references.items()}
    return GuardHistory(references_now, counts, frozenset(resumed))
