"""The terminal a command runs on, read once (httpie's ``context.Environment``).

Whether stdin, stdout and stderr are terminals, how wide the terminal is, and whether
colour is wanted (``NO_COLOR``) are facts of the process, not of a module: they are read
here, once per command (the root command's callback), and passed on. No other module asks
``isatty()`` or reads ``NO_COLOR``; tests build an ``Environment`` and hand it to the command
(``CliRunner().invoke(app, args, obj=Environment(...))``) instead of patching ``sys.std*``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_WIDTH = 100  # columns, when the width cannot be known (a pipe, a test)


@dataclass(frozen=True)
class Environment:
    """The terminal facts of one command. The defaults describe cron: nothing is a terminal."""

    stdin_isatty: bool = False
    stdout_isatty: bool = False
    stderr_isatty: bool = False
    width: int = DEFAULT_WIDTH
    no_color: bool = False  # NO_COLOR is set (https://no-color.org): no colour whatever else
    terminal_fds: tuple[int, ...] = ()  # stdout/stderr descriptors on a terminal (SIGHUP)

    @classmethod
    def detect(
        cls, streams: tuple[Any, Any, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Environment:
        """The facts of this process: its standard streams (as Python sees them now, so a
        test runner's captured streams are no terminals) and its environment."""
        stdin, stdout, stderr = streams or (sys.stdin, sys.stdout, sys.stderr)
        environ = os.environ if environ is None else environ
        return cls(
            stdin_isatty=_isatty(stdin),
            stdout_isatty=_isatty(stdout),
            stderr_isatty=_isatty(stderr),
            width=shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns,
            no_color="NO_COLOR" in environ,
            terminal_fds=tuple(fd for fd in (1, 2) if _fd_isatty(fd)),
        )

    def colour(self, no_color_option: bool = False) -> bool:
        """Colour is used unless --no-color or NO_COLOR says otherwise."""
        return not (no_color_option or self.no_color)

    def console(self, *, stderr: bool = False, no_color: bool = False) -> Console:
        """A Rich console for stdout (or stderr) that believes this environment, not its own
        look at the streams."""
        from rich.console import Console

        return Console(
            stderr=stderr,
            force_terminal=self.stderr_isatty if stderr else self.stdout_isatty,
            width=self.width,
            no_color=not self.colour(no_color),
            highlight=False,
            soft_wrap=True,
        )


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no stream, or a closed one
        return False


def _fd_isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
