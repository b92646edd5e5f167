"""The guards' edges in the one flow (docs/holds.md): what the ledger says about earlier
runs, read under the state lock before planning; what a run leaves for the next one (its
hold, its sources' fingerprints, its absence counts, the delta cursors that move on),
written with its end; and `kprov holds approve`, a run of its own through the same flow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import typer

from kprov.cli.output import warn
from kprov.errors import KprovError, StalePlanError

if TYPE_CHECKING:
    from kprov.cli.run_options import RunOptions
    from kprov.cli.run_session import RunSession
    from kprov.config import Settings
    from kprov.provision.guards import GuardHistory
    from kprov.provision.plan import Plan
    from kprov.provision.request import Request
    from kprov.provision.result import RunResult
    from kprov.run_settings import RunSettings
    from kprov.state.ledger_guards import RunGuards
    from kprov.state.local import LocalState

# Commands whose later run re-judges an earlier one's input (the same manifest or roster) and
# so supersedes its open hold; `unregister` names people, each run its own decision.
JOB_COMMANDS = ("sync", "register", "accounts import")


def with_guard_settings(request: Request, run: RunSettings) -> Request:
    """The guards' settings: the command line, then the manifest (``Request.asked``), then
    the profile (and its KPROV_* variables), then the defaults."""
    from kprov.provision.guards import GuardSettings
    from kprov.provision.guards_sources import Thresholds

    asked = request.asked
    settings = GuardSettings(
        max_creations=asked.max_creations or run.max_creations,
        grace=asked.grace or run.removal_grace,
        thresholds=Thresholds(run.source_min_seen, run.source_max_shrink),
    )
    return replace(request, guards=settings)


def read_history(
    settings: Settings, request: Request, *, plan_only: bool, job: str = ""
) -> GuardHistory:
    """The last applied fingerprint of each source the request read, and the absence
    counts. A ledger that cannot be read stops a run before anything is sent (the guards
    must not be bypassed by a full disk); a plan only warns, and judges without history."""
    from kprov.provision.guards import GuardHistory
    from kprov.provision.guards_sources import stable_key
    from kprov.provision.holds import history_from
    from kprov.state.ledger import Ledger
    from kprov.state.ledger_guards import absence_rows, reference_rows, unfinished_creations

    wanted = [stable_key(s) for s in request.reading.sources]
    try:
        ledger = Ledger.open(settings.state_dir)
        try:
            return history_from(
                reference_rows(ledger, wanted),
                absence_rows(ledger) if request.command == "sync" else (),
                unfinished_creations(ledger, job) if request.create_accounts else (),
            )
        finally:
            if ledger is not None:
                ledger.close()
    except KprovError as error:
        if not plan_only:
            raise
        warn(f"the run ledger could not be read ({error.message}): this plan ignores it")
        return GuardHistory()


def end_guards(
    run: RunSession,
    plan: Plan,
    result: RunResult,
    state: LocalState,
    *,
    cursors: Callable[[], Mapping[str, str]] | None = None,
    job: bool = True,
) -> RunGuards:
    """What the run's end writes with it. Delta cursors move only when nothing failed and
    nothing stopped the run: what a guard withheld is in the hold saved with them."""
    from kprov.provision.holds import held_facts, run_guards, withheld_items
    from kprov.provision.saved_plan import state_fingerprint

    assert run.settings is not None
    withheld = withheld_items(result)
    facts = None
    if withheld:
        facts = (state_fingerprint(state), held_facts(withheld, state.mapping, state.registry))
    clean = result.stopped_by is None and not result.failures()
    moved = dict(cursors()) if cursors is not None and clean else {}
    profile = run.settings.profile
    return run_guards(
        plan, result, run_id=run.run_id,
        job=run.job if job and plan.command in JOB_COMMANDS and plan.sources else "",
        profile=profile.name, base_url=profile.base_url, facts=facts, cursors=moved,
        now=time.time(),
    )  # fmt: skip


# ------------------------------------------------------------------ approving


def approve(ctx: typer.Context, ref: str, options: RunOptions) -> None:
    """`kprov holds approve`: exactly the held items, through the same executor, as a run of
    its own (its parent: the holding run), or nothing at all (exit 2 or 8)."""
    from kprov.cli.common import owner_of
    from kprov.cli.flow import _finish_run, _local_state, _progress_wanted, execute
    from kprov.cli.output import confirm, globals_of, make_view
    from kprov.cli.run_report import write_run_report
    from kprov.cli.run_session import RunSession
    from kprov.provision.recording import plan_rows
    from kprov.state.ledger_guards import APPROVED, decide

    g = globals_of(ctx)
    view = make_view(g)
    options = replace(options, progress=_progress_wanted(view))
    run = RunSession("holds approve", options, plan_only=False)
    with run.failures(lambda: g.settings(options.mapping)):
        settings = run.settings = g.settings(options.mapping)
        _same_target(settings, ref)  # before the state, which another API's run would refuse
        with _local_state(settings, options, owner_of(settings)) as state, run.recorded():
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
    _finish_run(result, view, code, run)


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
