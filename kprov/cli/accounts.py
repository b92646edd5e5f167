"""`kprov accounts`: import rosters, create, look up and disable accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from kprov.cli.common import (
    CONCURRENCY_OPTION,
    DELIMITER_OPTION,
    DRY_RUN_OPTION,
    ENCODING_OPTION,
    FORMAT_OPTION,
    HASH_IDS_OPTION,
    ID_COLUMN_OPTION,
    JSON_OPTION,
    LOCK_TIMEOUT_OPTION,
    MAPPING_OPTION,
    REPORT_OPTION,
    TEST_ACCOUNTS_OPTION,
    YES_OPTION,
    RosterArgs,
    command_line,
    confirm_or_refuse,
    locked_mapping,
    read_roster,
)
from kprov.cli.output import (
    Progress,
    command_group,
    emit_json,
    exit_with,
    finish_run,
    globals_of,
    guarded,
    render_counts,
)
from kprov.errors import ExitCode, InputError

app = command_group("Create and look up accounts. Example: kprov accounts import roster.csv")


@app.command("import")
@guarded
def import_accounts(
    ctx: typer.Context,
    rosters: list[Path] = typer.Argument(
        ...,
        help="CSV or YAML rosters, or OneRoster bundles (directory or .zip).",
        show_default=False,
    ),
    id_column: str = ID_COLUMN_OPTION,
    hash_ids: bool = HASH_IDS_OPTION,
    delimiter: str | None = DELIMITER_OPTION,
    encoding: str | None = ENCODING_OPTION,
    roster_format: str = FORMAT_OPTION,
    mapping: str | None = MAPPING_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    dry_run: bool = DRY_RUN_OPTION,
    test_accounts: bool = TEST_ACCOUNTS_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    report: Path | None = REPORT_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Create the accounts a roster needs (POST /batch, 50 a call).

    Every roster id not yet in the mapping gets an account; the mapping records it.

    Ids already mapped are skipped, so a rerun sends nothing new. Accounts that exist on the
    API but not in the mapping are recovered and recorded.

    \b
    Examples:
      kprov accounts import sample_rosters/students.csv --report import.csv
    """
    from kprov.provision.accounts import AccountImporter, ImportOptions
    from kprov.provision.report import check_report_path, write_report
    from kprov.provision.session import build_client, new_run_id

    g = globals_of(ctx)
    if report:
        check_report_path(report)
    roster = read_roster(
        lambda: g.settings(mapping),
        RosterArgs(rosters, id_column, hash_ids, delimiter, encoding, roster_format),
    )
    settings = g.settings(mapping)

    run_id = new_run_id()
    with locked_mapping(settings, lock_timeout=lock_timeout, command=command_line()) as (
        journal,
        index,
    ):
        pending = sum(
            1 for p in {p.external_id for p in roster.people} if p not in index.account_of
        )
        client = None
        if pending and not dry_run:
            client = build_client(
                settings, pool_size=concurrency, run_id=run_id, test_accounts=test_accounts
            )
        try:
            with Progress(
                "accounts", pending, enabled=not (g.quiet or json_output or dry_run)
            ) as progress:
                importer = AccountImporter(client, journal, index, progress=progress.advance)
                result = importer.run(
                    roster.people, ImportOptions(concurrency=concurrency, dry_run=dry_run)
                )
        finally:
            if client is not None:
                client.close()
    counts = result.counts()
    rate_limited = client.pacer.rate_limited_count if client else 0
    if report:
        write_report(report, (_report_row(line) for line in result.lines(roster.people)))
    summary: dict[str, Any] = {
        "ok": result.failed == 0 and result.stopped_by is None,
        "run_id": run_id,
        "dry_run": dry_run,
        "roster_lines": len(roster.people),
        "accounts": len(result.by_id),
        "created": counts["created"],
        "already_mapped": counts["already_mapped"],
        "recovered": counts["recovered"],
        "failed": counts["failed"],
        "not_attempted": counts["not_attempted"],
        "would_create": counts["would_create"],
        "skipped_rows": roster.skipped,
        "batches": result.batches_sent,
        "rate_limited": rate_limited,
        "seconds": round(result.elapsed, 3),
        "mapping": str(settings.mapping_path),
    }
    failures = [
        {"external_user_id": ext, "outcome": r.outcome.value, "reason": r.reason}
        for ext, r in result.by_id.items()
        if r.outcome.value in ("failed", "not_attempted")
    ]
    if json_output:
        emit_json({**summary, "failures": failures[:1000]})
    elif not g.quiet or failures:
        rows = [(k, summary[k]) for k in ("created", "already_mapped", "recovered", "failed")]
        if dry_run:
            rows = [
                ("would_create", summary["would_create"]),
                ("already_mapped", summary["already_mapped"]),
            ]
        if summary["not_attempted"]:
            rows.append(("not_attempted", summary["not_attempted"]))
        if not g.quiet:
            render_counts(f"accounts ({run_id})", rows, no_color=g.no_color)
        for failure in failures[:50]:
            typer.echo(f"failed: {failure['external_user_id']}: {failure['reason']}", err=True)
        if len(failures) > 50:
            typer.echo(f"... and {len(failures) - 50} more (see --report)", err=True)
    finish_run(result.stopped_by, failed=bool(result.failed))


