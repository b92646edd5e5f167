"""Profiles, the config file, environment overrides and the state directory.

Precedence, written once: command-line option > KPROV_* environment variable > profile in the
config file > built-in default. Automation (cron, CI) can run with no config file at all by
setting KPROV_BASE_URL, KPROV_API_KEY and a secret (see ``credentials``). Every resolved
setting remembers where it came from (``Settings.origins``), for `kprov config show`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kprov.errors import ConfigError
from kprov.run_settings import RunSettings

ENV_CONFIG = "KPROV_CONFIG"
ENV_PROFILE = "KPROV_PROFILE"
ENV_BASE_URL = "KPROV_BASE_URL"
ENV_API_KEY = "KPROV_API_KEY"
ENV_TOKEN_URL = "KPROV_TOKEN_URL"
ENV_STATE_DIR = "KPROV_STATE_DIR"
ENV_MAPPING = "KPROV_MAPPING"
ENV_RATE_LIMITS = "KPROV_RATE_LIMITS"

DEFAULT_PROFILE = "default"
SANDBOX_PROFILE = "sandbox"
SANDBOX_PORT = 8765
SANDBOX_API_KEY = "sandbox-key"
# Not a secret: the built-in local sandbox accepts these fixed credentials and nothing else.
SANDBOX_API_SECRET = "sandbox-secret"

_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Profile:
    """A named API target: where to connect and with which (non-secret) API key."""

    name: str
    base_url: str
    api_key: str
    token_url: str | None = None
    admin_external_id: str | None = None
    rate_limits: Mapping[str, int] = field(default_factory=dict)  # overrides, per minute
    rate_limits_off: bool = False  # for servers without quotas (a local sandbox)
    secret_file: str | None = None  # a file holding the API secret (`profile add --secret-file`)
    run: RunSettings = field(default_factory=RunSettings)  # history, checks, notify, metrics

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"base_url": self.base_url, "api_key": self.api_key}
        if self.token_url:
            data["token_url"] = self.token_url
        if self.admin_external_id:
            data["admin_external_id"] = self.admin_external_id
        if self.rate_limits_off:
            data["rate_limits"] = "off"
        elif self.rate_limits:
            data["rate_limits"] = dict(self.rate_limits)
        if self.secret_file:
            data["secret_file"] = self.secret_file
        data.update(self.run.to_dict())
        return data


def sandbox_port(env: Mapping[str, str] | None = None) -> int:
    """The built-in sandbox's port: KPROV_SANDBOX_PORT, else SANDBOX_PORT."""
    env = os.environ if env is None else env
    raw = env.get("KPROV_SANDBOX_PORT", "")
    if not raw:
        return SANDBOX_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"KPROV_SANDBOX_PORT {raw!r} is not a port number (1-65535)")
    return int(raw)


def builtin_sandbox_profile() -> Profile:
    """The profile of the local sandbox (`kprov sandbox serve` on its default port)."""
    return Profile(
        name=SANDBOX_PROFILE,
        base_url=f"http://127.0.0.1:{sandbox_port()}/v0",
        api_key=SANDBOX_API_KEY,
        rate_limits_off=True,
    )


