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
    help="Name of the id column in CSV rosters.",
    rich_help_panel=INPUT_PANEL,
)
INSTANCE_COLUMN_OPTION = typer.Option(
    None,
    "--instance-column",
    help="Name of the class column of CSV rosters: each line joins the instance it names "
    "(default: a column named 'instance', if any).",
    rich_help_panel=INPUT_PANEL,
    show_default=False,
)
ROLE_COLUMN_OPTION = typer.Option(
    None,
    "--role-column",
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
    help="CSV delimiter: ',' ';' '|' or 'tab' (default: Excel's sep= line, else detected "
    "from the header).",
    rich_help_panel=INPUT_PANEL,
    show_default=False,
)
ENCODING_OPTION = typer.Option(
    None,
    "--encoding",
    help="Encoding of CSV rosters, any Python codec name such as cp1252 or utf-16 "
    "(default: the BOM's, else UTF-8).",
    rich_help_panel=INPUT_PANEL,
    show_default=False,
)
FORMAT_OPTION = typer.Option(
    "auto",
    "--format",
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
CONCURRENCY_OPTION = typer.Option(
    4,
    "--concurrency",
    "-c",
    min=1,
    max=64,
    help="Requests in flight at once.",
    rich_help_panel=RUN_PANEL,
)
PLAN_OPTION = typer.Option(
    False,
    "--plan",
    "--dry-run",
    help="Show the plan (who is added, removed, and why); send nothing.",
    rich_help_panel=RUN_PANEL,
)
OUT_OPTION = typer.Option(
    None,
    "--out",
    help="With --plan: save the plan to FILE.json, to review and then `kprov apply FILE.json`.",
    rich_help_panel=OUTPUT_PANEL,
    show_default=False,
)
DETAILED_EXITCODE_OPTION = typer.Option(
    False,
    "--detailed-exitcode",
    help="With --plan: exit 10 when the plan has changes, 0 when there is nothing to do.",
    rich_help_panel=OUTPUT_PANEL,
)
LOG_FILE_OPTION = typer.Option(
    None,
    "--log-file",
    help="Append one JSON line per run to FILE (who was added, removed, what failed).",
    rich_help_panel=OUTPUT_PANEL,
    show_default=False,
)
LOCK_TIMEOUT_OPTION = typer.Option(
    0.0,
    "--lock-timeout",
    min=0,
    help="Seconds to wait for another kprov run to finish.",
    rich_help_panel=RUN_PANEL,
)
REPORT_OPTION = typer.Option(
    None,
    "--report",
    help="Every line's fate to FILE.csv or FILE.json; a summary (totals, per class, failures, "
    "removals) to FILE.html. For plans and runs.",
    rich_help_panel=OUTPUT_PANEL,
    show_default=False,
)
NOTIFY_OPTION = typer.Option(
    None,
    "--notify",
    help="POST a JSON summary (with a `text` Slack and Teams show) to this incoming-webhook "
    "URL after a run that failed, stopped, or held anything (default: the manifest's "
    "notify:, KPROV_NOTIFY, the profile's notify).",
    rich_help_panel=OUTPUT_PANEL,
    show_default=False,
)
NOTIFY_ON_OPTION = typer.Option(
    None,
    "--notify-on",
    help="failure (the default) or always.",
    rich_help_panel=OUTPUT_PANEL,
    show_default=False,
)
METRICS_FILE_OPTION = typer.Option(
    None,
    "--metrics-file",
    help="Replace FILE.prom (Prometheus text format, for node_exporter's textfile "
    "collector) with this run's outcome at its end (default: KPROV_METRICS_FILE, the "
    "profile's metrics_file).",
    rich_help_panel=OUTPUT_PANEL,
    show_default=False,
)
MAX_CREATIONS_OPTION = typer.Option(
    None,
    "--max-creations",
    help="Most accounts created in one run, N or P% of the people in the mapping [default: "
    "10%, none while it holds fewer than 100]; past it the creations and what needs them "
    "are held for approval (exit 6; kprov holds).",
    rich_help_panel=RUN_PANEL,
    show_default=False,
)
YES_OPTION = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
TEST_ACCOUNTS_OPTION = typer.Option(
    False,
    "--test-accounts",
    help="Mark the accounts kprov creates as test accounts (X-Knewton-Test: true).",
    rich_help_panel=RUN_PANEL,
)


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
        import gc

        # The roster lives until the command ends: keep the cyclic collector from walking
        # its millions of objects again at every collection while the plan is made.
        gc.freeze()
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


def confirm_or_refuse(question: str, *, yes: bool) -> None:
    """Ask on a terminal; without one, refuse unless --yes (cron never hangs on a prompt)."""
    if yes:
        return
    from kprov.cli.output import is_terminal

    if not is_terminal(sys.stdin):
        raise InputError(
            "refusing without confirmation", hint="Pass --yes when running without a terminal."
        )
    from kprov.outside_text import printable

    typer.confirm(printable(question, keep="\n"), abort=True)  # it may quote ids and keys


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
