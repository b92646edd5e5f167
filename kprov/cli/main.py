"""The root `kprov` command: global options and the sub-command groups, nothing else."""

from __future__ import annotations

import logging
import sys

import typer

from kprov import __version__
from kprov.cli import (
    accounts,
    auth,
    instances,
    mapping,
    profile,
    register,
    registrations,
    sandbox,
    sync,
)
from kprov.cli.output import Globals

app = typer.Typer(
    name="kprov",
    help=(
        "Provision Knewton accounts, learning instances and registrations from school "
        "rosters, safely and idempotently.\n\n"
        "Example: kprov --profile sandbox accounts import sample_rosters/students.csv"
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(profile.app, name="profile")
app.add_typer(auth.app, name="auth")
app.add_typer(accounts.app, name="accounts")
app.add_typer(instances.app, name="instances")
app.command("sync")(sync.sync)
app.command("register")(register.register)
app.command("unregister")(register.unregister)
app.add_typer(registrations.app, name="registrations")
app.add_typer(mapping.app, name="mapping")
app.add_typer(sandbox.app, name="sandbox")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"kprov {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile_name: str | None = typer.Option(
        None,
        "--profile",
        "-p",
        help="Profile to use (default: KPROV_PROFILE, then the config file's current profile).",
        show_default=False,
    ),
    config: str | None = typer.Option(
        None,
        "--config",
        help="Config file (default: KPROV_CONFIG, then the platform's config directory).",
        show_default=False,
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Log every request and answer to stderr (secrets redacted)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Print more detail."),
    no_color: bool = typer.Option(False, "--no-color", help="No colours (NO_COLOR works too)."),
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Show the version."
    ),
) -> None:
    ctx.obj = Globals(
        config=config,
        profile=profile_name,
        debug=debug,
        quiet=quiet,
        verbose=verbose,
        no_color=no_color,
    )
    _configure_logging(debug)


def _configure_logging(debug: bool) -> None:
    """--debug logs to this invocation's stderr; handlers from an earlier one are dropped."""
    logger = logging.getLogger("kprov")
    for handler in [h for h in logger.handlers if getattr(h, "kprov_debug", False)]:
        logger.removeHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    if debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.kprov_debug = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        logger.addHandler(handler)
        logging.getLogger("urllib3").setLevel(logging.WARNING)


def run() -> None:
    """Console-script entry point."""
    app(prog_name="kprov")
