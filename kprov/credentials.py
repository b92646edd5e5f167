"""Secrets (the API secret, the --hash-ids key): where they come from, in one order.

Precedence, written once; the first source that holds a value wins:

1. ``KPROV_API_SECRET`` / ``KPROV_ID_KEY``: the value itself, in the environment;
2. ``KPROV_API_SECRET_FILE`` / ``KPROV_ID_KEY_FILE``: a file holding it (mode 0600 or stricter;
   one trailing newline is ignored); then, for the API secret, the profile's ``secret_file``
   (`kprov profile add --secret-file PATH`), read by the same rules: the environment
   overrides the config file, as for every setting;
3. ``$CREDENTIALS_DIRECTORY/kprov-api-secret`` / ``kprov-id-key``: a systemd credential
   (``LoadCredential=``);
4. the system keyring: service ``kprov``, user ``PROFILE`` / ``PROFILE:id-key``.

The built-in sandbox profile always uses its fixed, public secret, so a real secret is never
sent to whatever listens on the sandbox's port. Nothing here prompts, so cron never hangs, and
a keyring without a usable backend (every headless box) is one line of advice, not a crash.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kprov.config import SANDBOX_API_SECRET, Settings
from kprov.errors import ConfigError
from kprov.secret import Secret

ENV_API_SECRET = "KPROV_API_SECRET"
ENV_API_SECRET_FILE = "KPROV_API_SECRET_FILE"
ENV_ID_KEY = "KPROV_ID_KEY"
ENV_ID_KEY_FILE = "KPROV_ID_KEY_FILE"
ENV_CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"  # set by systemd for LoadCredential=
KEYRING_SERVICE = "kprov"
MIN_ID_KEY_BYTES = 16
MAX_SECRET_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class SecretKind:
    """One kind of secret and the names it goes by in each source."""

    what: str
    env_value: str
    env_file: str
    credential: str  # the systemd credential id
    keyring_suffix: str
    min_bytes: int = 1

    def keyring_user(self, profile: str) -> str:
        return profile + self.keyring_suffix


API_SECRET = SecretKind(
    "API secret", ENV_API_SECRET, ENV_API_SECRET_FILE, "kprov-api-secret", keyring_suffix=""
)
ID_KEY = SecretKind(
    "id-hashing key",
    ENV_ID_KEY,
    ENV_ID_KEY_FILE,
    "kprov-id-key",
    keyring_suffix=":id-key",
    min_bytes=MIN_ID_KEY_BYTES,
)


@dataclass(frozen=True)
class Source:
    """Where a secret came from, for messages and `kprov config show`; never the value."""

    kind: str  # env, file, systemd-credential, keyring, built-in
    location: str  # the variable, the path, the keyring entry


def refused_secret_hint(source: Source | None, profile: str) -> str:
    """What to do when the API refuses the key or secret: fix the source that supplied the
    secret, named in the words of `kprov config show` (a cron box has no keyring to log in to)."""
    if source is None:  # typed at `auth login`
        return "The API key or the secret you typed was refused: check both, then try again."
    where = f"{source.kind}: {source.location}"
    fixes = {
        "env": f"fix {ENV_API_SECRET}",
        "file": "fix that file",
        "systemd-credential": "fix the file its LoadCredential= line names",
        "keyring": f"store the right one with `kprov --profile {profile} auth login`",
        "built-in": "is something other than kprov's sandbox listening on its port?",
    }
    fix = fixes.get(source.kind, "fix it")
    return (
        f"The API key or secret was refused; the secret came from {where} (as `kprov config "
        f"show` says): {fix}, and check the profile's api_key."
    )


@dataclass
class Lookup:
    """The outcome of walking the sources: what was found (if anything) and what was tried."""

    secret: Secret | None = None
    source: Source | None = None
    tried: list[str] = field(default_factory=list)


def locate(
    kind: SecretKind,
    profile: str,
    env: Mapping[str, str] | None = None,
    *,
    builtin_sandbox: bool = False,
    profile_file: str | None = None,
) -> Lookup:
    """Walk the sources in the documented order (*profile_file*: the profile's
    ``secret_file``, after the variable that names a file). A source that is set but unusable
    (a file others can read, an empty file, a short key) raises ConfigError: it never falls
    through to the next source, which would hide the mistake."""
    env = os.environ if env is None else env
    lookup = Lookup()
    if builtin_sandbox and kind is API_SECRET:
        return _found(lookup, kind, SANDBOX_API_SECRET, Source("built-in", "sandbox profile"))

    if env.get(kind.env_value):
        return _found(lookup, kind, env[kind.env_value], Source("env", kind.env_value))
    lookup.tried.append(f"{kind.env_value}: not set")

    if env.get(kind.env_file):
        path = Path(env[kind.env_file]).expanduser()
        value = read_secret_file(path, f"{kind.env_file}={path}", check_mode=True)
        return _found(lookup, kind, value, Source("file", f"{path} ({kind.env_file})"))
    lookup.tried.append(f"{kind.env_file}: not set")

    if profile_file:
        path = Path(profile_file).expanduser()
        where = f"{path} (profile {profile} secret_file)"
        fix = f"Create it (chmod 600), or give profile {profile} another --secret-file."
        label = f"profile {profile}: secret_file {path}"
        value = read_secret_file(path, label, check_mode=True, missing=fix)
        return _found(lookup, kind, value, Source("file", where))
    if kind is API_SECRET:
        lookup.tried.append(f"profile {profile}: no secret_file (kprov profile add --secret-file)")

    directory = env.get(ENV_CREDENTIALS_DIRECTORY)
    if directory:
        path = Path(directory) / kind.credential
        if path.exists():
            # systemd makes credentials readable by the unit's user only; their mode bits may
            # show an ACL mask, so they are not judged by them.
            value = read_secret_file(path, f"systemd credential {kind.credential}")
            return _found(lookup, kind, value, Source("systemd-credential", str(path)))
        lookup.tried.append(
            f"systemd credential: no {path} (add LoadCredential={kind.credential}:FILE)"
        )
    else:
        lookup.tried.append(f"systemd credential {kind.credential}: no $CREDENTIALS_DIRECTORY")

    user = kind.keyring_user(profile)
    from keyring.errors import KeyringError, NoKeyringError

    try:
        stored = _keyring_get(user)
    except NoKeyringError:
        lookup.tried.append(
            "keyring: no usable keyring backend on this machine (normal on headless servers "
            "and cron jobs)"
        )
        return lookup
    except (KeyringError, RuntimeError, OSError) as exc:  # a locked or broken keyring
        lookup.tried.append(f"keyring: it did not answer ({type(exc).__name__})")
        return lookup
    if stored:
        where = f"service {KEYRING_SERVICE}, user {user}"
        return _found(lookup, kind, stored, Source("keyring", where))
    lookup.tried.append(f"keyring: nothing stored for user {user!r}")
    return lookup


def _found(lookup: Lookup, kind: SecretKind, value: str, source: Source) -> Lookup:
    _check_value(kind, value, source)
    lookup.secret, lookup.source = Secret(value), source
    return lookup


def _check_value(kind: SecretKind, value: str, source: Source) -> None:
    where = f"{source.kind} {source.location}"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ConfigError(
            f"the {kind.what} from {where} contains a line break or control character",
            hint="Only one trailing newline is ignored; rewrite it as a single line.",
        )
    size = len(value.encode("utf-8"))
    if size < kind.min_bytes:
        raise ConfigError(
            f"the {kind.what} from {where} is {size} bytes; at least {kind.min_bytes} are "
            "needed (a short key makes hashed ids reversible by brute force)",
            hint="Make one with `kprov auth id-key generate` (32 random bytes). Use it from "
            "the first sync on: a new key gives every person a new external id.",
        )


def read_secret_file(
    path: Path,
    label: str,
    *,
    check_mode: bool = False,
    missing: str = "Fix the path, or unset the variable.",
) -> str:
    """The secret held in *path*: private (when *check_mode*), UTF-8, one trailing newline
    ignored, not empty. Every refusal names the file and what to do (*missing*: when there
    is no such file)."""
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if check_mode and os.name != "nt" and mode & 0o077:
                raise ConfigError(
                    f"{label}: the file is readable or writable by group or others "
                    f"(mode {mode & 0o777:o}); kprov refuses a secret others can read",
                    hint=f"Run: chmod 600 {_shell_quote(str(path))}",
                )
            raw = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{label}: no such file", hint=missing) from None
    except IsADirectoryError:
        raise ConfigError(f"{label}: is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(
            f"{label}: permission denied",
            hint="The file must be readable by the user kprov runs as (and by no one else).",
        ) from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read it ({exc.strerror})") from None
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise ConfigError(f"{label}: over {MAX_SECRET_FILE_BYTES // 1024} KiB; not a secret")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{label}: not UTF-8 text") from None
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    if not text:
        raise ConfigError(f"{label}: the file is empty", hint="Write the secret into it.")
    return text


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _keyring_get(user: str) -> str | None:
    import keyring

    return keyring.get_password(KEYRING_SERVICE, user)


def _nothing_found(kind: SecretKind, profile: str, lookup: Lookup, hint: str) -> ConfigError:
    tried = "\n".join(f"  {line}" for line in lookup.tried)
    return ConfigError(f"no {kind.what} for profile {profile!r}; looked at:\n{tried}", hint=hint)


def resolve_api_secret(settings: Settings, env: Mapping[str, str] | None = None) -> Secret:
    """The API secret for the profile, or one error naming every place looked and the fixes."""
    return find_api_secret(settings, env)[0]


def find_api_secret(
    settings: Settings, env: Mapping[str, str] | None = None
) -> tuple[Secret, Source]:
    """The API secret and where it came from (`auth status` says which source won)."""
    name = settings.profile.name
    lookup = locate(
        API_SECRET, name, env, builtin_sandbox=settings.is_builtin_sandbox,
        profile_file=settings.profile.secret_file,
    )  # fmt: skip
    if lookup.secret is not None and lookup.source is not None:
        return lookup.secret, lookup.source
    raise _nothing_found(
        API_SECRET,
        name,
        lookup,
        hint=(
            f"On a desktop: `kprov --profile {name} auth login` stores it in the keyring. "
            f"On cron boxes and servers (no keyring): set {ENV_API_SECRET_FILE} to a file "
            f"only the job's user can read (chmod 600), or {ENV_API_SECRET}, or under systemd "
            f"LoadCredential={API_SECRET.credential}:FILE."
        ),
    )


def resolve_id_key(settings: Settings, env: Mapping[str, str] | None = None) -> Secret:
    """The per-profile HMAC key that --hash-ids uses to anonymize SIS ids."""
    name = settings.profile.name
    lookup = locate(ID_KEY, name, env)
    if lookup.secret is not None:
        return lookup.secret
    raise _nothing_found(
        ID_KEY,
        name,
        lookup,
        hint=(
            f"--hash-ids needs one: run `kprov --profile {name} auth id-key generate` (stores a "
            f"32-byte key in the keyring, or prints it once for {ENV_ID_KEY_FILE}). Keep it "
            "forever: the same SIS id must always hash to the same external id."
        ),
    )


def _no_backend(profile: str, kind: SecretKind) -> ConfigError:
    """Where the secret goes instead, for this kind of secret only: an API secret's advice
    never names the id key's variable, nor the other way round."""
    if kind is API_SECRET:
        instead = (
            f"name it once with `kprov profile add {profile} --base-url URL --api-key KEY "
            f"--secret-file FILE`, or set {kind.env_file} to its path"
        )
    else:
        instead = (
            f"set {kind.env_file} to its path (`kprov --profile {profile} auth id-key "
            "generate --print` makes one)"
        )
    return ConfigError(
        f"cannot store the {kind.what} for profile {profile!r}: this machine has no usable "
        "keyring backend (normal on headless servers and cron jobs)",
        hint=(
            f"Put it in a file only the job's user can read (chmod 600) and {instead}; under "
            f"systemd use LoadCredential={kind.credential}:FILE."
        ),
    )


