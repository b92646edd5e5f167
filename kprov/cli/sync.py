"""`kprov sync`: plan and apply a semester manifest; quiet under cron when all is well."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer

from kprov.cli.common import (
    CONCURRENCY_OPTION,
    HASH_IDS_OPTION,
    JSON_OPTION,
    LOCK_TIMEOUT_OPTION,
    MAPPING_OPTION,
    OUTPUT_PANEL,
    REPORT_OPTION,
    RUN_PANEL,
    TEST_ACCOUNTS_OPTION,
    command_line,
    locked_state,
    registration_report_row,
)
from kprov.cli.output import (
    Progress,
    emit_json,
    error_json,
    globals_of,
    guarded,
    is_terminal,
    make_console,
)
from kprov.errors import ExitCode, KprovError


@guarded
def sync(
    ctx: typer.Context,
    manifest_path: Path = typer.Argument(
        ..., metavar="MANIFEST", help="The semester manifest (YAML)."
    ),
    plan_only: bool = typer.Option(
        False, "--plan", help="Show the plan and stop; send nothing.", rich_help_panel=RUN_PANEL
    ),
    prune: bool = typer.Option(
        False,
        "--prune",
        help="Also remove registrations kprov made that the manifest no longer lists.",
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
    concurrency: int = CONCURRENCY_OPTION,
    test_accounts: bool = TEST_ACCOUNTS_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    hash_ids: bool = HASH_IDS_OPTION,
    mapping: str | None = MAPPING_OPTION,
    report: Path | None = REPORT_OPTION,
    log_file: Path | None = typer.Option(
        None,
        "--log-file",
        help="Append a timestamped record of this run to FILE.",
        rich_help_panel=OUTPUT_PANEL,
        show_default=False,
    ),
    json_output: bool = JSON_OPTION,
) -> None:
    """Make the platform match a semester manifest (for cron).

    Accounts, instances, instructors, learners and (with --prune) removals, in that order.
    Nothing to do means nothing sent and, under cron, nothing printed.

    \b
    Examples:
      kprov sync semester.yaml --plan
      kprov sync semester.yaml --prune --max-removals 5%
      kprov sync /srv/sis/semester.yaml --prune --log-file /var/log/kprov.log

    """
    from kprov.provision.manifest import read_manifest
    from kprov.provision.session import build_client, new_run_id
    from kprov.provision.sync import apply_plan, compute_plan

    g = globals_of(ctx)
    started = time.monotonic()
    run_id = new_run_id()
    interactive = is_terminal(sys.stdout)
    try:
        hash_key = None
        if hash_ids or _manifest_wants_hashing(manifest_path):
            from kprov.credentials import resolve_id_key

            hash_key = resolve_id_key(g.settings(mapping)).reveal().encode("utf-8")
        manifest = read_manifest(manifest_path, hash_key=hash_key)  # bad input first: exit 2
        settings = g.settings(mapping)

        with locked_state(settings, lock_timeout=lock_timeout, command=command_line()) as state:
            plan = compute_plan(
                manifest, state.mapping, state.registry, prune=prune, max_removals=max_removals
            )
            if plan_only:
                _show_plan(plan, json_output=json_output, no_color=g.no_color)
                _log(log_file, run_id, "plan", 0, plan.counts(), started)
                return
            if interactive and not (g.quiet or json_output) and not plan.nothing_to_do:
                _show_plan(plan, json_output=False, no_color=g.no_color)
            total = (
                len(plan.accounts_to_create)
                + len(plan.instructors_to_add)
                + len(plan.learners_to_add)
            )
            with Progress(
                "sync", total, enabled=interactive and not (g.quiet or json_output)
            ) as progress:
                result = apply_plan(
                    manifest,
                    plan,
                    registry=state.registry,
                    journal=state.journal,
                    mapping=state.mapping,
                    concurrency=concurrency,
                    progress=progress.advance,
                    client_factory=lambda: build_client(
                        settings, pool_size=concurrency, run_id=run_id, test_accounts=test_accounts
                    ),
                )
    except KprovError as error:
        _log(log_file, run_id, "error", int(error.exit_code), {"error": error.message}, started)
        raise
    summary, failures = _summarise(result, run_id, started)
    if report:
        from kprov.provision.report import write_report

        rows = []
        if result.enroll is not None:
            rows = [registration_report_row(r) for r in result.enroll.registrations.results]
        write_report(report, rows)
    code = ExitCode.OK
    if result.stopped_by is not None:
        code = result.stopped_by.exit_code
    elif failures:
        code = ExitCode.ITEM_FAILURES
    summary["exit_code"] = int(code)
    _log(log_file, run_id, "apply", int(code), summary, started)
    if json_output:
        emit_json(
            {
                **summary,
                "plan": plan.as_json(),
                "failures": failures[:1000],
                "warnings": result.enroll.registrations.warnings if result.enroll else [],
                **({"error": error_json(result.stopped_by)} if result.stopped_by else {}),
            }
        )
    elif (interactive and not g.quiet) or g.verbose:
        line = ", ".join(
            f"{k.replace('_', ' ')} {v}"
            for k, v in summary.items()
            if type(v) is int and k != "exit_code" and v
        )
        typer.echo(f"sync {run_id}: {line or 'nothing to do'} ({summary['seconds']} s)")
    warnings = result.enroll.registrations.warnings if result.enroll else []
    for warning in warnings:
        typer.echo(f"kprov: warning: {warning}", err=True)
    if failures or result.stopped_by is not None:
        typer.echo(
            f"kprov sync {manifest_path}: {len(failures)} failure(s)"
            + (f"; stopped: {result.stopped_by.message}" if result.stopped_by else ""),
            err=True,
        )
        for failure in failures[:200]:
            typer.echo(f"  {failure}", err=True)
        if result.stopped_by is not None and result.stopped_by.hint:
            typer.echo(result.stopped_by.hint, err=True)
    if code != ExitCode.OK:
        raise typer.Exit(int(code))


def _manifest_wants_hashing(path: Path) -> bool:
    """Whether the manifest's defaults ask for hash_ids (read before the full validation)."""
    from kprov.provision.manifest import load_manifest

    manifest, _problems, _rosters = load_manifest(path)
    return manifest.hash_ids


