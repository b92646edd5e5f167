"""The root `kprov` command: global options and the sub-command groups, nothing else."""

from __future__ import annotations

import logging
import sys

import typer

from kprov import __version__
from kprov.cli import (
    accounts,
    auth,
    config_cmd,
    history,
    holds,
    instances,
    mapping,
    oneroster,
    profile,
    register,
    registrations,
    sandbox,
    sync,
)
from kprov.cli.completion import complete_profile
from kprov.cli.environment import Environment
from kprov.cli.help import KprovTyper, RootGroup
from kprov.cli.output import Globals

app = KprovTyper(
    name="kprov",
    cls=RootGroup,
    help=(
        "Provision Knewton accounts, learning instances and registrations from school "
        "rosters, safely and idempotently: kprov keeps the platform in step with a student "
        "information system, from a terminal or unattended from cron.\n\n"
        "\b\nExamples:\n"
        "  kprov sandbox sample ~/kprov-try\n"
        "  kprov --profile sandbox sync ~/kprov-try/semester.yaml\n"
        "  kprov --profile prod config show\n"
        "  kprov accounts import roster.csv --report import.csv\n"
        "  kprov sync /srv/sis/semester.yaml --prune --log-file /var/log/kprov.log\n\n"
        "Exit codes: 0 done, 1 some items failed, 2 invalid input (nothing sent), "
        "3 configuration or authentication, 4 API or network failed (rerun resumes), "
        "5 another run holds the lock, 6 a guard held part of the run (kprov holds), 7 not found, "
        "8 a saved plan or a hold no longer applies (nothing sent), 9 local storage failed, "
        "10 changes pending (--plan --detailed-exitcode), 130 interrupted, 141 the reader "
        "closed stdout.\n\n"
        "The options below may also follow the command: kprov sync FILE --profile prod --json."
        "\n\nMore: `kprov COMMAND --help`, `man kprov` (and kprov-COMMAND pages), and the "
        "guide, manifest reference, operations and troubleshooting pages in docs/ (README.md "
        "maps them)."
    ),
    no_args_is_help=True,
)

app.add_typer(profile.app, name="profile")
app.add_typer(config_cmd.app, name="config")
app.add_typer(auth.app, name="auth")
app.add_typer(accounts.app, name="accounts")
app.add_typer(instances.app, name="instances")
app.command("sync")(sync.sync)
app.command("apply")(sync.apply)
app.command("register")(register.register)
app.command("unregister")(register.unregister)
app.add_typer(registrations.app, name="registrations")
app.command("history")(history.history)
app.add_typer(holds.app, name="holds")
app.add_typer(mapping.app, name="mapping")
app.add_typer(oneroster.app, name="oneroster")
app.add_typer(sandbox.app, name="sandbox")


def _show_version(value: bool) -> None:
    """kprov's version, then Python's and the platform's: what a bug report needs."""
    if value:
        import platform

        python = f"{platform.python_implementation()} {platform.python_version()}"
        typer.echo(f"kprov {__version__} ({python}, {platform.platform(terse=True)})")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile_name: str | None = typer.Option(
        None,
        "--profile",
        "-p",
        metavar="PROFILE",
        autocompletion=complete_profile,
        help="Profile to use (default: KPROV_PROFILE, then the config file's current profile).",
        show_default=False,
    ),
    config: str | None = typer.Option(
        None,
        "--config",
        metavar="FILE",
        help="Config file (default: KPROV_CONFIG, then the platform's config directory).",
        show_default=False,
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Log every request and answer to stderr (secrets redacted)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print more detail."),
    no_color: bool = typer.Option(False, "--no-color", help="No colours (NO_COLOR works too)."),
    json_output: bool = typer.Option(
        False, "--json", help="Print one JSON document on stdout (errors too)."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Show the versions of kprov, Python and the platform.",
    ),
) -> None:
    given = ctx.obj  # an Environment handed in by a test (CliRunner.invoke(obj=...))
    ctx.obj = Globals(
        config=config,
        profile=profile_name,
        debug=debug,
        quiet=quiet,
        verbose=verbose,
        no_color=no_color,
        json=json_output,
        env=given if isinstance(given, Environment) else Environment.detect(),
    )
    _configure_logging(debug)


class _PrintableFormatter(logging.Formatter):
    """Debug lines hold server text (scrubbed and escaped where it is read); whatever else a
    record carries is escaped here too: one line per record, no control character."""

    def format(self, record: logging.LogRecord) -> str:
        from kprov.outside_text import printable

        return printable(super().format(record))


def _configure_logging(debug: bool) -> None:
    """--debug logs to this invocation's stderr; handlers from an earlier one are dropped."""
    logger = logging.getLogger("kprov")
    for handler in [h for h in logger.handlers if getattr(h, "kprov_debug", False)]:
        logger.removeHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.kprov_debug = True  # type: ignore[attr-defined]
        handler.setFormatter(_PrintableFormatter("%(asctime)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logging.getLogger("urllib3").setLevel(logging.WARNING)


def run() -> None:
    """Console-script entry point."""
    from kprov.gc_pause import allow_freezing

    allow_freezing()  # one command, then the process ends: what it froze goes with it
    app(prog_name="kprov")
