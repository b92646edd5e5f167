"""`kprov holds`: what the guards withheld, waiting for a person (docs/holds.md)."""

from __future__ import annotations

import time

import typer

from kprov.cli.common import YES_OPTION
from kprov.cli.output import command_group, confirm, globals_of, guarded
from kprov.cli.render_data import Message, Shown, said
from kprov.cli.run_options import LOCK_TIMEOUT_OPTION, RunOptions, run_options

app = command_group("Review, approve or dismiss what a guard held back. Example: kprov holds list")

HOLD_ARGUMENT = typer.Argument(
    ..., metavar="HOLD", help="A hold's id (hold-3f2a9c1b7d04), or the start of it."
)


@app.command("list")
@guarded
def list_holds(
    ctx: typer.Context,
    every: bool = typer.Option(
        False, "--all", help="Decided holds too (approved, dismissed, superseded)."
    ),
    limit: int = typer.Option(
        50, "--limit", "-n", min=1, metavar="N", help="Holds listed, newest first."
    ),
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
) -> Shown:
    """List the holds waiting for a decision, newest first.

    A run whose guards withheld items (a re-keyed export, creations or removals past their
    limit) saved them as a hold and exited 6; the rest of the run was applied. A hold never
    expires: it waits until it is approved, dismissed, or superseded by a later run of the
    same job.

    \b
    Examples:
      kprov holds list
      kprov holds list --all --json
    """
    from kprov.cli.history import opened_ledger
    from kprov.cli.render_holds import holds_table
    from kprov.state import ledger_guards

    with opened_ledger(globals_of(ctx).settings().state_dir, lock_timeout) as ledger:
        found = ledger_guards.list_holds(ledger, every=every, limit=limit) if ledger else []
    return holds_table(found, every=every)


@app.command("show")
@guarded
def show(
    ctx: typer.Context, hold: str = HOLD_ARGUMENT, lock_timeout: float = LOCK_TIMEOUT_OPTION
) -> Shown:
    """Show one hold: who ran what, when, which guard held what and why, its items, and the
    export it was judged against side by side with the one it held.

    \b
    Examples:
      kprov holds show hold-3f2a9c1b7d04
      kprov holds show 3f2a --json
    """
    from kprov.cli.history import opened_ledger
    from kprov.cli.render_holds import HoldDetail, hold_detail

    with opened_ledger(globals_of(ctx).settings().state_dir, lock_timeout) as ledger:
        return HoldDetail(hold_detail(ledger, hold))


@app.command("approve")
@guarded
@run_options(asking=True)
def approve(ctx: typer.Context, hold: str = HOLD_ARGUMENT, *, options: RunOptions) -> None:
    """Apply exactly the items a hold withheld, once (asks on a terminal; --yes otherwise).

    Refused with nothing sent: exit 2 for a hold that does not exist or was already
    approved or dismissed; exit 8 for a hold made for another profile or API, one a later
    run of the same job superseded (approve that run's hold), or one whose items the local
    state no longer describes as it did when they were held.

    \b
    Examples:
      kprov holds approve hold-3f2a9c1b7d04
      kprov holds approve 3f2a --yes --report approved.html
    """
    from kprov.cli.approving import approve as approve_hold

    approve_hold(ctx, hold, options)


@app.command("dismiss")
@guarded
def dismiss(
    ctx: typer.Context,
    hold: str = HOLD_ARGUMENT,
    yes: bool = YES_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
) -> Message:
    """Drop a hold: nothing it withheld is sent (a later run judges its export again).

    Asks first on a terminal; --yes otherwise (as `holds approve`).

    \b
    Examples:
      kprov holds dismiss hold-3f2a9c1b7d04
      kprov holds dismiss hold-3f2a9c1b7d04 --yes
    """
    from kprov.errors import InputError
    from kprov.provision.run_record import operator
    from kprov.state.ledger import Ledger
    from kprov.state.ledger_guards import LIST_HINT, OPEN, find_hold
    from kprov.state.ledger_guards import dismiss as dismiss_hold
    from kprov.state.lock import StateLock

    settings = globals_of(ctx).settings()
    if not settings.state_dir.is_dir():
        raise InputError(f"no hold {hold!r}: nothing is recorded yet", hint=LIST_HINT)
    with StateLock(settings.state_dir, timeout=lock_timeout, command="kprov holds dismiss"):
        ledger = Ledger.open(settings.state_dir, create=False)
        try:
            found = find_hold(ledger, hold)
            if found["state"] != OPEN:
                raise InputError(
                    f"hold {found['hold_id']} was {found['state']} at {found['decided_at']}; "
                    "a hold is decided once",
                    hint=LIST_HINT,
                )
            assert ledger is not None
            confirm(
                f"Dismiss hold {found['hold_id']} ({found['items']:,} item(s) withheld)? Nothing "
                "it withheld is sent; the next run of its job judges its export again.",
                globals_of(ctx).env,
                yes=yes,
            )
            who = operator()
            dismiss_hold(ledger, found["hold_id"], who=f"{who.os_user}@{who.host}", now=time.time())
        finally:
            if ledger is not None:
                ledger.close()
    return said(
        f"hold {found['hold_id']} dismissed: nothing it withheld was sent",
        hold_id=found["hold_id"], state="dismissed",
    )  # fmt: skip