@dataclass(frozen=True)
class Origin:
    """Where a setting came from: flag, env, config-file, built-in, derived or default."""

    kind: str
    location: str = ""  # the option, the variable, the file


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know about where it talks and where it keeps state."""

    profile: Profile
    config_path: Path
    state_dir: Path
    mapping_path: Path
    is_builtin_sandbox: bool = False
    origins: Mapping[str, Origin] = field(default_factory=dict)  # setting name -> its origin

    @property
    def token_url(self) -> str:
        return self.profile.token_url or self.profile.base_url.rstrip("/") + "/oauth/token"


def default_config_path() -> Path:
    from platformdirs import user_config_path

    return user_config_path("kprov", appauthor=False) / "config.yaml"


def default_state_root() -> Path:
    from platformdirs import user_data_path

    return user_data_path("kprov", appauthor=False) / "profiles"


def validate_base_url(url: str, what: str = "base URL") -> str:
    """Refuse URLs that would send credentials somewhere unexpected or in clear text.

    The check lives with the client (``api.urls``), which repeats it: https anywhere, plain
    http only to this machine, hosts read by real URL parsers (userinfo, IPv6, case, dots).
    """
    from kprov.api.urls import check_credential_url

    return check_credential_url(url, what)


class ConfigFile:
    """The YAML config file: profiles and the current profile. Written atomically, mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current_profile: str | None = None
        self.profiles: dict[str, Profile] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        import yaml

        from kprov.yaml_bounds import load_checked, yaml_error_at

        hint = "Fix or remove the file, or point KPROV_CONFIG at another one."
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {self.path}: {exc}", hint=hint) from None
        try:
            raw = load_checked(text) or {}
        except (yaml.YAMLError, RecursionError) as exc:
            line, column, message = yaml_error_at(exc)
            where = "".join(f":{n}" for n in (line, column) if n is not None)
            raise ConfigError(
                f"cannot read config file {self.path}{where}: {message}", hint=hint
            ) from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {self.path} is not a mapping")
        self.current_profile = raw.get("current_profile")
        for name, body in (raw.get("profiles") or {}).items():
            self.profiles[str(name)] = self._profile(str(name), body)

    def _profile(self, name: str, body: Any) -> Profile:
        """One profile of the file, checked: what is wrong is named with the file."""
        if not isinstance(body, dict) or "base_url" not in body or "api_key" not in body:
            raise ConfigError(
                f"profile {name!r} in {self.path} needs base_url and api_key",
                hint=f"Re-create it: kprov profile add {name} --base-url URL --api-key KEY",
            )
        limits = body.get("rate_limits")
        limits_off = limits is False or str(limits).lower() == "off"
        limits = {} if limits_off or limits is None else limits
        if not isinstance(limits, dict) or not all(
            isinstance(v, int) and v > 0 for v in limits.values()
        ):
            raise ConfigError(
                f"profile {name!r}: rate_limits must be 'off' or map 'METHOD /path' to a "
                "positive number of requests per minute, e.g. {'POST /batch': 90}"
            )
        secret_file = body.get("secret_file")
        if secret_file is not None and not (isinstance(secret_file, str) and secret_file):
            raise ConfigError(
                f"profile {name!r} in {self.path}: secret_file must be the path of a file"
            )
        from kprov.run_settings import from_profile

        return Profile(
            name=name,
            base_url=str(body["base_url"]),
            api_key=str(body["api_key"]),
            token_url=body.get("token_url"),
            admin_external_id=body.get("admin_external_id"),
            rate_limits={str(k): int(v) for k, v in limits.items()},
            rate_limits_off=limits_off,
            secret_file=secret_file,
            run=from_profile(body, f"{self.path}, profile {name!r}:"),
        )

    def save(self) -> None:
        import yaml

        data: dict[str, Any] = {}
        if self.current_profile:
            data["current_profile"] = self.current_profile
        data["profiles"] = {name: p.to_dict() for name, p in sorted(self.profiles.items())}
        write_private_file(self.path, yaml.safe_dump(data, sort_keys=False))

    def add(self, profile: Profile) -> None:
        if not _PROFILE_NAME.match(profile.name):
            raise ConfigError(
                f"profile name {profile.name!r} is not allowed",
                hint="Use letters, digits, '.', '_' or '-' (at most 64 characters).",
            )
        self.profiles[profile.name] = profile
        if self.current_profile is None:
            self.current_profile = profile.name

    def remove(self, name: str) -> None:
        """Forget a profile (its state directory and keyring entries are not touched)."""
        del self.profiles[name]
        if self.current_profile == name:
            self.current_profile = None


def write_private_file(path: Path, text: str) -> None:
    """Atomically replace *path* with *text*, readable by the owner only."""
    from kprov.state.files import replace_private

    replace_private(path, text, make_parent=True)


def config_path_from(option: str | None, env: Mapping[str, str]) -> Path:
    if option:
        return Path(option).expanduser()
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    return default_config_path()


def _incomplete_profile(
    name: str, missing: str, config_path: Path, known: list[str], stored: Profile | None
) -> str:
    """Say whether the profile is unknown (a typo, or no config yet) or only incomplete."""
    if stored is not None:
        return f"profile {name!r} has no {missing} (config file: {config_path})"
    if known:
        where = f"{config_path} has no profile {name!r} (it has: {', '.join(known)})"
    elif config_path.exists():
        where = f"no profile {name!r}: {config_path} holds no profiles"
    else:
        where = f"no profile {name!r}: there is no config file ({config_path})"
    return f"{where}, and the environment gives no {missing}"