def _report_row(line: Any) -> dict[str, Any]:
    from kprov.provision.report import report_row

    return report_row(
        line.person,
        instance=line.person.instance_key or "",
        outcome=line.outcome.value,
        account_id=line.account_id or "",
        reason=line.reason or "",
    )


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
    json_output: bool = JSON_OPTION,
) -> None:
    """Create one account (POST /accounts) and record it in the mapping.

    \b
    Examples:
      kprov accounts create stu-000123
    """
    from kprov.provision.accounts import create_single
    from kprov.provision.session import build_client
    from kprov.rosters.validate import hash_external_id, id_problems

    g = globals_of(ctx)
    settings = g.settings(mapping)
    problems = id_problems(external_id, check_pii=not hash_ids)
    if problems:
        raise InputError(
            f"cannot use {external_id!r} as an id; nothing was sent:", problems=problems
        )
    sis_id = ""
    if hash_ids:
        from kprov.credentials import resolve_id_key

        sis_id = external_id
        external_id = hash_external_id(sis_id, resolve_id_key(settings).reveal().encode())
    with (
        locked_mapping(settings, command=command_line()) as (journal, index),
        build_client(settings, pool_size=1, test_accounts=test_accounts) as client,
    ):
        result = create_single(client, journal, index, external_id, sis_id)
    if json_output:
        emit_json(
            {
                "ok": result.account_id is not None,
                "external_user_id": external_id,
                "outcome": result.outcome.value,
                "account_id": result.account_id,
                "reason": result.reason,
            }
        )
    else:
        typer.echo(
            f"{result.outcome.value}: {external_id} -> {result.account_id or '-'}"
            + (f" ({result.reason})" if result.reason else "")
        )
    exit_with(ExitCode.OK if result.account_id else ExitCode.ITEM_FAILURES)


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
    json_output: bool = JSON_OPTION,
) -> None:
    """Show an account (GET /accounts/{id}).

    \b
    Examples:
      kprov accounts get --external stu-000123
    """
    from kprov.provision.session import build_client

    settings = globals_of(ctx).settings(mapping)
    target = _resolve_account_id(settings, account_id, external)
    with build_client(settings, pool_size=1) as client:
        account = client.get_account(target)
    _show_account(account, json_output)


def _show_account(account: Any, json_output: bool) -> None:
    if json_output:
        emit_json({"id": account.id, "external_user_id": account.external_user_id})
    else:
        typer.echo(f"account {account.id}  external id {account.external_user_id}")


@app.command("current")
@guarded
def current(ctx: typer.Context, json_output: bool = JSON_OPTION) -> None:
    """Show whose the partner-admin token is (GET /accounts/current).

    \b
    Examples:
      kprov accounts current
    """
    from kprov.provision.session import build_client

    settings = globals_of(ctx).settings()
    with build_client(settings, pool_size=1) as client:
        _show_account(client.current_account(), json_output)


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
    from kprov.provision.accounts import disable_account
    from kprov.provision.session import build_client

    settings = globals_of(ctx).settings(mapping)
    target = _resolve_account_id(settings, account_id, external)
    confirm_or_refuse(f"Disable account {target}? Its external id can never be reused.", yes=yes)

    with (
        locked_mapping(settings, command=command_line()) as (journal, index),
        build_client(settings, pool_size=1) as client,
    ):
        external_id = disable_account(client, journal, index, target)
    typer.echo(
        f"disabled account {target}"
        + (f" (external id {external_id}; mapping row kept)" if external_id else "")
    )
