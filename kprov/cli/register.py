"""`kprov register` and `kprov unregister`: enrolments in learning instances."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kprov.cli.common import (
    DELIMITER_OPTION,
    ENCODING_OPTION,
    FORMAT_OPTION,
    ID_COLUMN_OPTION,
    INPUT_PANEL,
    INSTANCE_COLUMN_OPTION,
    ROLE_COLUMN_OPTION,
    RUN_PANEL,
    TA_OPTION,
    RosterArgs,
    command_line_people,
    ids_made,
    read_roster,
)
from kprov.cli.completion import complete_instance_key
from kprov.cli.output import Globals, guarded
from kprov.cli.run_options import RunOptions, run_options
from kprov.errors import InputError

if TYPE_CHECKING:
    from kprov.config import Settings
    from kprov.provision.request import Request

INSTANCE_OPTION = typer.Option(
    None,
    "--instance",
    "-i",
    metavar="INSTANCE",
    autocompletion=complete_instance_key,
    help="Learning instance id or key, for rosters without an 'instance' column.",
    rich_help_panel=INPUT_PANEL,
    show_default=False,
)


@guarded
@run_options(planning=True, creating=True)
def register(
    ctx: typer.Context,
    rosters: list[Path] = typer.Argument(
        None,
        metavar="ROSTER",
        help="Rosters (CSV, YAML) or bundles (OneRoster, SDS, Clever, Apple School Manager, "
        "Canvas); a class column ('instance', or --instance-column) registers many instances "
        "at once.",
        show_default=False,
    ),
    instance: str | None = INSTANCE_OPTION,
    learner: list[str] = typer.Option(
        [],
        "--learner",
        metavar="ID",
        help="External id of a learner (repeatable).",
        rich_help_panel=INPUT_PANEL,
    ),
    instructor: list[str] = typer.Option(
        [],
        "--instructor",
        metavar="ID",
        help="External id of an instructor (repeatable).",
        rich_help_panel=INPUT_PANEL,
    ),
    graph_id: str | None = typer.Option(
        None,
        "--graph-id",
        metavar="GRAPH",
        help="Create unknown instances "
        "on the way, with this knowledge graph (name: the "
        "bundle's class title, else the key).",
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
    instance_column: str | None = INSTANCE_COLUMN_OPTION,
    role_column: str | None = ROLE_COLUMN_OPTION,
    ta_as_instructor: bool = TA_OPTION,
    delimiter: str | None = DELIMITER_OPTION,
    encoding: str | None = ENCODING_OPTION,
    roster_format: str = FORMAT_OPTION,
    *,
    options: RunOptions,
) -> None:
    """Register learners and instructors in learning instances.

    A rerun sends nothing new.

    Missing accounts are created on the way (batch path). Instructors are registered with the
    partner admin's token, learners with an instructor's token, each as soon as their
    account and instance exist.

    \b
    Examples:
      kprov register --instance alg1-p3 roster.csv
      kprov register --instance alg1-p3 --instructor t-01 --learner s-01 --learner s-02
      kprov register roster-with-instance-column.csv --graph-id gref-algebra --plan
      kprov register enrollments.csv --instance-column Section_id --id-column Student_id
      kprov register clever-export.zip --graph-id gref-algebra
    """
    from kprov.cli.flow import provision
    from kprov.provision.request import register_request
    from kprov.rosters import Roster
    from kprov.rosters.model import INSTRUCTOR, LEARNER

    def request(g: Globals) -> Request:
        def settings() -> Settings:
            return g.settings(options.mapping)

        roster = Roster()
        if rosters:
            args = RosterArgs(
                rosters, id_column, options.hash_ids, delimiter, encoding, roster_format,
                instance_column, role_column, ta_as_instructor,
            )  # fmt: skip
            roster = read_roster(settings, args)
        named = [(i, INSTRUCTOR) for i in instructor] + [(i, LEARNER) for i in learner]
        if named and not instance:
            raise InputError("--learner and --instructor need --instance ID|KEY")
        inline = command_line_people(settings, named, hash_ids=options.hash_ids)
        seen = {(p.external_id, p.instance_key) for p in roster.people}
        for person in inline:
            if (person.external_id, None) in seen:
                raise InputError(f"{person.sis_id or person.external_id!r} is given twice")
            seen.add((person.external_id, None))
        roster.people.extend(inline)
        if not roster.people:
            raise InputError("nobody to register", hint="Give a roster, or --learner/--instructor.")
        request = register_request(
            roster,
            instance=instance,
            graph_id=graph_id,
            create_accounts=not no_create,
            sources=[str(p) for p in rosters or []],
            max_creations=options.max_creations,
        )
        return replace(request, ids=ids_made(settings, options.hash_ids))

    provision(ctx, request, options)


@guarded
@run_options(planning=True, asking=True)
def unregister(
    ctx: typer.Context,
    external_ids: list[str] = typer.Argument(
        None, metavar="ID", help="External ids to remove.", show_default=False
    ),
    instance: str = typer.Option(
        ...,
        "--instance",
        "-i",
        metavar="INSTANCE",
        help="Learning instance id or key.",
        autocompletion=complete_instance_key,
    ),
    roster: Path | None = typer.Option(
        None,
        "--roster",
        metavar="FILE",
        help="Remove everyone in this roster from the instance.",
        show_default=False,
    ),
    max_removals: int | None = typer.Option(
        None,
        "--max-removals",
        min=0,
        metavar="N",
        help="Remove nothing (exit 6) if more than N would be removed.",
        show_default=False,
    ),
    id_column: str = ID_COLUMN_OPTION,
    delimiter: str | None = DELIMITER_OPTION,
    encoding: str | None = ENCODING_OPTION,
    roster_format: str = FORMAT_OPTION,
    *,
    options: RunOptions,
) -> None:
    """Remove registrations from a learning instance.

    DELETE /registrations/{id}: the goal analytics of those learners for that instance
    are discarded. Asks on a terminal; without one, needs --yes.

    \b
    Examples:
      kprov unregister --instance alg1-p3 s-000123 --max-removals 5
      kprov unregister --instance alg1-p3 --roster leavers.csv --plan
    """
    from kprov.cli.flow import provision
    from kprov.provision.request import unregister_request
    from kprov.rosters.model import LEARNER

    def request(g: Globals) -> Request:
        def settings() -> Settings:
            return g.settings(options.mapping)

        named = [(ext, LEARNER) for ext in external_ids or []]
        people = command_line_people(settings, named, hash_ids=options.hash_ids)
        if roster is not None:
            args = RosterArgs(
                [roster], id_column, options.hash_ids, delimiter, encoding, roster_format
            )
            people.extend(read_roster(settings, args).people)
        if not people:
            raise InputError("nobody to unregister", hint="Name external ids, or --roster FILE.")
        request = unregister_request(people, instance=instance, max_removals=max_removals)
        sources = [str(roster)] if roster is not None else []
        ids = ids_made(settings, options.hash_ids)
        return replace(request, ids=ids, sources=sources)

    provision(ctx, request, replace(options, must_confirm_removals=True))
