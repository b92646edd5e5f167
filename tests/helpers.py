"""Helpers for running the CLI in tests."""

from __future__ import annotations

import weakref
from typing import Any

import typer
import typer.testing
from typer.testing import CliRunner, Result

from kprov.cli.environment import Environment
from kprov.cli.main import app

# Keyed by the app itself, weakly: an id() is reused once its app is freed, and
# `build_app(word)` makes a fresh app per word, so an id key handed one word's tree to another.
_built: weakref.WeakKeyDictionary[typer.Typer, dict[tuple[int, int], Any]] = (
    weakref.WeakKeyDictionary()
)


def _command_of(typer_instance: typer.Typer) -> Any:
    """Typer rebuilds the whole click command tree on every invoke (~40 ms for kprov's 50
    commands): hundreds of in-process runs made that a fifth of the suite. The tree
    changes only when a test adds a command to it, so it is built once per app and shape."""
    shapes = _built.setdefault(typer_instance, {})
    shape = (len(typer_instance.registered_groups), len(typer_instance.registered_commands))
    built = shapes.get(shape)
    if built is None:
        built = shapes[shape] = typer.main.get_command(typer_instance)
    return built


typer.testing._get_command = _command_of

TERMINAL = Environment(
    stdin_isatty=True, stdout_isatty=True, stderr_isatty=True, width=100, no_color=True
)  # a person at a terminal (without colour, so output compares as text)


def run_cli(*args: str, input: str | None = None, env: Environment | None = None) -> Result:
    """Run `kprov ARGS` in-process; the result has exit_code, stdout and stderr. *env*: the
    terminal the command believes it runs on (default: what the test runner's streams are,
    no terminal)."""
    return CliRunner().invoke(app, list(args), input=input, catch_exceptions=False, obj=env)


def record_issued_tokens(box: Any) -> list[str]:
    """Every access and refresh token the sandbox *box* issues from now on (to prove none of
    them reaches any output)."""
    issued: list[str] = []
    original = box.store.issue_token

    def recording(basic: str | None, form: dict[str, str]) -> dict[str, Any]:
        answer = original(basic, form)
        issued.extend([answer["access_token"], answer["refresh_token"]])
        return dict(answer)

    box.store.issue_token = recording
    return issued
