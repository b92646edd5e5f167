"""`kprov accounts`: import rosters, create, look up and disable accounts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kprov.cli.common import (
    CONCURRENCY_OPTION,
    DELIMITER_OPTION,
    DETAILED_EXITCODE_OPTION,
    ENCODING_OPTION,
    FORMAT_OPTION,
    HASH_IDS_OPTION,
    ID_COLUMN_OPTION,
    LOCK_TIMEOUT_OPTION,
    MAPPING_OPTION,
    MAX_CREATIONS_OPTION,
    OUT_OPTION,
    PLAN_OPTION,
    REBUILD_MAPPING_OPTION,
    REPORT_OPTION,
    ROLE_COLUMN_OPTION,
    TA_OPTION,
    TEST_ACCOUNTS_OPTION,
    YES_OPTION,
    RosterArgs,
    command_line,
    command_line_people,
    confirm_or_refuse,
    ids_made,
    locked_mapping,
    read_roster,
)
from kprov.cli.output import Globals, command_group, emit_data, globals_of, guarded, say
from kprov.errors import InputError
from kprov.outside_text import printable

if TYPE_CHECKING:
    from kprov.provision.planner import Request

app = command_group("Create and look up accounts. Example: kprov accounts import roster.csv")


@app.command("import")
@guarded
def import_accounts(
    ctx: typer.Context,
    rosters: list[Path] = typer.Argument(
        ...,
        help="CSV or YAML rosters, or bundles (directory or .zip): OneRoster, SDS, Clever, "
        "Apple School Manager, Canvas.",
        show_default=False,
    ),
    id_column: str = ID_COLUMN_OPTION,
    role_column: str | None = ROLE_COLUMN_OPTION,
    ta_as_instructor: bool = TA_OPTION,
    hash_ids: bool = HASH_IDS_OPTION,
    delimiter: str | None = DELIMITER_OPTION,
    encoding: str | None = ENCODING_OPTION,
    roster_format: str = FORMAT_OPTION,
    mapping: str | None = MAPPING_OPTION,
    rebuild_mapping: bool = REBUILD_MAPPING_OPTION,
    max_creations: str | None = MAX_CREATIONS_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    plan_only: bool = PLAN_OPTION,
    out: Path | None = OUT_OPTION,
    detailed_exitcode: bool = DETAILED_EXITCODE_OPTION,
    test_accounts: bool = TEST_ACCOUNTS_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    report: Path | None = REPORT_OPTION,
) -> None:
    """Create the accounts a roster needs (POST /batch, 50 a call).

    Every roster id not yet in the mapping gets an account; the mapping records it.

    Ids already mapped are skipped, so a rerun sends nothing new. Accounts that exist on the
    API but not in the mapping are recovered and recorded.

    \b
    Examples:
      kprov accounts import sample_rosters/students.csv --report import.csv
      kprov accounts import roster.csv --plan --out import-plan.json
    """
    from kprov.cli.flow import RunOptions, provision
    from kprov.provision.commands import accounts_request

    def request(g: Globals) -> Request:
        args = RosterArgs(
            rosters, id_column, hash_ids, delimiter, encoding, roster_format,
            role_column=role_column, ta_as_instructor=ta_as_instructor,
        )  # fmt: skip
        roster = read_roster(lambda: g.settings(mapping), args)
        request = accounts_request(
            roster, sources=[str(p) for p in rosters], max_creations=max_creations
        )
        return replace(request, ids=ids_made(lambda: g.settings(mapping), hash_ids))

    options = RunOptions(
        concurrency=concurrency, plan_only=plan_only, out=out,
        detailed_exitcode=detailed_exitcode, report=report, lock_timeout=lock_timeout,
        test_accounts=test_accounts, mapping=mapping, rebuild_mapping=rebuild_mapping,
    )  # fmt: skip
    provision(ctx, request, options)


@app.command("create")
@guarded
def create(
    ctx: typer.Context,
    external_id: str = typer.Argument(
        ..., help="The anonymized external user id (or SIS id with --hash-ids)."
    ),
    hash_ids: bool = HASH_IDS_OPTION,
    mapping: str | None = MAPPING_OPTION,
    test_accounts: bool = TEST_ACCOUNTS_OPTION,
) -> None:
    """Create one account and record it in the mapping.

    \b
    Examples:
      kprov accounts create stu-000123
    """
    from kprov.cli.flow import RunOptions, provision
    from kprov.provision.commands import accounts_request
    from kprov.rosters import Roster
    from kprov.rosters.model import LEARNER

    def request(g: Globals) -> Request:
        named = [(external_id, LEARNER)]
        people = command_line_people(lambda: g.settings(mapping), named, hash_ids=hash_ids)
        ids = ids_made(lambda: g.settings(mapping), hash_ids)
        return replace(accounts_request(Roster(people=people)), command="accounts create", ids=ids)

    provision(ctx, request, RunOptions(concurrency=1, test_accounts=test_accounts, mapping=mapping))


def _resolve_account_id(settings: Any, account_id: str | None, external: str | None) -> str:
    if bool(account_id) == bool(external):
        raise InputError("give either ACCOUNT_ID or --external ID (one of them)")
    if account_id:
        return account_id
    from kprov.state.mapping import MappingJournal

    index = MappingJournal(settings.mapping_path).load()
    found = index.account_of.get(external or "")
    if found is None:
        raise InputError(
            f"external id {external!r} is not in the mapping ({settings.mapping_path})",
            hint="Import it first, or give the account id itself.",
        )
    return found


@app.command("get")
@guarded
def get(
    ctx: typer.Context,
    account_id: str | None = typer.Argument(None, help="Account id (UUID).", show_default=False),
    external: str | None = typer.Option(
        None, "--external", help="Look up by external id through the mapping.", show_default=False
    ),
    mapping: str | None = MAPPING_OPTION,
) -> None:
    """Show an account (GET /accounts/{id}).

    \b
    Examples:
      kprov accounts get --external stu-000123
    """
    from kprov.cli.session import build_client

    settings = globals_of(ctx).settings(mapping)
    target = _resolve_account_id(settings, account_id, external)
    with build_client(settings, pool_size=1, interactive=True) as client:
        account = client.get_account(target)
    _show_account(ctx, account)


def _show_account(ctx: typer.Context, account: Any) -> None:
    if globals_of(ctx).json:
        emit_data(ctx, {"id": account.id, "external_user_id": account.external_user_id})
    else:
        say(f"account {account.id}  external id {printable(str(account.external_user_id))}")


@app.command("current")
@guarded
def current(ctx: typer.Context) -> None:
    """Show whose the partner-admin token is (GET /accounts/current).

    \b
    Examples:
      kprov accounts current
    """
    from kprov.cli.session import build_client

    settings = globals_of(ctx).settings()
    with build_client(settings, pool_size=1, interactive=True) as client:
        _show_account(ctx, client.current_account())


@app.command("disable")
@guarded
def disable(
    ctx: typer.Context,
    account_id: str | None = typer.Argument(None, help="Account id (UUID).", show_default=False),
    external: str | None = typer.Option(
        None, "--external", help="Disable by external id through the mapping.", show_default=False
    ),
    mapping: str | None = MAPPING_OPTION,
    yes: bool = YES_OPTION,
) -> None:
    """Disable an account (DELETE /accounts/{id}).

    The mapping keeps its row, marked disabled.

    The external id can never be used for a new account afterwards.

    \b
    Examples:
      kprov accounts disable --external stu-000123 --yes
    """
    from kprov.cli.run_session import admin_run
    from kprov.cli.session import build_client
    from kprov.provision.admin import disable_account
    from kprov.provision.run_record import admin_row

    settings = globals_of(ctx).settings(mapping)
    target = _resolve_account_id(settings, account_id, external)
    confirm_or_refuse(f"Disable account {target}? Its external id can never be reused.", yes=yes)

    with locked_mapping(settings, command=command_line()) as (journal, index):
        known = next((e for e, a in index.account_of.items() if a == target), "")
        row = admin_row(0, "disable_account", person=known, sis_id=index.sis_of.get(known, ""),
                        account_id=target, reason="kprov accounts disable")  # fmt: skip
        with (
            admin_run("accounts disable", settings, [row]) as run,
            build_client(settings, pool_size=1) as client,
        ):
            external_id = disable_account(client, journal, index, target)
            run.done(0, "disabled")
    typer.echo(
        f"disabled account {target}"
        + (f" (external id {external_id}; mapping row kept)" if external_id else "")
    )
