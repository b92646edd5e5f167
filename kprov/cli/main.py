"""The root `kprov` command: global options and the sub-command groups, nothing else."""

from __future__ import annotations

import logging
import sys

import typer

from kprov import __version__
from kprov.cli.completion import complete_profile
from kprov.cli.environment import Environment
from kprov.cli.help import GLOBAL_FLAGS, GLOBAL_WITH_VALUE, KprovTyper, RootGroup
from kprov.cli.output import Globals

HELP = (
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
)

# Every sub-command, in the order `kprov --help` lists them: its word -> (module, attribute,
# group or command). A run builds only the tree of the word it was given (``run``).
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "profile": ("profile", "app", True),
    "config": ("config_cmd", "app", True),
    "auth": ("auth", "app", True),
    "accounts": ("accounts", "app", True),
    "instances": ("instances", "app", True),
    "sync": ("sync", "sync", False),
    "apply": ("sync", "apply", False),
    "register": ("register", "register", False),
    "unregister": ("register", "unregister", False),
    "registrations": ("registrations", "app", True),
    "history": ("history", "history", False),
    "holds": ("holds", "app", True),
    "mapping": ("mapping", "app", True),
    "oneroster": ("oneroster", "app", True),
    "sandbox": ("sandbox", "app", True),
}


def build_app(only: str | None = None) -> typer.Typer:
    """The `kprov` command with every sub-command, or with *only* that one: its module alone
    is imported and its tree alone converted for the parser (~45 ms less of a run's start:
    the other fourteen modules and their options are neither read nor built)."""
    import importlib

    app = KprovTyper(name="kprov", cls=RootGroup, help=HELP, no_args_is_help=True)
    for word, (module_name, attribute, group) in COMMANDS.items():
        if only is not None and word != only:
            continue
        module = importlib.import_module(f"kprov.cli.{module_name}")
        if group:
            app.add_typer(getattr(module, attribute), name=word)
        else:
            app.command(word)(getattr(module, attribute))
    app.callback()(root)
    return app


def command_word(args: list[str]) -> str | None:
    """The sub-command *args* name when it can be told from the global options alone (the
    first word that is not one of them or its value); None, for the whole tree, otherwise:
    no word, an option `kprov` itself may not know, shell completion."""
    import os

    if any(k.startswith("_KPROV_COMPLETE") for k in os.environ):
        return None
    index = 0
    while index < len(args):
        word = args[index]
        if not word.startswith("-"):
            return word if word in COMMANDS else None
        name, has_value = word.split("=", 1)[0], "=" in word
        if name in GLOBAL_WITH_VALUE and not has_value:
            index += 1  # its value
        elif name not in GLOBAL_FLAGS and not (name in GLOBAL_WITH_VALUE and has_value):
            return None  # --help, --version, anything else: the whole tree decides
        index += 1
    return None


def _show_version(value: bool) -> None:
    """kprov's version, then Python's and the platform's: what a bug report needs."""
    if value:
        import platform

        python = f"{platform.python_implementation()} {platform.python_version()}"
        typer.echo(f"kprov {__version__} ({python}, {platform.platform(terse=True)})")
        raise typer.Exit()


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
    """Console-script entry point: the tree of the sub-command given, or the whole one."""
    from kprov.gc_pause import allow_freezing

    allow_freezing()  # one command, then the process ends: what it froze goes with it
    build_app(command_word(sys.argv[1:]))(prog_name="kprov")


def __getattr__(name: str) -> typer.Typer:
    """``app``, the whole tree (tests, the reference and the manual pages), built once on
    first use."""
    if name == "app":
        app = globals()["app"] = build_app()
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
