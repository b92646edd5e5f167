"""`kprov register` and `kprov unregister`: enrolments in learning instances."""

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
    INPUT_PANEL,
    JSON_OPTION,
    LOCK_TIMEOUT_OPTION,
    MAPPING_OPTION,
    REPORT_OPTION,
    RUN_PANEL,
    TEST_ACCOUNTS_OPTION,
    YES_OPTION,
    RosterArgs,
    command_line,
    confirm_or_refuse,
    locked_state,
    read_roster,
    registration_report_row,
)
from kprov.cli.output import (
    Progress,
    emit_json,
    finish_run,
    globals_of,
    guarded,
    render_counts,
)
from kprov.errors import InputError

INSTANCE_OPTION = typer.Option(
    None,
    "--instance",
    "-i",
    help="Learning instance id or key, for lines without an 'instance' column.",
    rich_help_panel=INPUT_PANEL,
    show_default=False,
)


@guarded
def register(
    ctx: typer.Context,
    rosters: list[Path] = typer.Argument(
        None,
        help="Rosters (CSV, YAML, OneRoster); an "
        "'instance' column registers many instances at once.",
        show_default=False,
    ),
    instance: str | None = INSTANCE_OPTION,
    learner: list[str] = typer.Option(
        [], "--learner", help="External id of a learner (repeatable).", rich_help_panel=INPUT_PANEL
    ),
    instructor: list[str] = typer.Option(
        [],
        "--instructor",
        help="External id of an instructor (repeatable).",
        rich_help_panel=INPUT_PANEL,
    ),
    graph_id: str | None = typer.Option(
        None,
        "--graph-id",
        help="Create unknown instances "
        "on the way, with this knowledge graph (name: the "
        "OneRoster class title, else the key).",
        rich_help_panel=INPUT_PANEL,
        show_default=False,
    ),
    no_create: bool = typer.Option(
        False,
        "--no-create",
        help="Do not create missing accounts; report those lines as failed.",
        rich_help_panel=RUN_PANEL,
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
    """Register learners and instructors in learning instances.

    A rerun sends nothing new.

    Missing accounts are created first (batch path). Instructors are registered with the
    partner admin's token, learners with an instructor's token.

    \b
    Examples:
      kprov register --instance alg1-p3 roster.csv
      kprov register --instance alg1-p3 --instructor t-01 --learner s-01 --learner s-02
    """
    from kprov.provision.enroll import EnrollOptions, register_roster, specs_for_unknown
    from kprov.provision.report import check_report_path, write_report
    from kprov.provision.session import build_client, new_run_id
    from kprov.rosters import Roster
    from kprov.rosters.model import INSTRUCTOR, LEARNER, Origin, Person
    from kprov.rosters.validate import id_problems

    g = globals_of(ctx)
    if report:
        check_report_path(report)
    if rosters:
        roster = read_roster(
            lambda: g.settings(mapping),
            RosterArgs(rosters, id_column, hash_ids, delimiter, encoding, roster_format),
        )
    else:
        roster = Roster()
    settings = g.settings(mapping)

    inline = [(i, INSTRUCTOR) for i in instructor] + [(i, LEARNER) for i in learner]
    if inline and not instance:
        raise InputError("--learner and --instructor need --instance ID|KEY")
    for position, (ext, role) in enumerate(inline, start=1):
        problems = id_problems(ext, check_pii=True)
        if problems:
            raise InputError(f"cannot use {ext!r} as an id; nothing was sent:", problems=problems)
        roster.people.append(Person(ext, role, Origin("<command line>", position), instance))
    if not roster.people:
        raise InputError("nobody to register", hint="Give a roster, or --learner/--instructor.")
    run_id = new_run_id()
    options = EnrollOptions(concurrency=concurrency, dry_run=dry_run, create_accounts=not no_create)
    with locked_state(settings, lock_timeout=lock_timeout, command=command_line()) as state:
        work = len(roster.people) + len(
            {p.external_id for p in roster.people} - state.mapping.account_of.keys()
        )  # registrations, plus the accounts created on the way
        progress_bar = Progress(
            "registrations", work, enabled=not (g.quiet or json_output or dry_run)
        )
        with progress_bar as progress:
            outcome = register_roster(
                roster.people,
                default_instance=instance,
                registry=state.registry,
                journal=state.journal,
                mapping=state.mapping,
                client_factory=lambda: build_client(
                    settings, pool_size=concurrency, run_id=run_id, test_accounts=test_accounts
                ),
                options=options,
                progress=progress.advance,
                specs=specs_for_unknown(
                    roster.people, instance, state.registry, graph_id, roster.class_titles
                ),
            )
    result = outcome.registrations
    counts = result.counts()
    accounts = outcome.accounts.counts() if outcome.accounts else {}
    if report:
        write_report(
            report,
            (
                registration_report_row(r)
                for r in sorted(
                    result.results,
                    key=lambda r: (
                        r.enrollment.person.origin.file,
                        r.enrollment.person.origin.line,
                    ),
                )
            ),
        )
    failures = [r for r in result.results if r.outcome.value in ("failed", "not_attempted")]
    summary: dict[str, Any] = {
        "ok": not failures and result.stopped_by is None,
        "run_id": run_id,
        "dry_run": dry_run,
        "lines": len(result.results),
        "registered": counts["registered"],
        "already_registered": counts["already_registered"],
        "registered_id_unknown": counts["registered_id_unknown"],
        "failed": counts["failed"],
        "not_attempted": counts["not_attempted"],
        "would_register": counts["would_register"],
        "accounts_created": accounts.get("created", 0),
        "accounts_recovered": accounts.get("recovered", 0),
        "instances_created": [r.key for r in result.instances_created],
        "requests": outcome.requests,
        "rate_limited": outcome.rate_limited,
        "seconds": round(result.elapsed, 3),
    }
    failure_rows = [
        {
            "file": r.enrollment.person.origin.file,
            "line": r.enrollment.person.origin.line,
            "external_user_id": r.enrollment.person.external_id,
            "instance": r.enrollment.instance_ref,
            "outcome": r.outcome.value,
            "reason": r.reason,
        }
        for r in failures
    ]
    for warning in result.warnings:
        typer.echo(f"kprov: warning: {warning}", err=True)
    if json_output:
        emit_json({**summary, "failures": failure_rows[:1000], "warnings": result.warnings})
    else:
        if not g.quiet:
            keys = (
                ["would_register", "already_registered"]
                if dry_run
                else ["registered", "already_registered", "registered_id_unknown", "failed"]
            )
            if summary["not_attempted"]:
                keys.append("not_attempted")
            render_counts(
                f"registrations ({run_id})", [(k, summary[k]) for k in keys], no_color=g.no_color
            )
        for row in failure_rows[:50]:
            typer.echo(
                f"{row['outcome']}: {row['file']}:{row['line']}: "
                f"{row['external_user_id']} in {row['instance']}: {row['reason']}",
                err=True,
            )
        if len(failure_rows) > 50:
            typer.echo(f"... and {len(failure_rows) - 50} more (see --report)", err=True)
    finish_run(result.stopped_by, failed=bool(failures))


@guarded
def unregister(
    ctx: typer.Context,
    external_ids: list[str] = typer.Argument(
        None, help="External ids to remove.", show_default=False
    ),
    instance: str = typer.Option(..., "--instance", "-i", help="Learning instance id or key."),
    roster: Path | None = typer.Option(
        None,
        "--roster",
        help="Remove everyone in this roster from the instance.",
        show_default=False,
    ),
    max_removals: int | None = typer.Option(
        None,
        "--max-removals",
        min=0,
        help="Stop (exit 6) before removing more than N.",
        show_default=False,
    ),
    id_column: str = ID_COLUMN_OPTION,
    hash_ids: bool = HASH_IDS_OPTION,
    delimiter: str | None = DELIMITER_OPTION,
    encoding: str | None = ENCODING_OPTION,
    roster_format: str = FORMAT_OPTION,
    mapping: str | None = MAPPING_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    yes: bool = YES_OPTION,
    json_output: bool = JSON_OPTION,
) -> None:
    """Remove registrations from a learning instance.

    DELETE /registrations/{id}: the goal analytics of those learners for that instance
    are discarded.

    \b
    Examples:
      kprov unregister --instance alg1-p3 s-000123 --max-removals 5
    """
    from kprov.provision.registrations import check_max_removals, plan_removals, unregister
    from kprov.provision.session import build_client

    g = globals_of(ctx)
    ids = list(external_ids or [])
    if roster is not None:
        listed = read_roster(
            lambda: g.settings(mapping),
            RosterArgs([roster], id_column, hash_ids, delimiter, encoding, roster_format),
        )
        ids.extend(p.external_id for p in listed.people)

    settings = g.settings(mapping)

    if not ids:
        raise InputError("nobody to unregister", hint="Name external ids, or --roster FILE.")
    with locked_state(settings, command=command_line()) as state:
        record = state.registry.instance_index.find(instance)
        instance_id = record.instance_id if record else instance
        removable, refused = plan_removals(ids, instance_id, state.registry, state.mapping)
        check_max_removals(len(removable), max_removals)
        result = None
        if removable:
            confirm_or_refuse(
                f"Remove {len(removable)} registration(s) from {instance}? Their goal "
                "analytics for this instance are discarded.",
                yes=yes,
            )
            with build_client(settings, pool_size=concurrency) as client:
                result = unregister(client, state.registry, removable, concurrency=concurrency)
    removed = result.removed if result else []
    failed = refused + (result.failed if result else [])
    if json_output:
        emit_json(
            {
                "ok": not failed,
                "removed": [r.external_user_id for r in removed],
                "failed": [
                    {"external_user_id": r.external_user_id, "reason": r.reason} for r in failed
                ],
            }
        )
    else:
        if not g.quiet:
            typer.echo(
                f"removed {len(removed)} registration(s) from {instance}; goal "
                "analytics for them in this instance are discarded"
            )
        for failure in failed:
            typer.echo(f"not removed: {failure.external_user_id}: {failure.reason}", err=True)
    finish_run(result.stopped_by if result else None, failed=bool(failed))
