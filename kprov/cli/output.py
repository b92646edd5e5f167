"""Global options, the terminal, and the one place where outcomes become exit codes.

Expected failures (``KprovError``) are printed as advice and end with their documented exit
code; they never show a traceback. Plans and runs end with ``exit_code_for``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from kprov.cli.environment import Environment
from kprov.errors import ExitCode, KprovError

if TYPE_CHECKING:
    from kprov.cli.render import View
    from kprov.cli.render_data import Shown
    from kprov.config import Settings
    from kprov.provision.plan import Plan
    from kprov.provision.result import RunResult

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Globals:
    """Options of the root command (accepted before or after the sub-command)."""

    config: str | None = None
    profile: str | None = None
    debug: bool = False
    quiet: bool = False
    verbose: bool = False
    no_color: bool = False
    json: bool = False
    env: Environment = field(default_factory=Environment.detect)  # read once per command

    def settings(self, mapping: str | None = None) -> Settings:
        from kprov.config import resolve_settings

        return resolve_settings(
            config_option=self.config, profile_option=self.profile, mapping_option=mapping
        )


def exit_code_for(
    *,
    error: KprovError | None = None,
    result: RunResult | None = None,
    plan: Plan | None = None,
    detailed: bool = False,
    unrecorded: bool = False,
    shown: Shown | None = None,
) -> ExitCode:
    """The exit code of a command, decided here and nowhere else (docs/troubleshooting.md:
    Exit codes).

    An error that stopped the command wins; then a guard that withheld items (6: they wait
    in a hold, the rest was applied); then lines that failed or were not attempted (1);
    then a run the ledger could not record (*unrecorded*: 9; its journals are complete). A
    plan shown with --detailed-exitcode says whether it has changes (10) or not (0). A data
    command's value (*shown*) that reports failed items (`mapping verify`'s mismatches): 1.
    """
    if error is not None:
        return error.exit_code
    if shown is not None:
        return ExitCode.ITEM_FAILURES if shown.failed else ExitCode.OK
    if result is not None:
        if result.stopped_by is not None:
            return result.stopped_by.exit_code
        if result.withheld:
            return ExitCode.SAFETY_LIMIT
        if result.failures():
            return ExitCode.ITEM_FAILURES
        return ExitCode.STORAGE if unrecorded else ExitCode.OK
    if plan is not None and detailed and plan.has_changes:
        return ExitCode.CHANGES_PENDING
    return ExitCode.OK


def command_group(help_text: str) -> typer.Typer:
    """A sub-command group with the house settings (plain grouped help, no locals)."""
    from kprov.cli.help import KprovTyper

    return KprovTyper(help=help_text, no_args_is_help=True)


def globals_of(ctx: typer.Context) -> Globals:
    root = ctx.find_root()
    if not isinstance(root.obj, Globals):
        root.obj = Globals()
    return root.obj


def make_view(g: Globals, *, cron_quiet: bool = False) -> View:
    from kprov.cli.render import View

    return View(
        json=g.json,
        quiet=g.quiet,
        verbose=g.verbose,
        no_color=g.no_color,
        env=g.env,
        cron_quiet=cron_quiet,
    )


def command_name(ctx: typer.Context) -> str:
    """`accounts import`, `sync`, ...: the words after `kprov`."""
    words = []
    node: Any = ctx
    while node.parent is not None:
        words.append(node.info_name or "")
        node = node.parent
    return " ".join(reversed(words))


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """The edge of every command: the value a data command returns is shown by the one
    renderer and scored by ``exit_code_for``; expected errors become their exit code and
    advice (and the envelope with --json)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = next((a for a in (*args, *kwargs.values()) if hasattr(a, "find_root")), None)
        g = globals_of(ctx) if ctx is not None else Globals()  # type: ignore[arg-type]
        name = command_name(ctx) if ctx is not None else ""  # type: ignore[arg-type]
        try:
            value = func(*args, **kwargs)
            if value is not None:
                from kprov.cli.render import show_value

                exit_with(show_value(value, make_view(g), name))  # type: ignore[arg-type]
            return value
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(int(ExitCode.OUTPUT_CLOSED)) from None
        except (KprovError, typer.Abort, OSError) as caught:
            from kprov.cli.render import show_error

            error = as_kprov_error(caught)
            show_error(error, make_view(g), name)
            raise typer.Exit(int(exit_code_for(error=error))) from None
        except KeyboardInterrupt:
            sys.stderr.write("kprov: interrupted; what was done is recorded, rerun to resume\n")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper


def _silence_stdout() -> None:
    """The reader closed the pipe (`kprov mapping export | head`): that is not an error to
    report, and the interpreter's final flush must not fail again (Python's documented
    remedy: point stdout at /dev/null)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (tests): nothing will flush it


def warn(text: str) -> None:
    """A ``kprov: warning:`` line on stderr, one line whatever *text* holds."""
    from kprov.outside_text import printable

    sys.stderr.write(f"kprov: warning: {printable(text)}\n")


def exit_with(code: ExitCode) -> None:
    """End the command with *code* (chosen by ``exit_code_for``)."""
    if code != ExitCode.OK:
        raise typer.Exit(int(code))


def as_kprov_error(caught: BaseException) -> KprovError:
    """An exception that ends a command, as the error it is reported as. Declining a
    confirmation (or Ctrl-C, Ctrl-D at its prompt) is "not confirmed; nothing was sent" (exit
    2, with or without --json); an output that cannot be written (a full disk) is a storage
    failure (exit 9), never a traceback."""
    from kprov.errors import InputError, Interrupted, StorageError

    if isinstance(caught, KprovError):
        return caught
    if isinstance(caught, typer.Abort):
        return InputError(NOT_CONFIRMED)
    if isinstance(caught, KeyboardInterrupt):
        return Interrupted("interrupted")
    if isinstance(caught, OSError):
        return StorageError(f"cannot write kprov's output: {caught.strerror or caught}")
    return KprovError(f"internal error: {type(caught).__name__}")


NOT_CONFIRMED = "not confirmed; nothing was sent"


def confirm(question: str, env: Environment, *, yes: bool) -> None:
    """Ask on a terminal, on stderr (stdout stays the command's output: its JSON, its
    table); without a terminal, refuse unless --yes, so cron never hangs on a prompt. A "no"
    is ``typer.Abort``: "not confirmed; nothing was sent", exit 2."""
    if yes:
        return
    from kprov.errors import InputError
    from kprov.outside_text import printable

    if not env.stdin_isatty:  # say what was not confirmed: the question's first line
        asked = printable(question.split("\n", 1)[0].rstrip(":"))
        raise InputError(
            f"refusing without confirmation: {asked}",
            hint="Pass --yes when running without a terminal.",
        )

    typer.confirm(printable(question, keep="\n"), abort=True, err=True)  # it may quote ids