def store_secret(kind: SecretKind, profile: str, secret: Secret) -> None:
    """Store a secret in the keyring under the profile (and the kind's suffix)."""
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    try:
        keyring.set_password(KEYRING_SERVICE, kind.keyring_user(profile), secret.reveal())
    except NoKeyringError:
        raise _no_backend(profile, kind) from None
    except KeyringError as exc:
        raise ConfigError(
            f"the keyring refused to store the {kind.what} for profile {profile!r}: "
            f"{type(exc).__name__}",
            hint=f"Unlock the keyring and retry, or use {kind.env_file} instead.",
        ) from None


def store_api_secret(profile: str, secret: Secret) -> None:
    store_secret(API_SECRET, profile, secret)


def stored_in_keyring(kind: SecretKind, profile: str) -> bool | None:
    """Whether the keyring holds this secret; None when there is no usable keyring."""
    from keyring.errors import KeyringError, NoKeyringError

    try:
        return bool(_keyring_get(kind.keyring_user(profile)))
    except NoKeyringError:
        return None
    except KeyringError as exc:
        raise ConfigError(
            f"the keyring did not answer ({type(exc).__name__})",
            hint="Unlock it and retry, or use --print and a file.",
        ) from None


def require_keyring(kind: SecretKind, profile: str) -> None:
    """Refuse at once where no keyring can store a secret, before anyone types one."""
    if stored_in_keyring(kind, profile) is None:
        raise _no_backend(profile, kind)


def delete_api_secret(profile: str) -> bool:
    """Remove the stored secret; False when there was none."""
    import keyring
    from keyring.errors import KeyringError, NoKeyringError, PasswordDeleteError

    try:
        keyring.delete_password(KEYRING_SERVICE, profile)
    except PasswordDeleteError:
        return False
    except NoKeyringError:
        raise ConfigError(
            f"no keyring to delete the secret of profile {profile!r} from: this machine has "
            "no usable keyring backend",
            hint=f"Nothing is stored here; remove the {ENV_API_SECRET_FILE} file instead.",
        ) from None
    except KeyringError as exc:
        raise ConfigError(f"the keyring refused the deletion: {type(exc).__name__}") from None
    return True


def new_id_key() -> Secret:
    """A fresh --hash-ids key: 32 random bytes, as 64 hex characters."""
    import secrets

    return Secret(secrets.token_hex(32))
