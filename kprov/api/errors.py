"""Typed API errors carrying status, the server's message and its error_id."""

from __future__ import annotations

from kprov.errors import ExitCode, KprovError


class ApiError(KprovError):
    """The API answered with an error, or could not be reached.

    ``outcome_unknown`` is True when the request may have been applied even though no success
    answer arrived (timeouts, dropped connections, 5xx): callers must reconcile, not assume.
    """

    exit_code = ExitCode.API

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_id: str | None = None,
        method: str = "",
        path: str = "",
        outcome_unknown: bool = False,
        hint: str | None = None,
    ) -> None:
        where = f"{method} {path}: " if method else ""
        code = f"HTTP {status}: " if status else ""
        ref = f" (error_id {error_id})" if error_id else ""
        super().__init__(f"{where}{code}{message}{ref}", hint=hint)
        self.status = status
        self.api_message = message
        self.error_id = error_id
        self.method = method
        self.path = path
        self.outcome_unknown = outcome_unknown


class AuthenticationError(ApiError):
    """The API key/secret was refused: a configuration problem, not a transient one."""

    exit_code = ExitCode.CONFIG


class TokenRefused(ApiError):
    """A user-scoped token was refused (usually: no account has that external id)."""


class PermissionDenied(ApiError):
    """403: the token used may not do this; retrying with the same token cannot help."""


class NotFound(ApiError):
    """404: no such resource, or not visible to this token."""


class Unprocessable(ApiError):
    """422 (or an undocumented 409): invalid field, entity limit or duplicate."""


class RateLimited(ApiError):
    """429 after every retry was spent."""


class ServerError(ApiError):
    """5xx after every retry was spent; the change may or may not have been applied."""


class NetworkError(ApiError):
    """No answer (connection refused, reset or timed out) after every retry was spent."""


def error_for_status(status: int) -> type[ApiError]:
    """One place that maps an HTTP status to the exception class callers catch."""
    if status == 403:
        return PermissionDenied
    if status == 404:
        return NotFound
    if status in (409, 422):
        return Unprocessable
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    return ApiError
