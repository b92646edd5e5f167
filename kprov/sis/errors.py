"""What can go wrong with a pull, as kprov's exit codes: 4 for the wire, 2 for the data, 3 for
credentials. Every message names the URL (and the page) it is about; none holds a secret."""

from __future__ import annotations

from kprov.errors import ConfigError, ExitCode, InputError, KprovError

RERUN = (
    "Nothing was sent from this source and nothing was removed; the next run pulls it again "
    "from the start."
)


class SisWireError(KprovError):
    """The SIS did not give a complete, well-formed collection (exit 4): no answer, an error
    status, an answer without its collection, totals that move, records that move between
    pages. A rerun may well succeed."""

    exit_code = ExitCode.API

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint or RERUN)


class SisCredentialsRefused(ConfigError):
    """The SIS refused the client id and secret (exit 3): retrying cannot help."""


def data_error(url: str, problems: list[str]) -> InputError:
    """The SIS answered completely, but what it holds cannot be provisioned as it is (exit 2)."""
    shown = problems[:50] + ([f"... and {len(problems) - 50} more"] if len(problems) > 50 else [])
    return InputError(
        f"{len(problems)} problem(s) in what {url} holds; nothing was sent from this source:",
        problems=shown,
        hint="Fix these records in the SIS (or ask its administrator to), then run again.",
    )
