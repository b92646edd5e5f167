"""Rendering and the one place where errors become exit codes.

Commands return plain results; this module shows them with Rich on a terminal, as plain lines
under cron, or as JSON with ``--json``. Expected failures (``KprovError``) are printed as
advice and mapped to their documented exit code; they never show a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from kprov.errors import ExitCode, KprovError

if TYPE_CHECKING:
    from rich.console import Console

    from kprov.config import Settings

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Globals:
    """Options of the root command, shared by every sub-command through ``ctx.obj``."""

    config: str | None = None
    profile: str | None = None
    debug: bool = False
    quiet: bool = False
    verbose: bool = False
    no_color: bool = False

    def settings(self, mapping: str | None = None) -> Settings:
        from kprov.config import resolve_settings

        return resolve_settings(
            config_option=self.config, profile_option=self.profile, mapping_option=mapping
        )


def command_group(help_text: str) -> typer.Typer:
    """A sub-command group with the house settings (help as Markdown, no locals in traces)."""
    from kprov.cli.help import KprovTyper

    return KprovTyper(help=help_text, no_args_is_help=True)


def globals_of(ctx: typer.Context) -> Globals:
    root = ctx.find_root()
    if not isinstance(root.obj, Globals):
        root.obj = Globals()
    return root.obj


def color_allowed(no_color: bool) -> bool:
    return not no_color and "NO_COLOR" not in os.environ


def make_console(*, stderr: bool = False, no_color: bool = False) -> Console:
    from rich.console import Console

    return Console(
        stderr=stderr,
        no_color=not color_allowed(no_color),
        highlight=False,
        soft_wrap=True,
    )


def is_terminal(stream: Any = None) -> bool:
    stream = stream or sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def print_error(error: KprovError, *, as_json: bool = False) -> None:
    """What happened, then what to do: on stderr (and as JSON on stdout with --json)."""
    if as_json:
        emit_json({"ok": False, "exit_code": int(error.exit_code), "error": error_json(error)})
    lines = str(error).splitlines() or [type(error).__name__]
    sys.stderr.write(f"kprov: error: {lines[0]}\n")
    for line in lines[1:]:
        sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


def error_json(error: KprovError) -> dict[str, Any]:
    data: dict[str, Any] = {"type": type(error).__name__, "message": error.message}
    if error.hint:
        data["hint"] = error.hint
    for attribute in ("status", "error_id", "problems"):
        value = getattr(error, attribute, None)
        if value:
            data[attribute] = value
    return data


def emit_json(data: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected errors into their exit code and a message; Ctrl-C into exit 130."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        as_json = bool(kwargs.get("json_output"))
        try:
            return func(*args, **kwargs)
        except KprovError as error:
            print_error(error, as_json=as_json)
            raise typer.Exit(int(error.exit_code)) from None
        except KeyboardInterrupt:
            sys.stderr.write("kprov: interrupted; what was done is saved, rerun to resume\n")
            raise typer.Exit(130) from None

    return wrapper


def exit_with(code: ExitCode) -> None:
    if code != ExitCode.OK:
        raise typer.Exit(int(code))


def finish_run(stopped_by: KprovError | None, *, failed: bool) -> None:
    """End a provisioning command: the stopping error's code (and how to resume), else 1 when
    items failed, else 0."""
    if stopped_by is not None:
        print_error(stopped_by)
        sys.stderr.write(
            "kprov: every result received was saved; rerun the same command to resume.\n"
        )
        exit_with(stopped_by.exit_code)
    exit_with(ExitCode.ITEM_FAILURES if failed else ExitCode.OK)


class Progress:
    """Items-done reporting: a Rich bar on a terminal, periodic plain lines otherwise."""

    def __init__(self, label: str, total: int, *, enabled: bool, plain_every: float = 10.0):
        self.label = label
        self.total = total
        self.enabled = enabled and total > 0
        self.done = 0
        self._plain_every = plain_every
        self._last_plain = time.monotonic()
        self._started = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled and is_terminal():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=make_console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, rate="")
        return self

    def advance(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        elapsed = max(1e-6, time.monotonic() - self._started)
        rate = f"{self.done / elapsed:,.0f} items/s"
        if self._bar is not None:
            self._bar.update(self._task, advance=count, rate=rate)
            return
        now = time.monotonic()
        if now - self._last_plain >= self._plain_every:
            self._last_plain = now
            sys.stderr.write(
                f"kprov: {self.label}: {self.done}/{self.total} "
                f"({100 * self.done // max(1, self.total)}%), {rate}\n"
            )
            sys.stderr.flush()

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def render_counts(title: str, rows: list[tuple[str, int]], *, no_color: bool) -> None:
    """A summary table on a terminal; one plain line otherwise (cron mail stays short)."""
    if is_terminal(sys.stdout):
        from rich.table import Table

        table = Table(title=title, show_header=True)
        table.add_column("outcome")
        table.add_column("count", justify="right")
        for name, count in rows:
            table.add_row(name, f"{count:,}")
        make_console(no_color=no_color).print(table)
    else:
        summary = ", ".join(f"{name} {count}" for name, count in rows)
        sys.stdout.write(f"{title}: {summary}\n")
