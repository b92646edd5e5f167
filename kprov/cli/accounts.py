"""`kprov accounts`: import rosters, create, look up and disable accounts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from kprov.cli.common import (
    DELIMITER_OPTION,
    ENCODING_OPTION,
    FORMAT_OPTION,
    HASH_IDS_OPTION,
    ID_COLUMN_OPTION,
    MAPPING_OPTION,
    ROLE_COLUMN_OPTION,
    TA_OPTION,
    YES_OPTION,
    RosterArgs,
    command_line,
    command_line_people,
    ids_made,
    locked_mapping,
    read_roster,
)
from kprov.cli.output import Globals, command_group, confirm, globals_of, guarded
from kprov.cli.render_data import Message, said
from kprov.cli.run_options import TEST_ACCOUNTS_OPTION, RunOptions, run_options
from kprov.errors import InputError

if TYPE_CHECKING:
    from kprov.config import Settings
    from kprov.provision.request import Request

app = command_group("Create and look up accounts. Example: kprov accounts import roster.csv")


@app.command("import")
@guarded
@run_options(planning=True, creating=True)
def import_accounts(
    ctx: typer.Context,
    rosters: list[Path] = typer.Argument(
        ...,
        metavar="ROSTER",
        help="CSV or YAML rosters, or bundles (directory or .zip): OneRoster, SDS, Clever, "
        "Apple School Manager, Canvas.",
        show_default=False,
    ),
    id_column: str = ID_COLUMN_OPTION,
    role_column: str | None = ROLE_COLUMN_OPTION,
    ta_as_instructor: bool = TA_OPTION,
    delimiter: str | None = DELIMITER_OPTION,
    encoding: str | None = ENCODING_OPTION,
    roster_format: str = FORMAT_OPTION,
    *,
    options: RunOptions,
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
    from kprov.cli.flow import provision
    from kprov.provision.request import accounts_request

    def request(g: Globals) -> Request:
        def settings() -> Settings:
            return g.settings(options.mapping)

        args = RosterArgs(
            rosters, id_column, options.hash_ids, delimiter, encoding, roster_format,
            role_column=role_column, ta_as_instructor=ta_as_instructor,
        )  # fmt: skip
        request = accounts_request(
            read_roster(settings, args), sources=[str(p) for p in rosters],
            max_creations=options.max_creations,
        )  # fmt: skip
        return replace(request, ids=ids_made(settings, options.hash_ids))

    provision(ctx, request, options)


@app.command("create")
@guarded
def create(
    ctx: typer.Context,
    external_id: str = typer.Argument(
        ..., metavar="ID", help="The anonymized external user id (or SIS id with --hash-ids)."
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
    from kprov.cli.flow import provision
    from kprov.provision.request import accounts_request
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
    account_id: str | None = typer.Argument(
        None, metavar="ACCOUNT_ID", help="Account id (UUID).", show_default=False
    ),
    external: str | None = typer.Option(
        None,
        "--external",
        metavar="ID",
        help="Look up by external id through the mapping.",
        show_default=False,
    ),
    mapping: str | None = MAPPING_OPTION,
) -> Message:
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
    return _account(account)


def _account(account: Any) -> Message:
    line = f"account {account.id}  external id {account.external_user_id}"
    return Message([], {"id": account.id, "external_user_id": account.external_user_id},
                   always=[line])  # fmt: skip


@app.command("current")
@guarded
def current(ctx: typer.Context) -> Message:
    """Show whose the partner-admin token is (GET /accounts/current).

    \b
    Examples:
      kprov accounts current
    """
    from kprov.cli.session import build_client

    settings = globals_of(ctx).settings()
    with build_client(settings, pool_size=1, interactive=True) as client:
        return _account(client.current_account())


@app.command("disable")
@guarded
def disable(
    ctx: typer.Context,
    account_id: str | None = typer.Argument(
        None, metavar="ACCOUNT_ID", help="Account id (UUID).", show_default=False
    ),
    external: str | None = typer.Option(
        None,
        "--external",
        metavar="ID",
        help="Disable by external id through the mapping.",
        show_default=False,
    ),
    mapping: str | None = MAPPING_OPTION,
    yes: bool = YES_OPTION,
) -> Message:
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

    g = globals_of(ctx)
    settings = g.settings(mapping)
    target = _resolve_account_id(settings, account_id, external)
    confirm(f"Disable account {target}? Its external id can never be reused.", g.env, yes=yes)

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
    kept = f" (external id {external_id}; mapping row kept)" if external_id else ""
    return said(f"disabled account {target}{kept}", account_id=target,
                external_user_id=external_id or None)  # fmt: skip
