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
