"""The guards' edges in the one flow (docs/holds.md): what the ledger says about earlier
runs, read under the state lock before planning; what a run leaves for the next one (its
hold, its sources' fingerprints, its absence counts, the delta cursors that move on),
written with its end (`kprov holds approve` is `cli/approving.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from kprov.cli.output import warn
from kprov.errors import KprovError

if TYPE_CHECKING:
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
    from kprov.provision.guards_judge import Thresholds

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
    must not be bypassed by a full disk); a plan only shown warns, and judges without
    history. A plan saved with --out is not *plan_only* here: `kprov apply` would send it
    later without judging the sources again, so it is refused like a run."""
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
