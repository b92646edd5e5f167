"""Helpers for running the CLI in tests."""

from __future__ import annotations

from typer.testing import CliRunner

from kprov.cli.main import app


def run_cli(*args: str, input: str | None = None) -> object:
    """Run `kprov ARGS` in-process; the result has exit_code, stdout and stderr."""
    return CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)
