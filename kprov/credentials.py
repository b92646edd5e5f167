"""API secret (and id-hashing key) resolution: environment -> keyring -> one clear error.

Non-interactive runs never prompt, so cron never hangs. A keyring without a usable backend
(every headless Linux box) is reported as advice, never as a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from kprov.config import SANDBOX_API_SECRET, Settings
from kprov.errors import ConfigError

ENV_API_SECRET = "KPROV_API_SECRET"
ENV_ID_KEY = "KPROV_ID_KEY"
KEYRING_SERVICE = "kprov"


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks with locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('<hidden>')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def _no_backend_message(profile: str, env_name: str, what: str) -> ConfigError:
    return ConfigError(
        f"no {what} for profile {profile!r}: this machine has no usable keyring backend "
        "(normal on headless servers and cron jobs), so kprov cannot look it up there.",
        hint=(
            f"Set {env_name} in the job's environment (for cron, in a file readable only by "
            "the job's user), or run `kprov auth login` on a machine with a desktop keyring."
        ),
    )


def _keyring_get(user: str) -> str | None:
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    try:
        return keyring.get_password(KEYRING_SERVICE, user)
    except NoKeyringError:
        raise
    except (KeyringError, RuntimeError, OSError):
        return None


def resolve_api_secret(settings: Settings, env: Mapping[str, str] | None = None) -> Secret:
    """Find the API secret for the profile, or explain exactly how to provide one."""
    env = os.environ if env is None else env
    if env.get(ENV_API_SECRET):
        return Secret(env[ENV_API_SECRET])
    name = settings.profile.name
    if settings.is_builtin_sandbox:
        return Secret(SANDBOX_API_SECRET)
    from keyring.errors import NoKeyringError

    try:
        stored = _keyring_get(name)
    except NoKeyringError:
        raise _no_backend_message(name, ENV_API_SECRET, "API secret") from None
    if stored:
        return Secret(stored)
    raise ConfigError(
        f"no API secret for profile {name!r}.",
        hint=(
            f"Run `kprov auth login` to store it in the keyring, or set {ENV_API_SECRET} "
            "(cron boxes have no keyring)."
        ),
    )


def store_api_secret(profile: str, secret: Secret) -> None:
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    try:
        keyring.set_password(KEYRING_SERVICE, profile, secret.reveal())
    except NoKeyringError:
        raise _no_backend_message(
            profile, ENV_API_SECRET, "place to store the API secret"
        ) from None
    except KeyringError as exc:
        raise ConfigError(
            f"the keyring refused to store the secret for profile {profile!r}: "
            f"{type(exc).__name__}",
            hint=f"Unlock the keyring and retry, or set {ENV_API_SECRET} instead.",
        ) from None


def delete_api_secret(profile: str) -> bool:
    """Remove the stored secret; False when there was none."""
    import keyring
    from keyring.errors import KeyringError, NoKeyringError, PasswordDeleteError

    try:
        keyring.delete_password(KEYRING_SERVICE, profile)
    except PasswordDeleteError:
        return False
    except NoKeyringError:
        raise _no_backend_message(profile, ENV_API_SECRET, "keyring to delete from") from None
    except KeyringError as exc:
        raise ConfigError(f"the keyring refused the deletion: {type(exc).__name__}") from None
    return True


def resolve_id_key(settings: Settings, env: Mapping[str, str] | None = None) -> Secret:
    """The per-profile HMAC key that --hash-ids uses to anonymize SIS ids."""
    env = os.environ if env is None else env
    if env.get(ENV_ID_KEY):
        return Secret(env[ENV_ID_KEY])
    from keyring.errors import NoKeyringError

    name = settings.profile.name
    try:
        stored = _keyring_get(f"{name}:id-key")
    except NoKeyringError:
        raise _no_backend_message(name, ENV_ID_KEY, "id-hashing key") from None
    if stored:
        return Secret(stored)
    raise ConfigError(
        f"no id-hashing key for profile {name!r}; --hash-ids needs one.",
        hint=(
            f"Set {ENV_ID_KEY} to a long random value and keep it forever: the same SIS id "
            "must always hash to the same external id, so losing the key loses the join."
        ),
    )
