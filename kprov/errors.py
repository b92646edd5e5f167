"""One exception hierarchy, mapped to the documented exit codes at the CLI edge only."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Stable process exit codes; documented in docs/troubleshooting.md and pinned by tests."""

    OK = 0
    ITEM_FAILURES = 1  # the run finished; some items failed and stay pending for the next run
    INPUT = 2  # bad usage or input files: nothing was sent
    CONFIG = 3  # configuration or credentials
    API = 4  # the API or the network failed: a rerun resumes where this one stopped
    LOCKED = 5  # another kprov run holds the state lock
    SAFETY_LIMIT = 6  # a guard held part of the run (in a hold to approve); the rest was applied
    NOT_FOUND = 7  # the API says the thing named does not exist: fix the name, do not retry
    STALE_PLAN = 8  # a saved plan or a hold no longer applies: nothing was sent
    STORAGE = 9  # local files could not be written (disk full, read-only, permissions)
    CHANGES_PENDING = 10  # only with --plan --detailed-exitcode: the plan has changes to apply
    INTERRUPTED = 130  # Ctrl-C / SIGINT: what was answered is recorded; rerun resumes
    OUTPUT_CLOSED = 141  # the reader of stdout went away (`| head`): 128 + SIGPIPE, silently


MEANINGS = {
    ExitCode.OK: "done",
    ExitCode.ITEM_FAILURES: "some items failed; they stay pending for the next run",
    ExitCode.INPUT: "invalid input; nothing was sent",
    ExitCode.CONFIG: "configuration or credentials refused",
    ExitCode.API: "the API or the network failed; a rerun resumes",
    ExitCode.LOCKED: "another kprov run holds the state lock",
    ExitCode.SAFETY_LIMIT: "a guard held part of the run; the rest was applied",
    ExitCode.NOT_FOUND: "the API says what was named does not exist",
    ExitCode.STALE_PLAN: (
        "the saved plan or hold no longer applies (the local state, the profile or the API "
        "changed, or a later run superseded the hold); nothing was sent"
    ),
    ExitCode.STORAGE: "local files could not be written",
    ExitCode.CHANGES_PENDING: "the plan has changes",
    ExitCode.INTERRUPTED: "interrupted; a rerun resumes",
    ExitCode.OUTPUT_CLOSED: "the reader of the output went away",
}


def meaning(code: int) -> str:
    """What an exit code means, in words (notifications, `kprov history`)."""
    try:
        return MEANINGS[ExitCode(code)]
    except ValueError:
        return f"exit {code}"


class KprovError(Exception):
    """An expected failure: printed as advice (what happened, what to do), never a traceback."""

    exit_code: ExitCode = ExitCode.API

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class InputError(KprovError):
    """Bad command-line usage or invalid input files; nothing was sent."""

    exit_code = ExitCode.INPUT

    def __init__(
        self, message: str, *, hint: str | None = None, problems: list[str] | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or []

    def __str__(self) -> str:
        lines = [self.message, *(f"  {p}" for p in self.problems)]
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)


class ConfigError(KprovError):
    """Configuration or credentials are missing or wrong."""

    exit_code = ExitCode.CONFIG


class LockHeldError(KprovError):
    """Another kprov process holds the state lock."""

    exit_code = ExitCode.LOCKED


class StalePlanError(KprovError):
    """A saved plan was made from local state that has changed since; nothing was sent."""

    exit_code = ExitCode.STALE_PLAN


class StorageError(KprovError):
    """A local file could not be read or written safely (ENOSPC, EFBIG, EACCES, EROFS, ...).

    The message names the file and what to do. Whatever was recorded before stays recorded.
    """

    exit_code = ExitCode.STORAGE


class Interrupted(KprovError):
    """The operator asked the run to stop (Ctrl-C, SIGINT, SIGTERM, SIGHUP) before this was sent."""

    exit_code = ExitCode.INTERRUPTED
    # Whether a request that was being sent may have been applied; True unless the raiser
    # knows it was not (the transport says so for the call it was sending).
    outcome_unknown = True