def _summarise(result: Any, run_id: str, started: float) -> tuple[dict[str, Any], list[str]]:
    enroll = result.enroll
    counts = enroll.registrations.counts() if enroll else {}
    accounts = enroll.accounts.counts() if enroll and enroll.accounts else {}
    removed = len(result.removals.removed) if result.removals else 0
    replaced = len(result.role_change_removals.removed) if result.role_change_removals else 0
    failures = list(result.failures)
    if enroll is not None:
        failures.extend(
            f"{r.enrollment.person.origin}: {r.enrollment.person.external_id} in "
            f"{r.enrollment.instance_ref}: {r.outcome.value}: {r.reason}"
            for r in enroll.registrations.results
            if r.outcome.value in ("failed", "not_attempted")
        )
    summary = {
        "ok": not failures and result.stopped_by is None,
        "run_id": run_id,
        "accounts_created": accounts.get("created", 0),
        "accounts_recovered": accounts.get("recovered", 0),
        "instances_created": len(enroll.registrations.instances_created) if enroll else 0,
        "registered": counts.get("registered", 0) + counts.get("registered_id_unknown", 0),
        "removed": removed + replaced,
        "failed": len(failures),
        "rate_limited": enroll.rate_limited if enroll else 0,
        "seconds": round(time.monotonic() - started, 3),
    }
    return summary, failures


def _show_plan(plan: Any, *, json_output: bool, no_color: bool) -> None:
    if json_output:
        emit_json({"plan": plan.as_json()})
        return
    counts = plan.counts()
    if is_terminal(sys.stdout):
        from rich.table import Table

        table = Table(title="plan", show_header=True)
        table.add_column("step")
        table.add_column("count", justify="right")
        for name, value in counts.items():
            table.add_row(name.replace("_", " "), f"{value:,}")
        make_console(no_color=no_color).print(table)
    else:
        for name, value in counts.items():
            sys.stdout.write(f"{name}: {value}\n")
    if plan.over_limit:
        sys.stdout.write(
            f"removals ({plan.removal_count}) exceed the limit "
            f"({plan.removal_limit}): nothing would be removed (exit 6)\n"
        )
    if plan.removals and not plan.prune:
        sys.stdout.write(
            f"{len(plan.removals)} registration(s) are no longer in the manifest; "
            "pass --prune to remove them\n"
        )


def _log(
    log_file: Path | None, run_id: str, stage: str, code: int, data: dict[str, Any], started: float
) -> None:
    """One JSON line per run, appended: when, which run, how it ended, what it did."""
    if log_file is None:
        return
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run_id": run_id,
        "stage": stage,
        "exit_code": code,
        "seconds": round(time.monotonic() - started, 3),
        **data,
    }
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, default=str) + "\n")
    except OSError as exc:
        sys.stderr.write(
            f"kprov: warning: cannot append to --log-file {log_file}: {exc.strerror}\n"
        )
