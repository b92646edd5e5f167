"""Plain-text help with options grouped by panel, and arguments named the Unix way.

Rich-rendered help costs a tenth of a second of imports on every `--help`; plain click help
is instant, pastes cleanly into tickets and READMEs, and reads well in screen readers. The
options keep their groups (Input, Run, Output, ...) as plain sections; arguments read
`MANIFEST`, `[ROSTER]...`-style (`NAME`, optional in brackets, repeatable with `...`) in the
usage line and in the help, not Typer's `{name}`. The man pages use the same records
(``grouped_help``). (Typer vendors its own click, so the click types are not named here.)
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

GENERAL = "Options"


def argument_name(param: Any, *, usage: bool = False) -> str:
    """An argument as help writes it: its metavar (else its name) in capitals, `...` when it
    repeats, and in the usage line in brackets when it may be left out."""
    name = str(param.metavar or (param.name or "").upper())
    many = "..." if param.nargs != 1 and not name.endswith("...") else ""
    if usage and not param.required and not name.startswith("["):
        name = f"[{name}]"
    return name + many


def grouped_help(command: Any, ctx: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section, [(term, description)]) in the order --help shows them: the arguments, the
    general options, then each panel in the order its first option is declared."""
    arguments: list[tuple[str, str]] = []
    groups: dict[str, list[tuple[str, str]]] = {GENERAL: []}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if param.param_type_name == "argument":
            arguments.append((argument_name(param), record[1]))
            continue
        panel = getattr(param, "rich_help_panel", None) or GENERAL
        groups.setdefault(panel, []).append(record)
    sections = [("Arguments", arguments), *groups.items()]
    return [(title, records) for title, records in sections if records]


def format_grouped_options(command: Any, ctx: Any, formatter: Any) -> None:
    for title, records in grouped_help(command, ctx):
        with formatter.section(title):
            formatter.write_dl(records)


def usage_pieces(command: Any, ctx: Any) -> list[str]:
    """`[OPTIONS] MANIFEST`, `[OPTIONS] [ROSTER]...`: click's usage line, arguments named as
    ``argument_name`` says."""
    pieces = [command.options_metavar] if command.options_metavar else []
    for param in command.get_params(ctx):
        if param.param_type_name == "argument":
            pieces.append(argument_name(param, usage=True))
        else:
            pieces.extend(param.get_usage_pieces(ctx))
    return pieces


class GroupedHelpCommand(TyperCommand):
    def format_options(self, ctx: Any, formatter: Any) -> None:
        format_grouped_options(self, ctx, formatter)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return usage_pieces(self, ctx)


class GroupedHelpGroup(TyperGroup):
    def format_options(self, ctx: Any, formatter: Any) -> None:
        format_grouped_options(self, ctx, formatter)
        self.format_commands(ctx, formatter)


class KprovTyper(typer.Typer):
    """A Typer whose commands and groups print grouped plain help."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", GroupedHelpGroup)
        kwargs.setdefault("rich_markup_mode", None)
        kwargs.setdefault("pretty_exceptions_show_locals", False)
        kwargs.setdefault(
            "context_settings", {"help_option_names": ["-h", "--help"], "max_content_width": 100}
        )
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", GroupedHelpCommand)
        return super().command(*args, **kwargs)


GLOBAL_FLAGS = frozenset({"--json", "--debug", "--verbose", "-v", "--quiet", "-q", "--no-color"})
GLOBAL_WITH_VALUE = frozenset({"--profile", "-p", "--config"})


def _leaf(group: Any, args: list[str]) -> tuple[Any, int]:
    """The command *args* name (walking through sub-groups) and where its own words begin."""
    command, index = group, 0
    while index < len(args) and hasattr(command, "commands"):
        word = args[index]
        if word == "--":
            break
        if word.startswith("-"):
            skip = word in GLOBAL_WITH_VALUE and "=" not in word
            index += 2 if skip else 1
            continue
        found = command.commands.get(word)
        if found is None:
            break
        command, index = found, index + 1
    return command, index


def hoist_global_options(group: Any, args: list[str]) -> list[str]:
    """Move global options written after the sub-command in front of it, so
    `kprov sync x.yaml --profile p --json` means `kprov --profile p --json sync x.yaml`.
    Options the sub-command defines itself, and anything after `--`, stay where they are."""
    leaf, start = _leaf(group, args)
    own = {name for param in getattr(leaf, "params", []) for name in param.opts}
    front, hoisted, kept = args[:start], [], []
    index = start
    while index < len(args):
        word = args[index]
        if word == "--":
            kept.extend(args[index:])
            break
        name = word.split("=", 1)[0]
        needs_value = name in GLOBAL_WITH_VALUE and "=" not in word
        if name in own or name not in GLOBAL_FLAGS | GLOBAL_WITH_VALUE:
            kept.append(word)
        elif needs_value and index + 1 < len(args):
            hoisted.extend([word, args[index + 1]])
            index += 1
        elif needs_value:
            kept.append(word)  # no value follows: let the parser say so where it was written
        else:
            hoisted.append(word)
        index += 1
    return hoisted + front + kept


_invocation: list[str] = []


def invocation() -> list[str]:
    """The words this `kprov` was invoked with (after the program name), as parsed: the run
    ledger and the resume hint keep them, secrets hidden (``provision.run_record``)."""
    return list(_invocation)


class RootGroup(GroupedHelpGroup):
    """The `kprov` group: global options anywhere; usage errors (and a prompt declined
    outside a command) end through ``exit_code_for``, as the envelope too with --json."""

    def main(  # type: ignore[override]
        self, args: Any = None, prog_name: Any = None, **extra: Any
    ) -> Any:
        import sys

        from typer._click.exceptions import ClickException
        from typer.exceptions import Abort

        words = hoist_global_options(self, list(sys.argv[1:] if args is None else args))
        _invocation[:] = words
        head = words[: words.index("--")] if "--" in words else words
        json_mode = "--json" in head
        standalone = extra.pop("standalone_mode", True)
        try:
            code = super().main(words, prog_name, standalone_mode=False, **extra)
        except ClickException as error:
            if json_mode:
                from kprov.errors import InputError

                where = getattr(error, "ctx", None)  # the command reached: its words only
                _envelope(where, InputError(f"usage: {error.format_message()}"))
            error.show()
            if not standalone:
                raise
            sys.exit(error.exit_code)
        except Abort as abort:
            if not standalone:
                raise
            sys.exit(_aborted(abort, json_mode))
        if standalone:
            sys.exit(code if isinstance(code, int) else 0)
        return code


def _envelope(ctx: Any, error: Any) -> None:
    from kprov.cli.render_json import emit_json, envelope

    name = " ".join(ctx.command_path.split()[1:]) if ctx is not None else ""
    emit_json(envelope(name, error.exit_code, error))


def _aborted(abort: BaseException, json_mode: bool) -> int:
    """A Ctrl-C or a declined prompt that no command caught: the words and the exit code
    of ``output.as_kprov_error`` and ``exit_code_for`` (130, or 2: nothing was sent)."""
    import sys

    from kprov.cli.output import as_kprov_error, exit_code_for
    from kprov.outside_text import printable

    cause = abort.__cause__
    error = as_kprov_error(cause if isinstance(cause, KeyboardInterrupt) else abort)
    if json_mode:
        _envelope(None, error)
    sys.stderr.write(f"kprov: error: {printable(error.message)}\n")  # as render.show_error
    return int(exit_code_for(error=error))
