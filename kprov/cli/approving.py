"""`kprov holds approve` (docs/holds.md): exactly the items a guard held, through the same
flow and executor as every provisioning command, as a run of its own whose parent is the
holding run; or nothing at all, when the hold was decided, superseded, made for another
profile or API, or the local state no longer describes its items as it did."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import typer

from kprov.errors import KprovError, StalePlanError

if TYPE_CHECKING:
    from kprov.cli.run_options import RunOptions
    from kprov.config import Settings
    from kprov.provision.plan import Plan
    from kprov.state.local import LocalState


def approve(ctx: typer.Context, ref: str, options: RunOptions) -> None:
    """`kprov holds approve`: exactly the held items, through the same executor, as a run of
    its own (its parent: the holding run), or nothing at all (exit 2 or 8)."""
    from kprov.cli.common import owner_of
    from kprov.cli.flow import execute, finish_run, local_state, progress_wanted
    from kprov.cli.guarded import end_guards
    from kprov.cli.output import confirm, globals_of, make_view
    from kprov.cli.run_report import write_run_report
    from kprov.cli.run_session import RunSession
    from kprov.provision.recording import plan_rows
    from kprov.state.ledger_guards import APPROVED, decide

    g = globals_of(ctx)
    view = make_view(g)
    options = replace(options, progress=progress_wanted(view))
    run = RunSession("holds approve", options, plan_only=False)
    with run.failures(lambda: g.settings(options.mapping)):
        settings = run.settings = g.settings(options.mapping)
        _same_target(settings, ref)  # before the state, which another API's run would refuse
        with local_state(settings, options, owner_of(settings)) as state, run.recorded():
            hold, plan = approvable(settings, state, ref)
            confirm(_question(hold, plan), view.env, yes=options.yes)
            rows = plan_rows(plan, state.registry, state.mapping.sis_of)
            who = f"{run.who.os_user}@{run.who.host}"
            mark = decide(hold["hold_id"], APPROVED, who=who, now=time.time(),
                          run_id=run.run_id, run_key=int(hold["run_key"]))  # fmt: skip
            run.sources, run.job = [f"hold {hold['hold_id']}"], str(hold["job"])
            run.begin(settings, (), rows=rows, parent=str(hold["run_id"]), also=mark)
            result = execute(plan, settings, state, options, run, view.env)
            write_run_report(result, options, run, state)
            code = run.end_run(result, end_guards(run, plan, result, state, job=False))
    finish_run(result, view, code, run)


def approvable(settings: Settings, state: LocalState, ref: str) -> tuple[dict[str, Any], Plan]:
    """The hold *ref* names and the plan that applies it, or the refusal: exit 2 for a hold
    that does not exist or was applied or dismissed, exit 8 for one made for another
    profile or API, superseded by a later run, or whose items the local state no longer
    describes as it did."""
    from kprov.errors import InputError
    from kprov.provision.holds import approval_plan, held_facts
    from kprov.provision.run_record import item_from_row
    from kprov.state.ledger import Ledger
    from kprov.state.ledger_guards import LIST_HINT, OPEN, SUPERSEDED, find_hold, held_rows

    ledger = Ledger.open(settings.state_dir)
    assert ledger is not None
    try:
        hold = find_hold(ledger, ref)
        _check_target(settings, hold)
        if hold["state"] == SUPERSEDED:
            raise StalePlanError(
                f"hold {hold['hold_id']} was superseded by run {hold['decided_run']}, a later "
                f"run of `kprov {hold['job']}`, which judged everything again; nothing was "
                "sent",
                hint=f"Approve that run's hold instead, if it made one: {LIST_HINT}",
            )
        if hold["state"] != OPEN:
            by = f" by {hold['decided_by']}" if hold["decided_by"] else ""
            raise InputError(
                f"hold {hold['hold_id']} was {hold['state']}{by} at {hold['decided_at']}; "
                "a hold is decided once, and nothing was sent",
                hint=LIST_HINT,
            )
        rows = held_rows(ledger, hold)
    finally:
        ledger.close()
    if (
        held_facts((item_from_row(r) for r in rows), state.mapping, state.registry)
        != (hold["items_fingerprint"])
    ):
        raise StalePlanError(
            f"the local state changed since hold {hold['hold_id']} was made, for the items it "
            "holds (an account, a class or a registration they touch was made or removed "
            "since); nothing was sent",
            hint="Run the job again: it judges tonight's export afresh, and its hold (if "
            "any) is the one to approve.",
        )
    return hold, approval_plan(hold, rows, state.registry)


def _same_target(settings: Settings, ref: str) -> None:
    """A hold made for another profile or API is refused (exit 8) before anything else: its
    state directory is not this one, or this one would refuse another API."""
    from kprov.errors import InputError
    from kprov.state.ledger import Ledger
    from kprov.state.ledger_guards import find_hold

    ledger = Ledger.open(settings.state_dir, create=False, migrate=False)
    try:
        hold = find_hold(ledger, ref)
    except InputError:
        _elsewhere(settings, ref)
        raise
    finally:
        if ledger is not None:
            ledger.close()
    _check_target(settings, hold)


def _check_target(settings: Settings, hold: Mapping[str, Any]) -> None:
    profile = settings.profile
    if (hold["profile"], hold["base_url"]) != (profile.name, profile.base_url):
        raise StalePlanError(
            f"hold {hold['hold_id']} was made for profile {hold['profile']!r} "
            f"({hold['base_url']}); this is profile {profile.name!r} ({profile.base_url}); "
            "nothing was sent",
            hint="Approve it with the profile (and API) it was made for.",
        )


def _elsewhere(settings: Settings, ref: str) -> None:
    """A hold that is not in this profile's ledger but in another profile's: exit 8."""
    from kprov.config import default_state_root
    from kprov.state.ledger import Ledger
    from kprov.state.ledger_guards import find_hold

    root = default_state_root()
    if settings.state_dir.parent != root or not root.is_dir():
        return
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p != settings.state_dir):
        try:
            other = Ledger.open(folder, create=False, migrate=False)
        except KprovError:
            continue
        if other is None:
            continue
        try:
            hold = find_hold(other, ref)
        except KprovError:
            continue
        finally:
            other.close()
        raise StalePlanError(
            f"hold {hold['hold_id']} belongs to profile {hold['profile']!r} "
            f"({hold['base_url']}), not {settings.profile.name!r}; nothing was sent",
            hint=f"Approve it there: kprov --profile {hold['profile']} holds approve "
            f"{hold['hold_id']}",
        )


# what approving does with each kind of held item, in words
_APPROVED_WORDS = {
    "wait": "removal(s) inside their grace (not sent: approving counts this night)",
    "hold": "removal(s) not sent without --prune (approving counts this night)",
}


def _question(hold: Mapping[str, Any], plan: Plan) -> str:
    from collections import Counter

    counts = Counter(i.action.value for i in plan.items)
    what = ", ".join(f"{n} {_APPROVED_WORDS.get(a, a.replace('_', ' '))}"
                     for a, n in sorted(counts.items()))  # fmt: skip
    why = "\n".join(f"  {t['guard']}: {t['why']}" for t in hold["trips"])
    return (
        f"Hold {hold['hold_id']} (run {hold['run_id']}, {hold['created_at']}) withheld "
        f"{len(plan.items)} item(s): {what}.\n{why}\nAccounts cannot be deleted, and removals "
        "discard the learners' analytics. Apply exactly these items?"
    )
