"""Plain-text help with options grouped by panel.

Rich-rendered help costs a tenth of a second of imports on every `--help`; plain click help
is instant, pastes cleanly into tickets and READMEs, and reads well in screen readers. The
options keep their groups (Input, Run, Output, ...) as plain sections. (Typer vendors its
own click, so the click types are not named here.)
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

GENERAL = "Options"


def format_grouped_options(command: Any, ctx: Any, formatter: Any) -> None:
    arguments: list[tuple[str, str]] = []
    groups: dict[str, list[tuple[str, str]]] = {GENERAL: []}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if param.param_type_name == "argument":
            arguments.append(record)
            continue
        panel = getattr(param, "rich_help_panel", None) or GENERAL
        groups.setdefault(panel, []).append(record)
    if arguments:
        with formatter.section("Arguments"):
            formatter.write_dl(arguments)
    for panel, records in groups.items():
        if records:
            with formatter.section(panel):
                formatter.write_dl(records)


class GroupedHelpCommand(TyperCommand):
    def format_options(self, ctx: Any, formatter: Any) -> None:
        format_grouped_options(self, ctx, formatter)


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
    """The `kprov` group: global options anywhere, and JSON usage errors with --json."""

    def main(  # type: ignore[override]
        self, args: Any = None, prog_name: Any = None, **extra: Any
    ) -> Any:
        import sys

        words = hoist_global_options(self, list(sys.argv[1:] if args is None else args))
        _invocation[:] = words
        head = words[: words.index("--")] if "--" in words else words
        if "--json" not in head:
            return super().main(words, prog_name, **extra)
        from typer._click.exceptions import ClickException
        from typer.exceptions import Abort

        standalone = extra.pop("standalone_mode", True)
        try:
            code = super().main(words, prog_name, standalone_mode=False, **extra)
        except ClickException as error:
            from kprov.cli.render import emit_json, envelope
            from kprov.errors import InputError

            usage = InputError(f"usage: {error.format_message()}")
            where = getattr(error, "ctx", None)  # the command reached: its words, no arguments
            name = " ".join(where.command_path.split()[1:]) if where is not None else ""
            emit_json(envelope(name, usage.exit_code, usage))
            error.show()
            if not standalone:
                raise
            sys.exit(error.exit_code)
        except Abort:
            if not standalone:
                raise
            sys.stderr.write("Aborted!\n")
            sys.exit(1)
        if standalone:
            sys.exit(code if isinstance(code, int) else 0)
        return code
