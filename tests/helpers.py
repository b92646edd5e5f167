"""Helpers for running the CLI in tests."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from kprov.cli.environment import Environment
from kprov.cli.main import app

TERMINAL = Environment(
    stdin_isatty=True, stdout_isatty=True, stderr_isatty=True, width=100, no_color=True
)  # a person at a terminal (without colour, so output compares as text)


def run_cli(*args: str, input: str | None = None, env: Environment | None = None) -> object:
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
