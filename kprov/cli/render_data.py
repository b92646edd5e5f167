"""What data commands return, and how the one renderer shows it (``render.show_value``).

A data command (`instances list`, `profile show`, `mapping verify`, ...) does its work and
returns a value: a ``Table`` of rows, the ``Fields`` of one thing, or a ``Message`` saying
what it did. It never looks at --json or at the terminal. The renderer shows the value as
one JSON envelope with --json; otherwise through a ``Screen``: an aligned table with a
header on a terminal, tab-separated lines under a header line in a pipe (for `cut`, `awk`
and spreadsheets), and the value's ``failed`` flag is scored by ``output.exit_code_for``.

This module is imported when the commands are (their return types name it): it imports
nothing heavy; Rich is imported only when a table reaches a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from kprov.outside_text import printable

if TYPE_CHECKING:
    from kprov.cli.render import View


@dataclass(frozen=True)
class Column:
    """One column of a table: which key of a row it shows, and how."""

    key: str
    title: str = ""  # on a terminal (default: the key in words); a pipe's header is the key
    text: Callable[[Any], str] | None = None  # how a value reads (default: str, "-" for None)
    wrap: bool = True  # long values fold on a terminal; short ones (times, ids) never do
    right: bool = False  # numbers line up on the right, on a terminal

    def heading(self) -> str:
        return (self.title or self.key.replace("_", " ")).upper()

    def cell(self, row: Mapping[str, Any]) -> str:
        value = row.get(self.key)
        if self.text is not None:
            return self.text(value)
        return "-" if value is None or value == "" else str(value)


class Screen:
    """Where a value is shown to people: stdout (notes on stderr), as the view says. Every
    piece of text is made printable: ids, names and server messages are outside text."""

    def __init__(self, view: View) -> None:
        self.view = view

    @property
    def terminal(self) -> bool:
        return self.view.terminal

    @property
    def quiet(self) -> bool:
        return self.view.quiet

    def line(self, text: str) -> None:
        sys.stdout.write(printable(text, keep="\t") + "\n")

    def note(self, text: str) -> None:
        """A remark beside the data (a count, a hint) on stderr; none under --quiet."""
        if not self.quiet:
            sys.stderr.write(printable(text) + "\n")

    def table(self, columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> None:
        """An aligned table with a header on a terminal; tab-separated lines under a header
        line of the keys in a pipe (a tab inside a value is escaped, so columns never shift)."""
        cells = [[printable(c.cell(row)) for c in columns] for row in rows]
        if not self.terminal:
            lines = ["\t".join(c.key for c in columns), *("\t".join(r) for r in cells)]
            sys.stdout.write("".join(line + "\n" for line in lines))
            return
        from rich.table import Table as RichTable
        from rich.text import Text

        # kubectl's and gh's look: no borders, a bold header, two spaces between columns
        table = RichTable(box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
        for index, column in enumerate(columns):
            widest = max((len(r[index]) for r in cells), default=0)
            table.add_column(
                column.heading(),
                overflow="fold",
                no_wrap=not column.wrap,
                # an id that is cut short is a wrong id: short values are never narrowed
                min_width=None if column.wrap else max(widest, len(column.heading())),
                justify="right" if column.right else "left",
            )
        for row in cells:
            table.add_row(*(Text(c) for c in row))  # Text: no markup is read from outside
        console = self.view.env.console(no_color=self.view.no_color)
        fixed = sum(
            max(len(c.heading()), *(len(r[i]) for r in cells)) + 2
            for i, c in enumerate(columns)
            if not c.wrap
        ) + 12 * sum(1 for c in columns if c.wrap)
        if fixed > console.width:  # too narrow for the ids: let lines run on, never crop
            console.width = fixed
        console.print(table)


class Shown(Protocol):
    """A data command's value: its envelope keys for --json, its view for people, and
    whether it reports failed items (exit 1, through ``exit_code_for``)."""

    @property
    def failed(self) -> bool: ...

    def data(self) -> Mapping[str, Any]: ...

    def show(self, screen: Screen) -> None: ...


@dataclass(frozen=True)
class Table:
    """Rows of one kind (`instances list`): under *name* in the envelope, beside *more*."""

    name: str
    columns: Sequence[Column]
    rows: Sequence[Mapping[str, Any]]
    more: Mapping[str, Any] = field(default_factory=dict)
    empty: str = ""  # said (on stderr) when there is no row
    note: str = ""  # a remark on stderr after the rows (a count)
    display: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None  # row -> cells
    json: Mapping[str, Any] | None = None  # the envelope's keys, when not *more* and the rows
    failed: bool = False

    def data(self) -> Mapping[str, Any]:
        if self.json is not None:
            return self.json
        return {**self.more, self.name: list(self.rows)}

    def show(self, screen: Screen) -> None:
        """The rows; without any, a pipe still gets the header line (a script's `tail -n
        +2` stays right) and a person gets the *empty* remark instead of an empty table."""
        rows = [self.display(r) for r in self.rows] if self.display else self.rows
        if rows or not screen.terminal:
            screen.table(self.columns, rows)
        if not rows and self.empty:
            screen.note(self.empty)
        if self.note:
            screen.note(self.note)


@dataclass(frozen=True)
class Fields:
    """One thing's fields (`instances get`): `key: value` lines, aligned on a terminal; in
    the envelope, the fields themselves or under *name*, beside *more*."""

    fields: Mapping[str, Any]
    title: str = ""
    name: str = ""
    more: Mapping[str, Any] = field(default_factory=dict)
    hidden: Sequence[str] = ()  # keys for JSON only
    failed: bool = False

    def data(self) -> Mapping[str, Any]:
        return {**self.more, **({self.name: dict(self.fields)} if self.name else self.fields)}

    def show(self, screen: Screen) -> None:
        shown = [(k, v) for k, v in self.fields.items() if k not in self.hidden]
        width = max((len(k) for k, _ in shown), default=0) if screen.terminal else 0
        if self.title:
            screen.line(self.title)
        indent = "  " if self.title else ""
        for key, value in shown:
            text = "-" if value is None or value == "" else str(value)
            screen.line(f"{indent}{key + ':':<{width + 1}} {text}")


@dataclass(frozen=True)
class Message:
    """What a command did (`profile add`, `instances delete`): lines for people, none under
    --quiet; its facts in the envelope. *always*: lines shown even under --quiet, before the
    others: what was asked for (`auth status`), or what went wrong (`mapping verify`)."""

    lines: Sequence[str]
    facts: Mapping[str, Any] = field(default_factory=dict)
    always: Sequence[str] = ()
    failed: bool = False
    err: bool = False  # the lines are remarks (stderr), not the command's output

    def data(self) -> Mapping[str, Any]:
        return self.facts

    def show(self, screen: Screen) -> None:
        for line in self.always:
            screen.line(line)
        if screen.quiet:
            return
        for line in self.lines:
            if self.err:
                screen.note(line)
            else:
                screen.line(line)


def said(text: str, **facts: Any) -> Message:
    """One line for people, its facts for --json."""
    return Message([text], facts)
