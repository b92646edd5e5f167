"""Typed API errors carrying status, the server's message and its error_id.

A refused write (422, or an undocumented 409) is classified narrowly into one subclass of
``Unprocessable``; only the caller may decide what a class means for its item, and anything
not recognised stays a plain ``Unprocessable`` (fail safe: the item stays pending).
"""

from __future__ import annotations

from enum import StrEnum

from kprov.errors import ExitCode, KprovError


class ApiError(KprovError):
    """The API answered with an error, or could not be reached.

    ``outcome_unknown`` is True when the request may have been applied even though no success
    answer arrived (timeouts, dropped connections, 5xx, malformed answers): callers must
    reconcile, not assume.
    """

    exit_code = ExitCode.API
    # True when an earlier attempt of the same call may have been applied (its answer was
    # lost): a refusal like "already registered" may then describe kprov's own request.
    resent_after_unknown = False

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


class TokenEndpointNotFound(ApiError):
    """404 from the token endpoint: the base (or token) URL is wrong, for every request alike."""

    exit_code = ExitCode.CONFIG


class TokenRefused(ApiError):
    """A user-scoped token was refused (usually: no account has that external id)."""


class PermissionDenied(ApiError):
    """403: the token used may not do this; retrying with the same token cannot help."""


class NotFound(ApiError):
    """404: no such resource, or not visible to this token. Retrying cannot help."""

    exit_code = ExitCode.NOT_FOUND


class Refusal(StrEnum):
    """What a 422/409 refusal means, as far as its text says; UNKNOWN when it is unclear."""

    DUPLICATE_ACCOUNT = "duplicate_account"  # an account with this external id exists
    ALREADY_REGISTERED = "already_registered"  # this account is registered in this instance
    ENTITY_LIMIT = "entity_limit"  # 500 registrations per instance/account, 256-char fields
    INSTANCE_UNAVAILABLE = "instance_unavailable"  # unknown, closed or deleted instance
    ACCOUNT_UNAVAILABLE = "account_unavailable"  # unknown or disabled account
    INVALID_FIELD = "invalid_field"  # a field the API will not take as sent
    UNKNOWN = "unknown"


class Unprocessable(ApiError):
    """422 (or an undocumented 409) that no narrower class recognised: a failure, pending."""

    refusal = Refusal.UNKNOWN


class DuplicateAccount(Unprocessable):
    """An account with this external id already exists (recover its id; never re-create)."""

    refusal = Refusal.DUPLICATE_ACCOUNT


class AlreadyRegistered(Unprocessable):
    """This account is already registered in this instance.

    ``registered_type`` is the type the answer names ("learner"/"instructor"), or None when
    the answer does not say; the caller compares it with the type it asked for.
    """

    refusal = Refusal.ALREADY_REGISTERED
    registered_type: str | None = None


class EntityLimitReached(Unprocessable):
    refusal = Refusal.ENTITY_LIMIT


class InstanceUnavailable(Unprocessable):
    refusal = Refusal.INSTANCE_UNAVAILABLE


class AccountUnavailable(Unprocessable):
    refusal = Refusal.ACCOUNT_UNAVAILABLE


class InvalidField(Unprocessable):
    refusal = Refusal.INVALID_FIELD


REFUSAL_CLASSES: dict[Refusal, type[Unprocessable]] = {
    cls.refusal: cls
    for cls in (
        Unprocessable,
        DuplicateAccount,
        AlreadyRegistered,
        EntityLimitReached,
        InstanceUnavailable,
        AccountUnavailable,
        InvalidField,
    )
}


class MalformedAnswer(ApiError):
    """The answer does not have the documented shape (not JSON, ids that are not UUIDs, a
    batch whose items do not match its requests...). Whatever it said is not recorded; the
    request may still have been applied, so the outcome is unknown."""

    def __init__(self, message: str, **kwargs: object) -> None:
        kwargs.setdefault("outcome_unknown", True)
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class RedirectRefused(ApiError):
    """The API answered with a redirect: kprov never follows one with credentials."""


class ServerWaitTooLong(ApiError):
    """The server asked kprov to wait longer than the cap (Retry-After, rate delay)."""


class RateLimited(ApiError):
    """429 after every retry was spent."""


class ServerKeptRefusing(ApiError):
    """No request has succeeded for the run's whole waiting budget (429s, 503s, no answers):
    the run stops instead of holding the state lock for ever."""


class ServerError(ApiError):
    """5xx after every retry was spent; the change may or may not have been applied."""


class NetworkError(ApiError):
    """No answer (connection refused, reset, timed out, deadline passed) after every retry."""


def error_for_status(status: int) -> type[ApiError]:
    """One place that maps an HTTP status to the exception class callers catch.

    422/409 map to the generic ``Unprocessable`` here; ``api.answers.classify_refusal``
    narrows it from the answer's text.
    """
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
