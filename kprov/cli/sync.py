"""`kprov sync` and `kprov apply`: a semester manifest from cron, or a reviewed saved plan."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kprov.cli.common import RUN_PANEL, id_key
from kprov.cli.output import Globals, guarded
from kprov.cli.run_options import RunOptions, run_options
from kprov.run_settings import DEFAULT_MAX_REMOVALS, DEFAULT_REMOVAL_GRACE

if TYPE_CHECKING:
    from kprov.provision.request import Request


@guarded
@run_options(planning=True, creating=True, asking=True)
def sync(
    ctx: typer.Context,
    manifest_path: Path = typer.Argument(
        ..., metavar="MANIFEST", help="The semester manifest (YAML)."
    ),
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
        metavar="N|P%",
        help="Most removals "
        "allowed, N or P% of the managed registrations "
        f"[default: {DEFAULT_MAX_REMOVALS}]; past it nothing is removed "
        "(exit 6).",
        rich_help_panel=RUN_PANEL,
        show_default=False,
    ),
    grace: int | None = typer.Option(
        None,
        "--grace",
        min=1,
        metavar="N",
        help="Remove a registration only once its person has been missing from N "
        f"consecutive runs that read its class [default: {DEFAULT_REMOVAL_GRACE}, or "
        "removal_grace:]; until then it "
        "is 'waiting 1 of N' (a one-night gap in an export costs no analytics).",
        rich_help_panel=RUN_PANEL,
        show_default=False,
    ),
    *,
    options: RunOptions,
) -> None:
    """Make the platform match a semester manifest (for cron).

    Accounts, instances and registrations, each as soon as what it needs exists; with
    --prune, removals too (asked on a terminal; --yes skips the question). Nothing to do
    means nothing sent and, under cron, nothing printed. What a guard holds (a re-keyed
    export, creations or removals past their limit) waits for `kprov holds approve`
    (exit 6); the rest is applied.

    \b
    Examples:
      kprov sync semester.yaml --plan
      kprov sync semester.yaml --prune --plan --out tonight.json && kprov apply tonight.json
      kprov sync /srv/sis/semester.yaml --prune --grace 2 --log-file /var/log/kprov.log
      kprov sync semester.yaml --metrics-file /var/lib/node_exporter/kprov.prom
    """
    from kprov.cli.flow import provision
    from kprov.cli.pulling import SourcePuller

    puller = SourcePuller()  # `oneroster_api:` sources; their delta cursors are saved on success

    def request(g: Globals) -> Request:
        from kprov.provision.request import sync_request
        from kprov.rosters.manifest import load_manifest, read_manifest
        from kprov.state.owner import ids_made_with

        loaded = load_manifest(manifest_path)
        structure, problems, _rosters = loaded
        wants_key = options.hash_ids or structure.hash_ids
        if wants_key and problems:  # a broken manifest is bad input, before any key lookup
            from kprov.rosters import problems_error

            raise problems_error(problems, what="manifest")
        hash_key = None
        if wants_key:
            hash_key = id_key(lambda: g.settings(options.mapping))
        puller.state_dir = lambda: g.settings(options.mapping).state_dir
        manifest = read_manifest(manifest_path, hash_key=hash_key, puller=puller, loaded=loaded)
        if g.verbose:
            from kprov.outside_text import printable

            for line in puller.summary():  # names a manifest's url: escaped as all outside text
                typer.echo(f"kprov: {printable(line)}", err=True)
        request = sync_request(
            manifest, prune=prune, max_removals=max_removals,
            max_creations=options.max_creations, grace=grace,
        )  # fmt: skip
        return replace(request, ids=ids_made_with(hash_key))

    options = replace(options, ask_before_removing=True, cron_quiet=True, cursors=puller.cursors)
    provision(ctx, request, options)


@guarded
@run_options()
def apply(
    ctx: typer.Context,
    plan_file: Path = typer.Argument(
        ..., metavar="PLAN", help="A plan saved with --plan --out PLAN.json."
    ),
    *,
    options: RunOptions,
) -> None:
    """Apply a saved plan exactly: its items, nothing else.

    Refused with nothing sent (exit 8) when the local state changed since the plan was
    made (another run happened), or the plan was made for another profile.

    \b
    Examples:
      kprov sync semester.yaml --prune --plan --out tonight.json
      kprov apply tonight.json --report tonight.html
    """
    from kprov.cli.flow import apply_saved

    apply_saved(ctx, plan_file, options)
