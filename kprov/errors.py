"""One exception hierarchy, mapped to the documented exit codes at the CLI edge only."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Stable process exit codes; documented in README.md and pinned by tests."""

    OK = 0
    ITEM_FAILURES = 1
    INPUT = 2
    CONFIG = 3
    API = 4
    LOCKED = 5
    SAFETY_LIMIT = 6


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


class SafetyLimitError(KprovError):
    """A safety limit (such as --max-removals) stopped the run."""

    exit_code = ExitCode.SAFETY_LIMIT
