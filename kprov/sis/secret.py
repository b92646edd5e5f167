"""The SIS client secret of a source: from a private file, an environment variable or the keyring.

Never from the manifest itself (a manifest is copied, committed, mailed). The rules are those of
the API secret (``kprov.credentials``): a file must be private (0600), one trailing newline is
ignored, a value with a control character is refused, nothing prompts (cron never hangs), and
a keyring without a backend is advice, not a crash.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kprov.credentials import KEYRING_SERVICE, read_secret_file
from kprov.errors import ConfigError
from kprov.rosters.api_source import ApiSource
from kprov.secret import Secret


def resolve_sis_secret(source: ApiSource, env: Mapping[str, str] | None = None) -> Secret:
    """The client secret of *source*; ConfigError (exit 3) naming where it looked and the fix."""
    env = os.environ if env is None else env
    if source.secret_file:
        path = Path(source.secret_file)
        label = f"secret_file {path} ({source.where})"
        return _checked(read_secret_file(path, label, check_mode=True), label)
    if source.secret_env:
        value = env.get(source.secret_env, "")
        label = f"secret_env {source.secret_env} ({source.where})"
        if not value:
            raise ConfigError(
                f"{label}: the variable is not set or empty",
                hint=f"Export {source.secret_env} in the job's environment (a cron line, a "
                "systemd EnvironmentFile=), or use secret_file: with a file only the job's "
                "user can read.",
            )
        return _checked(value, label)
    return _from_keyring(source)


def _from_keyring(source: ApiSource) -> Secret:
    from keyring.errors import KeyringError, NoKeyringError

    user = source.keyring_user
    fix = (
        f"Give the source secret_file: (a file only the job's user can read, chmod 600) or "
        f"secret_env: NAME; on a desktop, store it with `keyring set {KEYRING_SERVICE} {user}`."
    )
    try:
        import keyring

        stored = keyring.get_password(KEYRING_SERVICE, user)
    except NoKeyringError:
        raise ConfigError(
            f"no secret for the OneRoster source {source.url} ({source.where}): it names no "
            "secret_file or secret_env, and this machine has no keyring backend (normal on "
            "servers and under cron)",
            hint=fix,
        ) from None
    except (KeyringError, RuntimeError, OSError) as exc:
        raise ConfigError(
            f"the keyring did not answer ({type(exc).__name__}) for the OneRoster source "
            f"{source.url} ({source.where})",
            hint=fix,
        ) from None
    if not stored:
        raise ConfigError(
            f"no secret for the OneRoster source {source.url} ({source.where}): no "
            f"secret_file or secret_env, and nothing in the keyring for service "
            f"{KEYRING_SERVICE}, user {user}",
            hint=fix,
        )
    return _checked(stored, f"the keyring entry {user}")


def _checked(value: str, label: str) -> Secret:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(
            f"{label}: the secret contains a line break or control character",
            hint="Only one trailing newline is ignored; rewrite it as a single line.",
        )
    return Secret(value)