def resolve_settings(
    *,
    config_option: str | None = None,
    profile_option: str | None = None,
    mapping_option: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Combine options, environment and config file into the settings a command runs with."""
    env = os.environ if env is None else env
    config_path = config_path_from(config_option, env)
    config = ConfigFile(config_path)
    name = profile_name(profile_option, env, config)
    stored = config.profiles.get(name)
    is_builtin_sandbox = stored is None and name == SANDBOX_PROFILE
    if is_builtin_sandbox:
        stored = builtin_sandbox_profile()
    from kprov.config_origins import origins_of

    origins = origins_of(config, name, stored, is_builtin_sandbox, env,
                         config_option=config_option, profile_option=profile_option,
                         mapping_option=mapping_option)  # fmt: skip
    base_url, api_key = _endpoint(config, name, stored, env)
    in_file = Origin("config-file", f"{config_path}, profile {name}")
    profile = Profile(
        name=name,
        base_url=validate_base_url(base_url),
        api_key=api_key,
        token_url=_token_url(env.get(ENV_TOKEN_URL) or (stored.token_url if stored else None)),
        admin_external_id=stored.admin_external_id if stored else None,
        rate_limits=stored.rate_limits if stored else {},
        rate_limits_off=stored.rate_limits_off if stored else False,
        secret_file=stored.secret_file if stored else None,
        run=_run_settings(stored, env, origins, in_file),
    )
    state_dir = state_dir_for(name, env)
    return Settings(
        profile=profile,
        config_path=config_path,
        state_dir=state_dir,
        mapping_path=_mapping_path(mapping_option, env, state_dir),
        is_builtin_sandbox=is_builtin_sandbox,
        origins=origins,
    )


def profile_name(option: str | None, env: Mapping[str, str], config: ConfigFile) -> str:
    """The profile a command uses: --profile, KPROV_PROFILE, the config file's current one,
    else `default`."""
    return option or env.get(ENV_PROFILE) or config.current_profile or DEFAULT_PROFILE


def state_dir_for(name: str, env: Mapping[str, str]) -> Path:
    """Profile *name*'s state directory: KPROV_STATE_DIR, else the platform's data directory."""
    if env.get(ENV_STATE_DIR):
        return Path(env[ENV_STATE_DIR]).expanduser()
    return default_state_root() / name


def _mapping_path(option: str | None, env: Mapping[str, str], state_dir: Path) -> Path:
    if option:
        return Path(option).expanduser()
    if env.get(ENV_MAPPING):
        return Path(env[ENV_MAPPING]).expanduser()
    return state_dir / "mapping.csv"


def _endpoint(
    config: ConfigFile, name: str, stored: Profile | None, env: Mapping[str, str]
) -> tuple[str, str]:
    """The base URL and API key (the environment's over the profile's), or the error that
    says which is missing and how to give it."""
    base_url = env.get(ENV_BASE_URL) or (stored.base_url if stored else None)
    api_key = env.get(ENV_API_KEY) or (stored.api_key if stored else None)
    if base_url and api_key:
        return base_url, api_key
    labels = ((f"base URL ({ENV_BASE_URL})", base_url), (f"API key ({ENV_API_KEY})", api_key))
    missing = " and ".join(label for label, value in labels if not value)
    raise ConfigError(
        _incomplete_profile(name, missing, config.path, sorted(config.profiles), stored),
        hint=(
            f"Run `kprov profile add {name} --base-url URL --api-key KEY`, or set "
            f"{ENV_BASE_URL} and {ENV_API_KEY} (and KPROV_API_SECRET) for automation. "
            "To try kprov locally, use `--profile sandbox`."
        ),
    )


def _run_settings(
    stored: Profile | None, env: Mapping[str, str], origins: dict[str, Origin], in_file: Origin
) -> RunSettings:
    """The profile's run settings with the environment's overrides; their origins noted."""
    from kprov.run_settings import ENV, KEYS, with_env

    base = stored.run if stored is not None else RunSettings()
    run, from_env = with_env(base, env)
    in_profile = base.to_dict()
    for key in KEYS:
        if key in from_env:
            origins[key] = Origin("env", ENV[key])
        elif key in in_profile:
            origins[key] = in_file
        else:
            origins[key] = Origin("default")
    return run


def _token_url(url: str | None) -> str | None:
    """The token URL receives the API key and secret: checked like the base URL."""
    return validate_base_url(url, "token URL") if url else None


def quotas_for(profile: Profile, env: Mapping[str, str] | None = None) -> dict[str, int]:
    """Per-minute quotas the client paces itself to: KPROV_RATE_LIMITS, else the profile's
    overrides on top of the documented quotas, else none for a server without quotas."""
    from kprov.api.pacing import DOCUMENTED_QUOTAS, parse_quotas

    env = os.environ if env is None else env
    if env.get(ENV_RATE_LIMITS):
        try:
            return parse_quotas(env[ENV_RATE_LIMITS])
        except ValueError as exc:
            raise ConfigError(
                f"{ENV_RATE_LIMITS}: {exc}",
                hint="Use 'off', 'documented', or e.g. 'POST /batch=90,GET=15'.",
            ) from None
    if profile.rate_limits_off:
        return {}
    return {**DOCUMENTED_QUOTAS, **profile.rate_limits}
