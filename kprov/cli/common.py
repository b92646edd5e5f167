"""Options and steps several commands share: reading rosters, opening the mapping."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kprov.errors import InputError

if TYPE_CHECKING:  # imported where used: `kprov --help` must stay fast
    from kprov.config import Settings
    from kprov.rosters import Roster
    from kprov.rosters.model import Person
    from kprov.state.local import LocalState
    from kprov.state.mapping import MappingIndex, MappingJournal


INPUT_PANEL = "Input"
OUTPUT_PANEL = "Output"
RUN_PANEL = "Run"

ID_COLUMN_OPTION = typer.Option(
    "external_user_id",
    "--id-column",
    metavar="COLUMN",
    help="Name of the id column in CSV rosters.",
    rich_help_panel=INPUT_PANEL,
)
INSTANCE_COLUMN_OPTION = typer.Option(
    None,
    "--instance-column",
    metavar="COLUMN",
    help="Name of the class column of CSV rosters: each line joins the instance it names "
    "(default: a column named 'instance', if any).",
    rich_help_panel=INPUT_PANEL,
    show_default=False,
)
ROLE_COLUMN_OPTION = typer.Option(
    None,
    "--role-column",
    metavar="COLUMN",
    help="Name of the role column of CSV rosters (default: a column named 'role', if any; "
    "without one, every line is a learner).",
    rich_help_panel=INPUT_PANEL,
    show_default=False,
)
TA_OPTION = typer.Option(
    False,
    "--ta-as-instructor",
    help="Canvas bundles: register 'ta' enrollments as instructors (default: skipped).",
    rich_help_panel=INPUT_PANEL,
)
DELIMITER_OPTION = typer.Option(
    None,
    "--delimiter",
    metavar="CHAR",
    help="CSV delimiter: ',' ';' '|' or 'tab' (default: Excel's sep= line, else detected "
    "from the header).",
    rich_help_panel=INPUT_PANEL,
    show_default=False,
)
ENCODING_OPTION = typer.Option(
    None,
    "--encoding",
    metavar="CODEC",
    help="Encoding of CSV rosters, any Python codec name such as cp1252 or utf-16 "
    "(default: the BOM's, else UTF-8).",
    rich_help_panel=INPUT_PANEL,
    show_default=False,
)
FORMAT_OPTION = typer.Option(
    "auto",
    "--format",
    metavar="FORMAT",
    help="Roster format: auto (by file name), csv or yaml; `-` reads standard input (CSV "
    "unless --format yaml).",
    rich_help_panel=INPUT_PANEL,
)
HASH_IDS_OPTION = typer.Option(
    False,
    "--hash-ids",
    help="Derive anonymized external ids from SIS ids with HMAC-SHA256 "
    "(make the key once: kprov auth id-key generate).",
    rich_help_panel=INPUT_PANEL,
)
MAPPING_OPTION = typer.Option(
    None,
    "--mapping",
    metavar="FILE",
    help="Mapping file (default: KPROV_MAPPING, then mapping.csv in the state directory).",
    rich_help_panel=INPUT_PANEL,
    show_default=False,
)
REBUILD_MAPPING_OPTION = typer.Option(
    False,
    "--rebuild-mapping",
    help="The mapping file is lost: rebuild it first from the account ids the registry "
    "recorded, and say what could not be recovered (see `kprov mapping rebuild`).",
    rich_help_panel=INPUT_PANEL,
)
YES_OPTION = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")


@dataclass(frozen=True)
class RosterArgs:
    paths: list[Path]
    id_column: str
    hash_ids: bool
    delimiter: str | None = None
    encoding: str | None = None
    format: str = "auto"
    instance_column: str | None = None
    role_column: str | None = None
    ta_as_instructor: bool = False


FREEZE_AFTER = 100_000  # people; see read_roster


def ids_made(settings: Callable[[], Settings], hash_ids: bool) -> str:
    """How this run makes external ids (plain, or hashed with which key): the state must
    have been made the same way."""
    from kprov.state.owner import ids_made_with

    return ids_made_with(id_key(settings) if hash_ids else None)


def id_key(settings: Callable[[], Settings]) -> bytes:
    """The --hash-ids key, from wherever the settings say it lives."""
    from kprov.credentials import resolve_id_key

    return resolve_id_key(settings()).reveal().encode("utf-8")


def owner_of(settings: Settings) -> dict[str, str]:
    """The API a state directory mirrors: its base URL and API key (only a fingerprint of the
    key is kept: it is half of the Basic credentials)."""
    import hashlib

    digest = hashlib.sha256(settings.profile.api_key.encode("utf-8")).hexdigest()[:12]
    return {"base_url": settings.profile.base_url.rstrip("/"), "api_key": f"sha256:{digest}"}


def command_line_people(
    settings: Callable[[], Settings], entries: list[tuple[str, str]], *, hash_ids: bool
) -> list[Person]:
    """People named on the command line ((id, role) pairs), checked exactly as roster lines
    are: PII, spreadsheet damage, duplicates, and hashed with --hash-ids (so a raw SIS id
    never reaches the API)."""
    from kprov.rosters import problems_error
    from kprov.rosters.model import Origin, Person
    from kprov.rosters.validate import validate_people

    people = [
        Person(ext, role, Origin("<command line>", n)) for n, (ext, role) in enumerate(entries, 1)
    ]
    key = id_key(settings) if hash_ids and people else None
    accepted, problems = validate_people(people, hash_key=key)
    if problems:
        raise problems_error(problems, what="ids given on the command line")
    return accepted


def read_roster(settings: Callable[[], Settings], args: RosterArgs) -> Roster:
    """Read and validate rosters; any problem raises InputError (exit 2) before any request.

    The settings are resolved only when --hash-ids needs the profile's key, so bad input is
    reported as bad input even on a machine that is not configured yet.
    """
    if not args.paths:
        raise InputError(
            "no roster given",
            hint="Name one or more CSV or YAML files, roster bundles (OneRoster, SDS, Clever, "
            "Apple School Manager, Canvas), or `-`.",
        )
    from dataclasses import replace

    from kprov.rosters import RosterOptions, checked_options, load_roster

    options = checked_options(
        RosterOptions(
            id_column=args.id_column,
            delimiter=args.delimiter,
            encoding=args.encoding,
            format=args.format,
            instance_column=args.instance_column,
            role_column=args.role_column,
            ta_as_instructor=args.ta_as_instructor,
        )
    )  # a bad --encoding or --delimiter is bad input too: exit 2 before configuration
    if args.hash_ids:
        options = replace(options, hash_key=id_key(settings))
    roster = load_roster(args.paths, options)
    if len(roster.people) >= FREEZE_AFTER:
        from kprov.gc_pause import freeze_for_this_command

        # The roster lives until the command ends: keep the cyclic collector from walking
        # its millions of objects again at every collection while the plan is made.
        freeze_for_this_command()
    return roster


@contextmanager
def locked_state(
    settings: Settings, *, lock_timeout: float = 0.0, command: str = ""
) -> Iterator[LocalState]:
    """The mapping and the instance/registration registry, under the state lock."""
    from kprov.state.local import open_local_state

    with open_local_state(
        settings.state_dir,
        settings.mapping_path,
        lock_timeout=lock_timeout,
        command=command,
        owner=owner_of(settings),
    ) as state:
        from kprov.cli.output import warn

        for warning in state.warnings:
            warn(warning)
        yield state


@contextmanager
def locked_mapping(
    settings: Settings, *, lock_timeout: float = 0.0, command: str = ""
) -> Iterator[tuple[MappingJournal, MappingIndex]]:
    """Hold the state lock and load (and repair) the mapping."""
    with locked_state(settings, lock_timeout=lock_timeout, command=command) as state:
        yield state.journal, state.mapping


def command_line() -> str:
    """The command words of argv (`kprov sync`), for the lock's holder: no option, no value of
    an option, no file name."""
    from kprov.cli.help import GLOBAL_WITH_VALUE

    words: list[str] = []
    args = iter(sys.argv[1:])
    for word in args:
        if word in GLOBAL_WITH_VALUE:
            next(args, None)  # its value is not a command word
        elif not word.startswith("-"):
            words.append(word)
    return "kprov " + " ".join(words[:2])
