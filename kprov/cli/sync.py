"""`kprov sync` and `kprov apply`: a semester manifest from cron, or a reviewed saved plan."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kprov.cli.common import (
    CONCURRENCY_OPTION,
    DETAILED_EXITCODE_OPTION,
    HASH_IDS_OPTION,
    LOCK_TIMEOUT_OPTION,
    LOG_FILE_OPTION,
    MAPPING_OPTION,
    OUT_OPTION,
    PLAN_OPTION,
    REBUILD_MAPPING_OPTION,
    REPORT_OPTION,
    RUN_PANEL,
    TEST_ACCOUNTS_OPTION,
    YES_OPTION,
    id_key,
)
from kprov.cli.output import Globals, guarded

if TYPE_CHECKING:
    from kprov.provision.planner import Request


@guarded
def sync(
    ctx: typer.Context,
    manifest_path: Path = typer.Argument(
        ..., metavar="MANIFEST", help="The semester manifest (YAML)."
    ),
    plan_only: bool = PLAN_OPTION,
    prune: bool = typer.Option(
        False,
        "--prune",
        help="Also remove registrations the manifest no longer lists (only in classes whose "
        "whole membership it states), and change roles.",
        rich_help_panel=RUN_PANEL,
    ),
    max_removals: str | None = typer.Option(
        None,
        "--max-removals",
        help="Most removals "
        "allowed, N or P% of the managed registrations "
        "[default: 10%]; past it nothing is removed "
        "(exit 6).",
        rich_help_panel=RUN_PANEL,
        show_default=False,
    ),
    yes: bool = YES_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    test_accounts: bool = TEST_ACCOUNTS_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    hash_ids: bool = HASH_IDS_OPTION,
    mapping: str | None = MAPPING_OPTION,
    rebuild_mapping: bool = REBUILD_MAPPING_OPTION,
    out: Path | None = OUT_OPTION,
    detailed_exitcode: bool = DETAILED_EXITCODE_OPTION,
    report: Path | None = REPORT_OPTION,
    log_file: Path | None = LOG_FILE_OPTION,
) -> None:
    """Make the platform match a semester manifest (for cron).

    Accounts, instances and registrations, each as soon as what it needs exists; with
    --prune, removals too (asked on a terminal; --yes skips the question). Nothing to do
    means nothing sent and, under cron, nothing printed.

    \b
    Examples:
      kprov sync semester.yaml --plan
      kprov sync semester.yaml --prune --plan --out tonight.json && kprov apply tonight.json
      kprov sync /srv/sis/semester.yaml --prune --max-removals 5% --log-file /var/log/kprov.log
    """
    from kprov.cli.flow import RunOptions, provision
    from kprov.cli.pulling import SourcePuller

    puller = SourcePuller()  # `oneroster_api:` sources; their delta cursors are saved on success

    def request(g: Globals) -> Request:
        from kprov.provision.commands import sync_request
        from kprov.provision.manifest import load_manifest, read_manifest
        from kprov.state.owner import ids_made_with

        loaded = load_manifest(manifest_path)
        structure, problems, _rosters = loaded
        wants_key = hash_ids or structure.hash_ids
        if wants_key and problems:  # a broken manifest is bad input, before any key lookup
            from kprov.rosters import problems_error

            raise problems_error(problems, what="manifest")
        hash_key = None
        if wants_key:
            hash_key = id_key(lambda: g.settings(mapping))
        puller.state_dir = lambda: g.settings(mapping).state_dir
        manifest = read_manifest(manifest_path, hash_key=hash_key, puller=puller, loaded=loaded)
        if g.verbose:
            for line in puller.summary():
                typer.echo(f"kprov: {line}", err=True)
        request = sync_request(manifest, prune=prune, max_removals=max_removals)
        return replace(request, ids=ids_made_with(hash_key))

    options = RunOptions(
        concurrency=concurrency, plan_only=plan_only, out=out,
        detailed_exitcode=detailed_exitcode, report=report, log_file=log_file,
        lock_timeout=lock_timeout, test_accounts=test_accounts, yes=yes, mapping=mapping,
        rebuild_mapping=rebuild_mapping,
        ask_before_removing=True, cron_quiet=True, after_success=puller.commit,
    )  # fmt: skip
    provision(ctx, request, options)


@guarded
def apply(
    ctx: typer.Context,
    plan_file: Path = typer.Argument(
        ..., metavar="PLAN", help="A plan saved with --plan --out PLAN.json."
    ),
    concurrency: int = CONCURRENCY_OPTION,
    test_accounts: bool = TEST_ACCOUNTS_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    mapping: str | None = MAPPING_OPTION,
    report: Path | None = REPORT_OPTION,
    log_file: Path | None = LOG_FILE_OPTION,
) -> None:
    """Apply a saved plan exactly: its items, nothing else.

    Refused with nothing sent (exit 8) when the local state changed since the plan was
    made (another run happened), or the plan was made for another profile.

    \b
    Examples:
      kprov sync semester.yaml --prune --plan --out tonight.json
      kprov apply tonight.json --report tonight.html
    """
    from kprov.cli.flow import RunOptions, apply_saved

    options = RunOptions(
        concurrency=concurrency, report=report, log_file=log_file, lock_timeout=lock_timeout,
        test_accounts=test_accounts, mapping=mapping,
    )  # fmt: skip
    apply_saved(ctx, plan_file, options)
